"""The sprite-and-track video decoder: the object drawn once and moved, its pose truth from the synthetic world, its
auxiliary losses, its export, and the probe's shape reading that measures it."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import core.frames as frames_module
from core.config import preset
from core.frames import crop_box, fit_box, prepare_clip
from core.vocab import Vocab
from model.checkpoint import save_checkpoint
from model.data.dataset import BatchStream, tensorize
from model.data.shapes import SHAPES, SPRITE_MARGIN, render_clip, shape_masks
from model.data.synthetic import generate
from model.losses import anchor_loss, star_losses, total_loss
from model.probes import probe_accuracy, probe_video
from model.star import SpriteVideoDecoder, StarModel, clear_track, picture_mask, pixel_centres, sample_separable

T, H, W, S = 6, 18, 32, 16


def sprite_config(vocab_size: int = 20):
    p = preset("tiny")
    return replace(p.model, frames=T, height=H, width=W, vocab_size=vocab_size, video_decoder="sprite",
                   draw_channels=4, sprite_size=S)


def test_a_placed_sprite_lands_where_its_pose_says_at_its_size() -> None:
    """Compositing alone (no learning): a square sprite at pose (x, y, r) covers the pixels a square of radius r at
    (x, y) covers, whatever the frame's aspect ratio."""
    torch.manual_seed(0)
    dec = SpriteVideoDecoder(sprite_config()).eval()
    square = torch.from_numpy(shape_masks(S, ("square",))[0])
    sprite = torch.stack([torch.ones(S, S), torch.zeros(S, S), torch.zeros(S, S), square])[None]
    pose = torch.tensor([[0.25, -0.2, 0.5]])  # centre at x = 20 px, y = 7.2 px; radius 4.5 px
    alpha = dec.place(sprite, pose)[0, 3].numpy()
    ys, xs = np.nonzero(alpha > 0.5)
    assert abs(xs.mean() + 0.5 - 20) < 0.6 and abs(ys.mean() + 0.5 - 7.2) < 0.6
    half = 0.82 * 4.5  # the generator's square: max(|x|, |y|) < 0.82 r
    assert abs((xs.max() - xs.min() + 1) / 2 - half) < 1.0 and abs((ys.max() - ys.min() + 1) / 2 - half) < 1.0


def test_separable_sampling_is_grid_samples_on_a_scaled_and_translated_grid() -> None:
    """The placement's two matrix products give grid_sample's bilinear values, zeros past the image's edges
    included: sprites partly and wholly off the frame, magnified and shrunk."""
    torch.manual_seed(0)
    n, s, h, w = 64, 8, 9, 14
    images = torch.rand(n, 4, s, s)
    centres = torch.rand(n, 2) * 3 - 1.5  # some far off the frame
    halves = torch.rand(n, 2) * 1.5 + 0.05
    u = (pixel_centres(w) - centres[:, :1]) / halves[:, :1]
    v = (pixel_centres(h) - centres[:, 1:]) / halves[:, 1:]
    grid = torch.stack(torch.broadcast_tensors(u[:, None, :], v[:, :, None]), dim=-1)
    want = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.allclose(sample_separable(images, u, v), want, atol=1e-6)
    assert (want == 0).any() and (want > 0).any()


def test_clearing_the_track_removes_a_smear_along_it_and_nothing_else() -> None:
    """clear_track: a background smeared with the object's colour along its track (the average a background learns
    under a moving object) comes back plain there, from the rest of itself; pixels away from the track are
    untouched, and a track across the whole frame leaves the rest's mean colour, not the smear."""
    b, t, h, w = 1, 4, 36, 64
    grey = torch.full((b, 3, h, w), 0.5)
    drawn = grey.clone()
    drawn[:, 0, 15:21, 10:50] = 0.8  # a red smear along a rightward track
    alpha = torch.zeros(b, t, 1, h, w)
    for i, x in enumerate((10, 20, 30, 42)):
        alpha[:, i, :, 14:22, x:x + 8] = 1.0
    cleared = clear_track(drawn, alpha)
    assert (cleared - grey).abs().max() < 1e-4, "the smear stays"
    assert torch.equal(cleared[:, :, :1], drawn[:, :, :1]) and torch.equal(cleared[..., -1:], drawn[..., -1:])
    everywhere = torch.ones(b, t, 1, h, w)
    assert torch.equal(clear_track(drawn, everywhere), drawn), "no rest to fill from: the background as drawn"
    wide, wide_alpha = torch.full((b, 3, 64, 96), 0.5), torch.zeros(b, t, 1, 64, 96)
    wide[:, 0, 12:52, 12:84], wide_alpha[..., 12:52, 12:84] = 0.8, 1.0  # nothing kept near (32, 48)
    assert (clear_track(wide, wide_alpha)[:, :, 32, 48] - 0.5).abs().max() < 1e-4, "deep in a wide track: the rest"


