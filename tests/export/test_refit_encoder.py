"""`slr refit --part video-encoder` (export/refit_encoder.py) on a tiny sprite model: the encoders read back from their
graph compute what it computes (gates and folded batch norms included); the distilled encoder reads a scene over a
background of any colour closer to how its teacher reads it over the corpus' own, and only the two graphs that read
video are new; the CLI publishes and recalibrates."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.config import preset
from core.graph_contract import ENCODER_V, ENCODER_VS
from core.manifest import Manifest
from core.vocab import pad_tokens
from export.graph_model import GraphModel
from export.graphs import export_graph, graph_specs
from export.parity import open_cpu_session
from export.publish import read_latest
from export.refit_encoder import (
    EncoderRefitConfig,
    caption_loss,
    encoders_from_graph_file,
    refit_encoder_version,
    scene_pairs,
)
from model.data.synthetic import background_pair
from model.precision import native_bf16_cpu
from model.star import StarModel
from tests.conftest import refit_cli

TINY = preset("tiny")
FAST = EncoderRefitConfig(steps=60, lr=1e-3, eval_every=20, batch_size=16, pairs=96, check_pairs=16)


@pytest.fixture(scope="module")
def sprite_root(tmp_path_factory, tiny_corpus) -> Path:
    """An artifacts root whose latest is an untrained tiny sprite model with its latent heads scaled up: an untrained
    encoder's latent barely changes with its clip, and then there is nothing to distil."""
    from core.vocab import Vocab
    from export.onnx_export import export_run
    from model.checkpoint import save_checkpoint

    run, root = tmp_path_factory.mktemp("encoder_run"), tmp_path_factory.mktemp("encoder_root")
    vocab = Vocab.build(c for clip in tiny_corpus.splits["train"] for c in clip.captions)
    torch.manual_seed(0)
    star = StarModel(replace(TINY.model, vocab_size=len(vocab), video_decoder="sprite", draw_channels=4,
                             sprite_size=8))
    with torch.no_grad():
        star.to_mu.weight.mul_(30.0)
    save_checkpoint(run / "checkpoint.pt", star, vocab, TINY.train)
    export_run(run, root, version="base",
               calibration_clips=tiny_corpus.splits["val"] + tiny_corpus.splits["train"][:48])
    return root


