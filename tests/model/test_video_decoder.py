"""The video decoder that draws: centred targets for sentence-only rows, foreground weights, the layered
decoder's export, and a probe that tells a drawn object from a smudge."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from core.config import preset
from core.vocab import Vocab
from model.checkpoint import save_checkpoint
from model.data.dataset import centre_clip
from model.losses import foreground_weights, video_target
from model.probes import contrast, probe_video, stain
from model.star import StarModel

T, H, W = 6, 12, 16


def square_clip(x0: int, y0: int, size: int = 3, colour=(220, 30, 30), bg=(20, 20, 20)) -> np.ndarray:
    clip = np.empty((T, H, W, 3), np.uint8)
    clip[:] = bg
    for t in range(T):
        clip[t, y0: y0 + size, x0 + t: x0 + t + size] = colour
    return clip


def centroid(clip: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero((clip.astype(int) - 20).any(-1).any(0))
    return ys.mean(), xs.mean()


def test_centre_clip_moves_the_track_to_the_centre_and_keeps_the_motion() -> None:
    clip = square_clip(0, 0)
    out = centre_clip(clip)
    cy, cx = centroid(out)
    assert abs(cy - (H - 1) / 2) <= 0.5 and abs(cx - (W - 1) / 2) <= 0.5
    assert (probe_video(out.astype(np.float32) / 255).motion
            == probe_video(clip.astype(np.float32) / 255).motion == "right")
    assert (out[:, 0, 0] == 20).all(), "uncovered pixels take the background colour"
    blank = np.full((T, H, W, 3), 50, np.uint8)
    assert (centre_clip(blank) == blank).all()


def test_video_target_is_the_clip_when_the_video_is_on_and_centred_otherwise() -> None:
    frames, centred = torch.zeros(2, T, H, W, 3), torch.ones(2, T, H, W, 3)
    target = video_target(frames, centred, torch.tensor([1.0, 0.0]))
    assert target[0].eq(0).all() and target[1].eq(1).all()
    assert video_target(frames, None, torch.tensor([0.0, 0.0])) is frames


def test_foreground_weights_put_half_the_frame_weight_on_a_tiny_object() -> None:
    clip = torch.from_numpy(square_clip(4, 4, size=2)).float()[None] / 255
    w = foreground_weights(clip)
    assert torch.allclose(w.sum(dim=(2, 3)), torch.ones(1, T), atol=1e-4)
    on_object = (clip - clip[:, :, :1, :1]).abs().sum(-1) > 0.1
    assert (w[on_object].sum() / T) > 0.99, "the object's 4 pixels of 192 carry the weight"


def test_contrast_tells_a_drawn_object_from_a_smudge() -> None:
    clip = square_clip(2, 4).astype(np.float32) / 255
    smudge = 0.8 * clip.mean(axis=(1, 2), keepdims=True) + 0.2 * clip
    assert contrast(clip, "red") > 0.9
    assert contrast(smudge, "red") < 0.3


def test_stain_reads_the_objects_colour_smeared_along_its_track_and_not_the_object() -> None:
    """A red square sliding over grey: a clean background reads 0 (the object itself and its edges are not counted);
    the same clip over a background smeared a fifth of the way to red along the square's path reads the smear."""
    frames = np.full((4, 36, 64, 3), 0.5, np.float32)
    for t, x in enumerate((6, 20, 34, 48)):
        frames[t, 14:22, x:x + 8] = (220 / 255, 30 / 255, 30 / 255)
    assert stain(frames, "red") == 0.0
    smeared = frames.copy()
    band = smeared[:, 12:24, 4:60]
    far = np.linalg.norm(band - 0.5, axis=-1) < 0.1  # the background in the band, not the square
    band[far] = 0.8 * 0.5 + 0.2 * np.array((220, 30, 30), np.float32) / 255
    assert stain(smeared, "red") > 0.02


def test_layered_decoder_exports_with_parity(tmp_path: Path) -> None:
    """Every graph of a layered model, against PyTorch, by the same check that gates every export."""
    from export.onnx_export import export_run

    vocab = Vocab.build(["a red square moves right", "a blue circle grows"])
    p = preset("tiny")
    cfg = replace(p.model, vocab_size=len(vocab), video_decoder="layers", draw_channels=4)
    torch.manual_seed(0)
    model = StarModel(cfg).eval()
    save_checkpoint(tmp_path / "checkpoint.pt", model, vocab, p.train)
    video = np.stack([square_clip(0, 2), square_clip(5, 6)]).astype(np.float32) / 255
    version = export_run(tmp_path, tmp_path / "art", version="layers", sample_video=video,
                         sample_sentences=["a red square moves right", "a blue circle grows"])
    assert (version / "video_decoder.onnx").is_file()


def test_video_fine_tuning_moves_the_video_decoder_alone(tiny_corpus, tmp_path: Path) -> None:
    """The third phase for the video tasks: after it, every weight outside the video decoder is what the
    earlier phases left (the captions cannot regress), and the video decoder has moved."""
    from model.checkpoint import load_checkpoint
    from model.train import train

    p = preset("tiny")
    p.model.video_decoder, p.model.draw_channels = "layers", 4
    p.train.full_steps, p.train.partial_steps = 3, 0
    train(tiny_corpus, p, tmp_path / "before", seed=0, progress=False)
    p.train.finetune_video_steps = 3
    train(tiny_corpus, p, tmp_path / "after", seed=0, progress=False)
    before = dict(load_checkpoint(tmp_path / "before" / "checkpoint.pt").model.named_parameters())
    after = dict(load_checkpoint(tmp_path / "after" / "checkpoint.pt").model.named_parameters())
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved and all(name.startswith("video_decoder.") for name in moved), sorted(moved)[:5]