def test_the_decoder_draws_one_sprite_moved_along_its_track() -> None:
    torch.manual_seed(0)
    dec = SpriteVideoDecoder(sprite_config()).eval()
    z = torch.randn(3, dec.cfg.latent_dim)
    with torch.no_grad():
        frames, sprite, poses = dec.draw(z, torch.zeros(3, H, W, 3))
    assert frames.shape == (3, T, H, W, 3) and sprite.shape == (3, 4, S, S) and poses.shape == (3, T, 3)
    assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
    assert torch.equal(dec(z, torch.zeros(3, H, W, 3)), frames)


def test_the_anchor_finds_the_first_frames_object_only_when_there_is_a_first_frame() -> None:
    torch.manual_seed(0)
    dec = SpriteVideoDecoder(sprite_config())
    first = torch.zeros(2, H, W, 3)
    first[1, 2:6, 3:7] = 1.0
    anchor, has_first = dec.anchor(first)
    assert has_first.flatten().tolist() == [0.0, 1.0]
    assert torch.equal(anchor[0], torch.zeros(3)), "sentence-to-video: no first frame, no anchor"


def test_pose_truth_follows_the_object_in_the_clip_and_in_its_centred_version() -> None:
    p = preset("tiny")
    corpus = generate(40, seed=3, frames=T, height=H, width=W, aspect_share=0.5)
    clips = corpus.splits["train"]
    vocab = Vocab.build(c for clip in clips for c in clip.captions)
    cfg = replace(sprite_config(len(vocab)), max_words=p.model.max_words)
    data = tensorize(clips, vocab, cfg)
    assert data.pose is not None and data.pose_known.eq(1).all()
    for i, clip in enumerate(clips[:12]):
        if clip.attributes["objects"] and len(clip.attributes["objects"]) > 1:
            continue
        frames = clip.frames.astype(np.float32) / 255
        for version, pose in ((frames, data.pose[i]), (data.frames_centred[i].numpy() / 255, data.pose_centred[i])):
            mask = np.linalg.norm(version[0] - version[0, 0, 0], axis=-1) > 0.25
            if not mask.any() or mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
                continue  # the object's first frame cut by the frame's edge: its centroid is not its centre
            ys, xs = np.nonzero(mask)
            assert abs((xs.mean() + 0.5) / W * 2 - 1 - float(pose[0, 0])) < 0.15, (clip.clip_id, clip.attributes)
            assert abs((ys.mean() + 0.5) / H * 2 - 1 - float(pose[0, 1])) < 0.2, (clip.clip_id, clip.attributes)
        assert data.shape_id[i] == SHAPES.index(clip.attributes["shape"])


def test_sprite_losses_join_the_training_step_and_learn_the_shape_and_track(tiny_corpus) -> None:
    """A few dozen steps on the aux terms alone lower both: the gradients reach the sprite and the track."""
    clips = tiny_corpus.splits["train"]
    vocab = Vocab.build(c for clip in clips for c in clip.captions)
    m = tiny_corpus.splits["train"][0].frames.shape
    cfg = replace(sprite_config(len(vocab)), frames=m[0], height=m[1], width=m[2])
    tc = replace(preset("tiny").train, lambda_pose=1.0, lambda_sprite_mask=1.0)
    data = tensorize(clips, vocab, cfg)
    torch.manual_seed(0)
    model = StarModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    stream = BatchStream(data, 16, seed=0)
    ones = torch.ones(16)
    first = last = None
    for _ in range(40):
        losses = star_losses(model, stream.next(), ones, ones)
        assert {"pose", "sprite_mask", "video", "foreground"} <= set(losses)
        aux = float((losses["pose"] + losses["sprite_mask"]).detach())
        first = first if first is not None else aux
        last = aux
        opt.zero_grad()
        total_loss(losses, tc, 0.0).backward()
        opt.step()
    assert last < 0.7 * first, (first, last)