def test_the_encoders_read_back_from_their_graph_compute_what_it_computes(tiny_corpus, tmp_path) -> None:
    """Batch norms with statistics of their own (folded into the graph's convolutions) and a GRU whose gates ONNX
    stacks in another order: read back wrong, the latents differ."""
    torch.manual_seed(0)
    cfg = replace(TINY.model, vocab_size=40)
    star = StarModel(cfg).eval()
    for bn in (m for m in star.video_encoder.cnn if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    path = tmp_path / "encoder_vs.onnx"
    export_graph(star, graph_specs(cfg)[ENCODER_VS], path)
    read = encoders_from_graph_file(path, cfg)
    video = torch.from_numpy(np.stack([c.frames for c in tiny_corpus.splits["val"][:4]]).astype(np.float32) / 255)
    tokens, lengths = pad_tokens([[5, 6, 7], [8, 9]] * 2)
    got = open_cpu_session(path).run(["mu", "sigma"], {"video": video.numpy(), "tokens": tokens, "lengths": lengths})
    with torch.no_grad():
        want = read.encode(video, torch.from_numpy(tokens), torch.from_numpy(lengths))
    assert np.abs(want.mu.numpy() - got[0]).max() < 1e-4 and np.abs(want.sigma.numpy() - got[1]).max() < 1e-4


def test_a_background_pair_draws_one_scene_over_two_backgrounds() -> None:
    familiar, other = background_pair(("red", "circle", "right"), 8, 36, 64, np.random.default_rng(3))
    assert familiar.shape == other.shape == (8, 36, 64, 3) and familiar.dtype == np.uint8

    def objects(clip: np.ndarray) -> np.ndarray:
        border = np.concatenate([clip[:, 0], clip[:, -1]], axis=1).reshape(-1, 3).astype(np.float32)
        return np.linalg.norm(clip.astype(np.float32) - np.median(border, axis=0), axis=-1) > 100

    a, b = objects(familiar), objects(other)
    assert a.any() and (a & b).sum() / (a | b).sum() > 0.8  # the same object on the same track
    assert np.abs(familiar[~(a | b)].astype(int) - other[~(a | b)]).mean() > 20  # over another background


def test_an_encoder_refit_changes_the_video_graphs_alone(sprite_root, tiny_corpus) -> None:
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    directory, record = refit_encoder_version(sprite_root, "base", "seen", train, val, TINY.train, FAST,
                                              progress=False)
    assert read_latest(sprite_root) == "base"  # the release gate moves latest, not a refit
    base, new = Manifest.read(sprite_root / "base"), Manifest.read(directory)
    new.verify_files(directory)
    changed = {name for name in base.files if base.files[name] != new.files[name]}
    assert changed == {base.graphs[name].file for name in (ENCODER_V, ENCODER_VS)}, changed
    assert new.refit is not None and new.refit["graphs"] == [ENCODER_V, ENCODER_VS]
    assert {"caption.colour", "two_objects.first_clause", "other_background.colour"} <= set(record["validation"][0])
    # What it learnt: the scenes it trained on, over backgrounds of any colour, read nearer to its teacher's reading of
    # the same scenes over the corpus' kind of background.
    familiar, other, _ = scene_pairs(train, min(FAST.pairs, len(train)), np.random.default_rng([FAST.seed, 7]),
                                     FAST.aspect_share, progress=False)
    old, refit = GraphModel.open(sprite_root, "base"), GraphModel.open(sprite_root, "seen")
    want = old.video_mu(familiar.astype(np.float32) / 255)
    other_video = other.astype(np.float32) / 255
    assert np.abs(refit.video_mu(other_video) - want).mean() < 0.9 * np.abs(old.video_mu(other_video) - want).mean()
    # The sentence path is the base's: a sentence's latent is the same.
    assert np.array_equal(refit.sentence_mu(["a red circle"]), old.sentence_mu(["a red circle"]))


def test_the_caption_loss_teaches_the_encoder_what_the_caption_decoder_reads(sprite_root, tiny_corpus) -> None:
    """With a caption weight, the refitted encoder's latents of training clips are read by the version's own (frozen)
    caption decoder with less loss against their captions than the base's latents are."""
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    directory, record = refit_encoder_version(sprite_root, "base", "told", train, val, TINY.train,
                                              replace(FAST, caption_weight=100.0), progress=False)
    assert record["caption_weight"] == 100.0
    video = torch.from_numpy(np.stack([c.frames for c in train]).astype(np.float32) / 255)
    idx = torch.arange(len(train))

    def loss_of(version: str) -> float:
        mu = torch.from_numpy(GraphModel.open(sprite_root, version).video_mu(video.numpy()))
        with torch.no_grad():
            return float(caption_loss(GraphModel.open(sprite_root, "base"), train, torch.Generator().manual_seed(0))(
                mu, idx))

    assert loss_of("told") < loss_of("base") - 0.05, (loss_of("told"), loss_of("base"))


def test_the_cli_refits_the_video_encoder_and_recalibrates(sprite_root, tiny_corpus, tmp_path, capsys) -> None:
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli-seen", "--part", "video-encoder",
                     "--calibration-clips", "16") == 0
    out = capsys.readouterr().out
    assert "published" in out and "familiarity threshold" in out
    assert Manifest.read(sprite_root / "cli-seen").refit["steps"] == 4
    assert Manifest.read(sprite_root / "cli-seen").refit["precision"] == "fp32"  # the preset's, where not asked
    # An option of another part is refused, not ignored.
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli-never", "--caption-weight", "0.1") == 2
    assert "--caption-weight does not apply to --part video" in capsys.readouterr().err
    assert not (sprite_root / "cli-never").exists()


@pytest.mark.skipif(not native_bf16_cpu(), reason="this CPU has no oneDNN bfloat16 (AVX-512 or AMX): bf16 is "
                    "refused here (test_a_bf16_refit_is_refused_where_the_cpu_cannot_run_it)")
def test_a_bf16_refit_publishes_float32_graphs_that_match_its_weights(sprite_root, tiny_corpus, tmp_path,
                                                                     capsys) -> None:
    """`slr refit --precision bf16`: the loss under bfloat16 autocast, channels-last convolutions; what is published
    is float32 and passes the same parity check against the refitted weights, and the manifest says how it trained."""
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli-bf16", "--part", "video-encoder",
                     "--calibration-clips", "8", "--precision", "bf16") == 0
    manifest = Manifest.read(sprite_root / "cli-bf16")
    assert manifest.refit is not None and manifest.refit["precision"] == "bf16"
    assert all(manifest.parity[name]["max_abs_diff"] < 1e-4 for name in (ENCODER_V, ENCODER_VS))
    graph = onnx.load(str(sprite_root / "cli-bf16" / f"{ENCODER_V}.onnx"))
    assert {init.data_type for init in graph.graph.initializer} <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}



def test_a_bf16_refit_is_refused_where_the_cpu_cannot_run_it(sprite_root, tiny_corpus, tmp_path,
                                                             monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """On a CPU without oneDNN's bfloat16, `slr refit --precision bf16` says so and exits 2 before any work."""
    monkeypatch.setattr("model.precision.native_bf16_cpu", lambda: False)
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli-no-bf16", "--part", "video-encoder",
                     "--precision", "bf16") == 2
    assert "slr refit: precision bf16 needs a CPU with AVX-512 or AMX" in capsys.readouterr().err
    assert not (sprite_root / "cli-no-bf16").exists()