def test_without_pose_truth_the_aux_terms_are_left_out() -> None:
    corpus = generate(20, seed=1, frames=T, height=H, width=W)
    clips = corpus.splits["train"]
    for clip in clips:
        clip.attributes.pop("track")  # a corpus that does not know its objects' tracks
    vocab = Vocab.build(c for clip in clips for c in clip.captions)
    data = tensorize(clips, vocab, sprite_config(len(vocab)))
    assert data.pose_known.eq(0).all() and data.shape_id.eq(-1).all()
    model = StarModel(sprite_config(len(vocab)))
    losses = star_losses(model, BatchStream(data, 8, seed=0).next(), torch.ones(8), torch.ones(8))
    assert float(losses["pose"].detach()) == 0.0 and float(losses["sprite_mask"].detach()) == 0.0


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_video_z_grad_scales_what_the_video_loss_teaches_the_encoders(share: float) -> None:
    """TrainConfig.video_z_grad: the video loss's gradient reaches the video encoder scaled by `share` (0: none);
    the video decoder learns from it all the same, and the forward is unchanged."""
    corpus = generate(20, seed=2, frames=T, height=H, width=W)
    clips = corpus.splits["train"]
    vocab = Vocab.build(c for clip in clips for c in clip.captions)
    batch = BatchStream(tensorize(clips, vocab, sprite_config(len(vocab))), 8, seed=0).next()

    def grads(s: float) -> tuple[float, float, float]:
        torch.manual_seed(0)
        model = StarModel(sprite_config(len(vocab)))
        loss = star_losses(model, batch, torch.ones(8), torch.zeros(8), sample=False, video_z_grad=s)["video"]
        loss.backward()
        enc = sum(float(p.grad.abs().sum()) for p in model.video_encoder.parameters() if p.grad is not None)
        dec = sum(float(p.grad.abs().sum()) for p in model.video_decoder.parameters() if p.grad is not None)
        return float(loss.detach()), enc, dec

    loss, enc, dec = grads(share)
    full_loss, full_enc, _ = grads(1.0)
    assert loss == pytest.approx(full_loss) and dec > 0
    assert enc == pytest.approx(share * full_enc, rel=1e-3, abs=1e-9)
    assert full_enc > 0


@pytest.mark.parametrize("exact_bars", [False, True])
def test_sprite_decoder_exports_with_parity(tmp_path: Path, exact_bars: bool) -> None:
    """GridSample (opset 16+) in the video decoder graph, and the bars kept black, checked against PyTorch pixel
    for pixel by export (a letterboxed sample clip among the real inputs)."""
    from export.onnx_export import export_run

    vocab = Vocab.build(["a red square moves right", "a blue circle grows"])
    torch.manual_seed(0)
    model = StarModel(replace(sprite_config(len(vocab)), exact_bars=exact_bars)).eval()
    save_checkpoint(tmp_path / "checkpoint.pt", model, vocab, preset("tiny").train)
    video = np.stack([render_clip({"colour": "red", "shape": "square", "motion": "right"}, T, H, W,
                                  np.random.default_rng(i)) for i in range(2)]).astype(np.float32) / 255
    video[1, :, :3] = video[1, :, -3:] = 0.0  # letterboxed: bars at the top and bottom
    version = export_run(tmp_path, tmp_path / "art", version="sprite", sample_video=video,
                         sample_sentences=["a red square moves right", "a blue circle grows"])
    import json

    parity = json.loads((version / "manifest.json").read_text())["parity"]["video_decoder"]
    assert parity["cases"] >= 2 and parity["max_abs_diff"] <= 1e-4


def test_shape_masks_are_the_generators_shapes_inside_the_sprite_margin() -> None:
    masks = shape_masks(32)
    assert masks.shape == (len(SHAPES), 32, 32)
    assert (masks[:, 0] == 0).all() and (masks[:, :, -1] == 0).all(), "every shape fits inside the margin"
    circle = masks[SHAPES.index("circle")]
    assert abs(circle.sum() - np.pi * (16 / SPRITE_MARGIN) ** 2) < 12


@pytest.mark.parametrize("shape", SHAPES)
def test_the_probe_reads_each_shape_of_true_clips(shape: str) -> None:
    """The probe's calibration: on clips the generator draws at the model's size it names the shape (the full
    figure on the quality corpus's one-object test clips is in models/default/EVAL.md, the ceiling rows)."""
    clips = [render_clip({"colour": "red", "shape": shape, "motion": m}, 8, 36, 64, np.random.default_rng(i))
             for i, m in enumerate(("still", "left", "grow", "bounce", "still", "down"))]
    reads = [probe_video(c.astype(np.float32) / 255).shape for c in clips]
    assert sum(r == shape for r in reads) >= 5, reads


def test_the_probe_shape_of_a_blob_is_not_the_asked_shape_too_often() -> None:
    """A soft blob (what the layered decoder drew) reads as a circle, not as the star or cross it was asked for:
    the shape figure can fail."""
    yy, xx = np.mgrid[0:36, 0:64]
    blob = np.zeros((8, 36, 64, 3), np.float32) + 0.1
    inside = np.exp(-((yy - 18) ** 2 + (xx - 30) ** 2) / 30.0)[..., None]
    blob[:] = 0.1 + inside * (np.array([0.86, 0.12, 0.12]) - 0.1)
    truths = [{"colour": "red", "shape": s, "motion": "still"} for s in ("star", "cross", "triangle")]
    assert probe_accuracy([blob] * 3, truths)["shape"] == 0.0
    assert probe_video(crop_box(blob, None)).shape in ("circle", "diamond", "square")


def test_the_anchor_term_reads_only_rows_with_a_first_frame_and_a_known_truth() -> None:
    truth = torch.tensor([[[0.5, -0.2, 0.3]] * 2, [[0.1, 0.1, 0.2]] * 2])  # [B=2, T=2, 3]
    batch = {"pose": truth, "pose_known": torch.tensor([1.0, 1.0])}
    right = truth[:, 0].clone()
    assert float(anchor_loss(right, batch, torch.ones(2))) == 0.0
    wrong = right + torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert float(anchor_loss(wrong, batch, torch.ones(2))) == pytest.approx(0.5)  # one row of two, 1.0 off
    assert float(anchor_loss(wrong, batch, torch.tensor([1.0, 0.0]))) == 0.0  # the wrong row draws from a sentence
    assert float(anchor_loss(wrong, {**batch, "pose_known": torch.tensor([1.0, 0.0])}, torch.ones(2))) == 0.0


def test_exact_bars_keep_a_letterboxed_first_frames_bars_black_and_nothing_else() -> None:
    first = torch.full((3, H, W, 3), 0.8)
    first[0, :2], first[0, -2:] = 0.0, 0.0  # bars above and below
    first[1, :, :4] = 0.0  # a bar at the left
    first[2] = 0.0  # no first frame: sentence-to-video
    mask = picture_mask(first)
    assert mask[0, :2].eq(0).all() and mask[0, -2:].eq(0).all() and mask[0, 2:-2].eq(1).all()
    assert mask[1, :, :4].eq(0).all() and mask[1, :, 4:].eq(1).all()
    assert mask[2].eq(1).all()
    torch.manual_seed(0)
    decoder = SpriteVideoDecoder(replace(sprite_config(), exact_bars=True))
    z = torch.randn(3, decoder.cfg.latent_dim)
    frames = decoder(z, first)  # B, T, H, W, 3
    assert frames[0, :, :2].abs().max() == 0 and frames[0, :, 2:-2].abs().max() > 0
    assert frames[2].abs().max() > 0  # a sentence's clip is drawn whole


@pytest.mark.parametrize("floor, read_as_bars", [(1, False), (0, True)])
def test_a_black_background_is_not_read_as_bars(floor: int, read_as_bars: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A portrait clip of a white square on black, letterboxed as an upload is: its bars are the only exact black
    the decoder sees (core.frames.PICTURE_FLOOR), so its mask is the picture's box; with black left black, every
    row and column the square does not cross read as a bar, and the clip was drawn inside the square's box only."""
    clip = np.zeros((4, 64, 48, 3), np.uint8)
    clip[:, 24:40, 16:32] = 255
    monkeypatch.setattr(frames_module, "PICTURE_FLOOR", floor)
    first = torch.from_numpy(prepare_clip(clip, 2, H, W, "pad")[:1])
    top, left, h, w = fit_box(64, 48, H, W)
    picture = torch.zeros(1, H, W)
    picture[:, top:top + h, left:left + w] = 1.0
    assert torch.equal(picture_mask(first), picture) != read_as_bars


def test_video_to_video_over_the_first_frames_scene() -> None:
    """ModelConfig.first_frame_background: a clip is drawn over its first frame, the object there filled in from its
    surroundings (a plain background comes back plain, everywhere); sentence rows and the familiarity rebuild draw
    over the decoder's own background, as without it."""
    torch.manual_seed(0)
    own = SpriteVideoDecoder(replace(sprite_config(), exact_bars=True)).eval()
    with torch.no_grad():  # an invisible sprite: every pixel drawn is the background
        own.sprite_out.weight[3] = 0.0
        own.sprite_out.bias[3] = -30.0
    scene = SpriteVideoDecoder(replace(own.cfg, first_frame_background=True)).eval()
    scene.load_state_dict(own.state_dict())
    first = torch.zeros(2, H, W, 3)
    tan = torch.tensor([0.8, 0.6, 0.3])
    first[0] = tan
    first[0, 6:10, 10:14] = torch.tensor([0.1, 0.1, 0.9])  # a blue square
    z = torch.randn(2, own.cfg.latent_dim)  # row 1 has no first frame: a sentence's clip
    with torch.no_grad():
        drawn, over_scene = own(z, first), scene(z, first)
        rebuilt = scene.rebuild(z[:1], first[:1])
    assert torch.allclose(over_scene[0], tan.expand_as(over_scene[0]), atol=1e-5)
    assert not torch.allclose(drawn[0], tan.expand_as(drawn[0]), atol=0.05)
    assert torch.equal(over_scene[1], drawn[1])
    assert torch.allclose(rebuilt, drawn[:1])


def test_sentence_heads_draw_the_rows_without_a_first_frame_and_only_those() -> None:
    """ModelConfig.sentence_heads: a row with a first frame is drawn by video-to-video's heads whatever the sentence
    heads hold, a row without one by the sentence heads; seeded from the others, they draw what the others drew."""
    torch.manual_seed(0)
    plain = SpriteVideoDecoder(sprite_config()).eval()
    heads = SpriteVideoDecoder(replace(sprite_config(), sentence_heads=True)).eval()
    missing, unexpected = heads.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(name.startswith("sentence.") for name in missing)
    heads.seed_sentence_heads()
    z = torch.randn(4, plain.cfg.latent_dim)
    first = torch.rand(4, H, W, 3)
    first[2:] = 0.0  # rows 2 and 3: sentence-to-video
    with torch.no_grad():
        assert torch.allclose(heads(z, first), plain(z, first), atol=1e-6)
        for p in heads.sentence.parameters():
            p.add_(0.5 * torch.randn_like(p))
        drawn = heads(z, first)
        want = plain(z, first)
    assert torch.allclose(drawn[:2], want[:2], atol=1e-6)
    assert (drawn[2:] - want[2:]).abs().amax() > 1e-2


def test_the_sentence_heads_learn_only_from_sentence_rows() -> None:
    torch.manual_seed(0)
    dec = SpriteVideoDecoder(replace(sprite_config(), sentence_heads=True))
    z = torch.randn(4, dec.cfg.latent_dim)
    first = torch.rand(4, H, W, 3)
    dec(z, first).sum().backward()  # every row has a first frame
    assert all(p.grad is None or float(p.grad.abs().max()) == 0.0 for p in dec.sentence.parameters())
    dec.zero_grad()
    dec(z, torch.zeros(4, H, W, 3)).sum().backward()
    assert float(dec.sentence.sprite_seed.weight.grad.abs().max()) > 0.0
    assert dec.sprite_seed.weight.grad is None or float(dec.sprite_seed.weight.grad.abs().max()) == 0.0
