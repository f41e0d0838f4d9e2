"""`slr refit` (export/refit.py) on a tiny sprite model: the video decoder refitted on the version's frozen encoders is
published beside it with sentence-to-video's own heads, every other graph byte-identical, `latest` untouched; the CLI
refits, recalibrates and answers usage errors with exit 2."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import model.star as star_module
from cli.main import main
from core.config import preset
from core.graph_contract import SENTENCE_GRAPHS, VIDEO_DECODER, VIDEO_REBUILD
from core.manifest import Manifest
from export.graph_model import GraphModel
from export.publish import read_latest
from export.refit import RefitConfig, decoder_from_graph, refit_version, steepen_sentence_alpha
from export.refit_sentence import (
    SentenceRefitConfig,
    refit_sentence_version,
    sentence_decoder_from_graphs,
    sentence_parity,
)
from service.engine import Engine
from tests.conftest import export_tiny_sprite, refit_cli

TINY = preset("tiny")


@pytest.fixture(scope="module")
def sprite_root(tmp_path_factory, tiny_corpus) -> Path:
    """An artifacts root whose latest is an (untrained) tiny sprite model without sentence heads."""
    return export_tiny_sprite(tmp_path_factory.mktemp("sprite_run"), tmp_path_factory.mktemp("refit_root"), tiny_corpus,
                              False, 0, version="base",
                              calibration_clips=tiny_corpus.splits["val"] + tiny_corpus.splits["train"][:48])


def derived_by_cli(root: Path, corpus, tmp_path: Path, capsys, command: list[str], version: str,
                   said: str) -> tuple[GraphModel, GraphModel, Path]:
    """`slr <command> ... --version version` from the root's "heads" on the saved corpus: exit 0, `said` printed,
    latest untouched, the new version's files as its manifest says; (source, derived, the corpus' folder)."""
    data = tmp_path / "corpus"
    corpus.save(data)
    assert main([*command, "--data-dir", str(data), "--from-version", "heads", "--version", version]) == 0
    assert said in capsys.readouterr().out and read_latest(root) == "heads"
    source, derived = GraphModel.open(root, "heads"), GraphModel.open(root, version)
    derived.manifest.verify_files(derived.directory)
    return source, derived, data


def changed_files(source: GraphModel, derived: GraphModel) -> set[str]:
    """The files of `source` whose checksum differs in `derived`."""
    return {name for name, digest in source.manifest.files.items() if derived.manifest.files[name] != digest}


def test_a_refit_changes_the_video_decoder_alone_and_publishes_beside(sprite_root, tiny_corpus) -> None:
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    rc = RefitConfig(steps=40, lr=3e-3, eval_every=20)
    directory, record = refit_version(sprite_root, "base", "refit", train, val, TINY.train, rc, progress=False)
    assert read_latest(sprite_root) == "base"  # the release gate moves latest, not a refit
    base, new = Manifest.read(sprite_root / "base"), Manifest.read(directory)
    new.verify_files(directory)
    assert new.refit is not None and new.refit["from"] == "base" and new.model.sentence_heads
    assert not base.model.sentence_heads
    changed = {name for name in base.files if base.files[name] != new.files[name]}
    assert changed == {base.graphs[VIDEO_DECODER].file}, changed  # captions and encoders byte-identical
    losses = [row["train_loss"] for row in record["validation"][1:]]
    assert losses[-1] < losses[0], losses
    # The published graph draws a sentence's clip by the new heads: unlike the base version's, which drew both tasks
    # with one set.
    z = np.random.default_rng(0).standard_normal((3, base.model.latent_dim)).astype(np.float32)
    none = np.zeros((3, base.model.height, base.model.width, 3), np.float32)
    old_frames = GraphModel.open(sprite_root, "base").frames(z, none)
    assert np.abs(GraphModel.open(sprite_root, "refit").frames(z, none) - old_frames).max() > 1e-3
    # With sentence-to-video's heads, the refit also writes the rebuild graph: the decoder's rows with a first frame,
    # what the familiarity score runs (Engine.rebuild_video), without the sentence heads' work.
    assert VIDEO_REBUILD in new.graphs and VIDEO_REBUILD not in base.graphs and new.refit["graphs"] == [
        VIDEO_DECODER, VIDEO_REBUILD]
    first = np.stack([c.frames[0] for c in val[:3]]).astype(np.float32) / 255.0
    refit_model = GraphModel.open(sprite_root, "refit")
    both = refit_model.frames(z, first)
    assert np.abs(refit_model.frames(z, first, VIDEO_REBUILD) - both).max() < 1e-5
    assert np.abs(Engine.load(sprite_root, "refit").rebuild_video(z, first) - both).max() < 1e-5


def test_export_writes_the_rebuild_graph_of_a_sprite_model_with_sentence_heads(sprite_heads_root, tiny_corpus) -> None:
    manifest = Manifest.read(sprite_heads_root / "heads")
    assert VIDEO_REBUILD in manifest.graphs and manifest.parity[VIDEO_REBUILD]["max_abs_diff"] < 1e-4
    assert all(VIDEO_REBUILD not in task.graphs for task in manifest.tasks.values())  # no task needs it
    engine = Engine.load(sprite_heads_root)
    video = np.stack([c.frames for c in tiny_corpus.splits["test"][:4]]).astype(np.float32) / 255.0
    z = np.random.default_rng(2).standard_normal((4, manifest.model.latent_dim)).astype(np.float32)
    assert np.abs(engine.rebuild_video(z, video[:, 0]) - engine.decode_video(z, video[:, 0])).max() < 1e-5


def test_refit_refuses_a_taken_name_and_a_decoder_it_cannot_refit(sprite_root, artifacts_dir, tiny_corpus) -> None:
    train, val = tiny_corpus.splits["train"][:32], tiny_corpus.splits["val"]
    rc = RefitConfig(steps=2, eval_every=1)
    with pytest.raises(FileExistsError):
        refit_version(sprite_root, "base", "base", train, val, TINY.train, rc, progress=False)
    with pytest.raises(ValueError, match="no sprite video decoder"):  # the session's tiny model draws linearly
        refit_version(artifacts_dir, None, "never", train, val, TINY.train, rc, progress=False)
    assert not (artifacts_dir / "never").exists()


def test_the_cli_refits_recalibrates_and_says_what_it_needs(sprite_root, tiny_corpus, tmp_path, capsys) -> None:
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli", "--calibration-clips", "8", "--ramp-share", "0.5") == 0
    out = capsys.readouterr().out
    assert "published" in out and "slr release" in out
    manifest = Manifest.read(sprite_root / "cli")
    assert manifest.familiarity is not None and manifest.familiarity.clips == 8
    assert manifest.refit is not None and manifest.refit["ramp_share"] == 0.5
    assert main(["refit", str(sprite_root), "--from-version", "base", "--version", "cli2", "--data-dir",
                 str(tmp_path / "nothing")]) == 2
    assert "slr data synth" in capsys.readouterr().err
    assert main(["release", str(sprite_root), "--model-version", "cli", "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "no saved corpus" in capsys.readouterr().err


def test_a_sentence_heads_refit_keeps_video_to_video_and_its_calibration(sprite_root, tiny_corpus, tmp_path,
                                                                        capsys) -> None:
    """`slr refit --heads sentence`: sentence-to-video's heads alone learn (the sprite mask weighed as asked); every
    video-to-video row, the rebuild graph's bytes and the familiarity calibration stay the source's, so nothing is
    recalibrated; a source without sentence-to-video's own heads is refused."""
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    refit_version(sprite_root, "base", "own-heads", train, val, TINY.train, RefitConfig(steps=4, lr=1e-2, eval_every=2),
                  progress=False)
    data = tmp_path / "corpus"
    tiny_corpus.save(data)
    args = ["--data-dir", str(data), "--preset", "tiny", "--steps", "6", "--lr", "1e-2", "--heads", "sentence",
            "--sprite-mask-weight", "5"]
    assert main(["refit", str(sprite_root), "--from-version", "own-heads", "--version", "drawn", *args]) == 0
    assert "familiarity threshold" not in capsys.readouterr().out  # not recalibrated
    source, drawn = GraphModel.open(sprite_root, "own-heads"), GraphModel.open(sprite_root, "drawn")
    drawn.manifest.verify_files(drawn.directory)
    changed = changed_files(source, drawn)
    assert changed == {source.manifest.graphs[VIDEO_DECODER].file}, changed  # the rebuild graph's bytes kept
    assert drawn.manifest.familiarity == source.manifest.familiarity is not None
    record = drawn.manifest.refit
    assert record is not None and record["heads"] == "sentence" and record["sentence_share"] == 1.0
    assert record["sprite_mask_weight"] == 5.0 and record["graphs"] == [VIDEO_DECODER]
    z = np.random.default_rng(4).standard_normal((4, source.manifest.model.latent_dim)).astype(np.float32)
    first = np.stack([c.frames[0] for c in val[:4]]).astype(np.float32) / 255.0
    none = np.zeros_like(first)
    assert np.abs(drawn.frames(z, first) - source.frames(z, first)).max() < 1e-5
    assert np.abs(drawn.frames(z, none) - source.frames(z, none)).max() > 1e-4  # sentence-to-video learnt
    assert main(["refit", str(sprite_root), "--from-version", "base", "--version", "never", *args]) == 2
    assert "refit both first" in capsys.readouterr().err and not (sprite_root / "never").exists()
    assert main(["refit", str(sprite_root), "--from-version", "own-heads", "--version", "never", "--part", "sentence",
                 *args]) == 2
    assert "does not apply" in capsys.readouterr().err


def test_merge_heads_takes_each_task_exactly_from_its_version(sprite_root, tiny_corpus, tmp_path, capsys) -> None:
    """`slr merge-heads`: video-to-video as one refit draws it, sentence-to-video as another does, on the same encoders
    (export/merge_heads.py); a version without sentence-to-video's own heads is refused."""
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    for name, seed in (("heads-a", 1), ("heads-b", 2)):
        refit_version(sprite_root, "base", name, train, val, TINY.train, RefitConfig(steps=8, lr=1e-2, eval_every=4,
                                                                                     seed=seed), progress=False)
    data = tmp_path / "corpus"
    tiny_corpus.save(data)
    assert main(["merge-heads", str(sprite_root), "--video-from", "heads-a", "--sentence-from", "heads-b",
                 "--version", "merged", "--data-dir", str(data)]) == 0
    assert "published" in capsys.readouterr().out and read_latest(sprite_root) == "base"
    a, b, merged = (GraphModel.open(sprite_root, v) for v in ("heads-a", "heads-b", "merged"))
    merged.manifest.verify_files(merged.directory)
    assert merged.manifest.familiarity == a.manifest.familiarity  # its rebuild is heads-a's
    assert merged.manifest.refit is not None and merged.manifest.refit["sentence_heads_from"] == "heads-b"
    z = np.random.default_rng(3).standard_normal((4, a.manifest.model.latent_dim)).astype(np.float32)
    first = np.stack([c.frames[0] for c in val[:4]]).astype(np.float32) / 255.0
    none = np.zeros_like(first)
    assert np.abs(merged.frames(z, first) - a.frames(z, first)).max() < 1e-5
    assert np.abs(merged.frames(z, first, VIDEO_REBUILD) - a.frames(z, first)).max() < 1e-5
    assert np.abs(merged.frames(z, none) - b.frames(z, none)).max() < 1e-5
    assert np.abs(a.frames(z, none) - b.frames(z, none)).max() > 1e-3, "the two refits draw sentences alike"
    assert main(["merge-heads", str(sprite_root), "--video-from", "base", "--sentence-from", "heads-b",
                 "--version", "never", "--data-dir", str(data)]) == 2
    assert "sentence-to-video's own heads" in capsys.readouterr().err and not (sprite_root / "never").exists()


def test_redraw_draws_video_to_video_over_the_first_frame_and_keeps_the_rest(sprite_root, tiny_corpus, tmp_path,
                                                                             capsys) -> None:
    """`slr redraw` (export/redraw.py): the source's weights, video-to-video over the first frame's scene; the
    sentence-to-video rows, the familiarity rebuild graph (byte for byte) and every other file as the source's; a
    version without a rebuild graph apart from its decoder is refused."""
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    refit_version(sprite_root, "base", "heads", train, val, TINY.train, RefitConfig(steps=4, lr=1e-2, eval_every=2),
                  progress=False)
    data = tmp_path / "corpus"
    tiny_corpus.save(data)
    assert main(["redraw", str(sprite_root), "--from-version", "heads", "--version", "scene", "--data-dir",
                 str(data)]) == 0
    assert "published" in capsys.readouterr().out and read_latest(sprite_root) == "base"
    source, scene = GraphModel.open(sprite_root, "heads"), GraphModel.open(sprite_root, "scene")
    scene.manifest.verify_files(scene.directory)
    assert scene.manifest.model.first_frame_background and not source.manifest.model.first_frame_background
    changed = changed_files(source, scene)
    assert changed == {source.manifest.graphs[VIDEO_DECODER].file}, changed
    assert scene.manifest.familiarity == source.manifest.familiarity
    z = np.random.default_rng(5).standard_normal((4, source.manifest.model.latent_dim)).astype(np.float32)
    first = np.stack([c.frames[0] for c in val[:4]]).astype(np.float32) / 255.0
    none = np.zeros_like(first)
    assert np.abs(scene.frames(z, none) - source.frames(z, none)).max() < 1e-5
    assert np.abs(scene.frames(z, first, VIDEO_REBUILD) - source.frames(z, first)).max() < 1e-5
    assert np.abs(scene.frames(z, first) - source.frames(z, first)).max() > 1e-2  # over the first frame now
    assert main(["redraw", str(sprite_root), "--from-version", "base", "--version", "never", "--data-dir",
                 str(data)]) == 2
    assert "no rebuild graph" in capsys.readouterr().err and not (sprite_root / "never").exists()


def test_a_restrided_rebuild_draws_every_other_frame_of_the_source_and_is_calibrated_anew(
        sprite_heads_root, tiny_corpus, tmp_path, capsys) -> None:
    """`slr redraw --rebuild-stride 2` (export/redraw.py: restride_version): only the familiarity rebuild graph is new
    and draws the source rebuild's frames 1, 3, 5 exactly; the version is published uncalibrated (its signal reads
    fewer frames) and scores once `slr calibrate` has run; a stride that does not divide the clip is refused."""
    source, every2, data = derived_by_cli(sprite_heads_root, tiny_corpus, tmp_path, capsys,
                                          ["redraw", str(sprite_heads_root), "--rebuild-stride", "2"], "every2",
                                          "uncalibrated")
    changed = changed_files(source, every2)
    assert changed == {source.manifest.graphs[VIDEO_REBUILD].file}, changed
    assert every2.manifest.model.rebuild_stride == 2 and every2.manifest.familiarity is None
    video = np.stack([c.frames for c in tiny_corpus.splits["val"][:4]]).astype(np.float32) / 255.0
    z = source.video_mu(video)
    full, drawn = source.frames(z, video[:, 0], VIDEO_REBUILD), every2.frames(z, video[:, 0], VIDEO_REBUILD)
    assert full.shape[1] == 6 and drawn.shape[1] == 3
    assert np.abs(drawn - full[:, 1::2]).max() < 1e-5
    assert main(["calibrate", str(sprite_heads_root), "--model-version", "every2", "--data-dir", str(data)]) == 0
    engine = Engine.load(sprite_heads_root, "every2")
    assert engine.manifest.familiarity is not None
    rebuilt = engine.rebuild_video(z, video[:, 0])
    assert rebuilt.shape[1] == 3 and engine.manifest.familiarity.measure(video, rebuilt).shape == (4, 3)
    for stride, error in ((4, "must divide"), (2, "already rebuilds")):
        source_version = "heads" if stride == 4 else "every2"
        assert main(["redraw", str(sprite_heads_root), "--from-version", source_version, "--data-dir", str(data),
                     "--version", "never", "--rebuild-stride", str(stride)]) == 2
        assert error in capsys.readouterr().err and not (sprite_heads_root / "never").exists()


def _grid_sampled(images: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """model.star.sample_separable as the versions before quality-v24 computed it: one GridSample over every pixel."""
    lead = torch.broadcast_shapes(images.shape[:-3], xs.shape[:-1], ys.shape[:-1])
    grid = torch.stack(torch.broadcast_tensors(xs.unsqueeze(-2), ys.unsqueeze(-1)), dim=-1)  # [..., H, W, 2]
    flat = images.expand(*lead, *images.shape[-3:]).reshape(-1, *images.shape[-3:])
    out = torch.nn.functional.grid_sample(flat, grid.expand(*lead, *grid.shape[-3:]).reshape(-1, *grid.shape[-3:]),
                                          mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(*lead, *out.shape[-3:])


def _op_types(model: GraphModel, graph: str) -> set[str]:
    return {node.op_type for node in onnx.load(str(model.directory / model.manifest.graphs[graph].file)).graph.node}


def test_a_reexport_draws_the_sources_pixels_through_todays_graphs(sprite_heads_root, tiny_corpus, tmp_path,
                                                                  monkeypatch, capsys) -> None:
    """`slr redraw --reexport` (export/redraw.py: reexport_version): a version exported with GridSample placing its
    sprite is exported anew with the same weights, its sprite placed by two matrix products: both video graphs new,
    both tasks' frames and the familiarity rebuild's the source's to float rounding, the calibration and every other
    file the source's; --reexport and --rebuild-stride together are refused."""
    data = tmp_path / "corpus"
    tiny_corpus.save(data)
    args = ["redraw", str(sprite_heads_root), "--data-dir", str(data)]
    with monkeypatch.context() as patch:
        patch.setattr(star_module, "sample_separable", _grid_sampled)
        assert main([*args, "--from-version", "heads", "--version", "gridded", "--reexport"]) == 0
    assert main([*args, "--from-version", "gridded", "--version", "separable", "--reexport"]) == 0
    assert "exported anew" in capsys.readouterr().out and read_latest(sprite_heads_root) == "heads"
    old, new = GraphModel.open(sprite_heads_root, "gridded"), GraphModel.open(sprite_heads_root, "separable")
    new.manifest.verify_files(new.directory)
    for graph in (VIDEO_DECODER, VIDEO_REBUILD):
        assert "GridSample" in _op_types(old, graph) and "GridSample" not in _op_types(new, graph)
    changed = changed_files(old, new)
    assert changed == {old.manifest.graphs[g].file for g in (VIDEO_DECODER, VIDEO_REBUILD)}, changed
    assert new.manifest.familiarity == old.manifest.familiarity and new.manifest.refit["weights_from"] == "gridded"
    video = np.stack([c.frames for c in tiny_corpus.splits["val"][:4]]).astype(np.float32) / 255.0
    z, first = old.video_mu(video), np.ascontiguousarray(video[:, 0])
    for graph, frame in ((VIDEO_DECODER, first), (VIDEO_DECODER, np.zeros_like(first)), (VIDEO_REBUILD, first)):
        assert np.abs(new.frames(z, frame, graph) - old.frames(z, frame, graph)).max() < 1e-5
    with pytest.raises(SystemExit) as usage:
        main([*args, "--from-version", "heads", "--version", "never", "--reexport", "--rebuild-stride", "2"])
    assert usage.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert not (sprite_heads_root / "never").exists()


def test_clearing_sentence_to_videos_track_changes_its_rows_alone(sprite_heads_root, tiny_corpus, tmp_path,
                                                                   capsys) -> None:
    """`slr redraw --clear-sentence-track` (export/redraw.py: clear_track_version): only the video decoder's graph is
    new, its video-to-video rows and the familiarity rebuild the source's, its sentence rows PyTorch's with the track
    cleared; the calibration is kept; a version that already clears it is refused."""
    args = ["redraw", str(sprite_heads_root), "--clear-sentence-track"]
    source, cleared, data = derived_by_cli(sprite_heads_root, tiny_corpus, tmp_path, capsys, args, "cleared",
                                           "track cleared")
    changed = changed_files(source, cleared)
    assert changed == {source.manifest.graphs[VIDEO_DECODER].file}, changed
    assert cleared.manifest.model.clear_sentence_track and cleared.manifest.familiarity == source.manifest.familiarity
    video = np.stack([c.frames for c in tiny_corpus.splits["val"][:4]]).astype(np.float32) / 255.0
    z, first = source.video_mu(video), np.ascontiguousarray(video[:, 0])
    assert np.abs(cleared.frames(z, first) - source.frames(z, first)).max() < 1e-5
    decoder = decoder_from_graph(cleared, cleared.manifest.model).eval()
    none = np.zeros_like(first)
    with torch.no_grad():
        want = decoder(torch.from_numpy(z), torch.from_numpy(none)).numpy()
    assert np.abs(cleared.frames(z, none) - want).max() < 1e-4
    assert main([*args, "--data-dir", str(data), "--from-version", "cleared", "--version", "never"]) == 2
    assert "already clears" in capsys.readouterr().err and not (sprite_heads_root / "never").exists()


def test_a_steeper_sentence_alpha_scales_its_logit_and_leaves_video_to_video_alone(sprite_heads_root) -> None:
    model = GraphModel.open(sprite_heads_root, None)
    decoder = decoder_from_graph(model, model.manifest.model).eval()
    cfg = decoder.cfg
    z = torch.from_numpy(np.random.default_rng(2).standard_normal((3, cfg.latent_dim)).astype(np.float32))
    none, first = torch.zeros(3, cfg.height, cfg.width, 3), torch.rand(3, cfg.height, cfg.width, 3)
    with torch.no_grad():
        before, before_v = decoder.shape_and_track(z, none)[0], decoder.shape_and_track(z, first)[0]
        steepen_sentence_alpha(decoder, 3.0)
        after, after_v = decoder.shape_and_track(z, none)[0], decoder.shape_and_track(z, first)[0]
    assert torch.allclose(torch.logit(after[:, 3]), 3.0 * torch.logit(before[:, 3]), atol=1e-3)
    assert torch.equal(after[:, :3], before[:, :3]) and torch.equal(after_v, before_v)


# ---------------------------------------------------------------- the sentence decoder (export/refit_sentence.py)

def test_the_sentence_decoder_read_back_from_its_graphs_computes_what_they_compute(sprite_root) -> None:
    """The LSTM's gates are stacked in another order in ONNX than in PyTorch: read back wrong, the words differ."""
    model = GraphModel.open(sprite_root, "base")
    decoder = sentence_decoder_from_graphs(model).eval()
    z = torch.from_numpy(np.random.default_rng(1).standard_normal((4, model.manifest.model.latent_dim))
                         .astype(np.float32))
    files = {name: model.manifest.graphs[name].file for name in SENTENCE_GRAPHS}
    assert sentence_parity(decoder, model.directory, files, z) < 1e-4


def test_a_sentence_refit_changes_the_sentence_graphs_alone(sprite_root, tiny_corpus) -> None:
    train, val = tiny_corpus.splits["train"], tiny_corpus.splits["val"]
    rc = SentenceRefitConfig(steps=30, lr=3e-3, eval_every=10, batch_size=16)
    directory, record = refit_sentence_version(sprite_root, "base", "words", train, val, TINY.train, rc,
                                               progress=False)
    assert read_latest(sprite_root) == "base"
    base, new = Manifest.read(sprite_root / "base"), Manifest.read(directory)
    new.verify_files(directory)
    changed = {name for name in base.files if base.files[name] != new.files[name]}
    assert changed == {base.graphs[name].file for name in SENTENCE_GRAPHS}, changed
    assert new.refit is not None and new.refit["from"] == "base" and new.refit["graphs"] == list(SENTENCE_GRAPHS)
    assert new.familiarity == base.familiarity  # the score reads the encoders and the video decoder: unchanged
    losses = [row["train_loss"] for row in record["validation"][1:]]
    assert losses[-1] < losses[0], losses
    assert {"caption.colour", "two_objects.first_clause", "paraphrase.all"} <= set(record["validation"][0])
    mu = GraphModel.open(sprite_root, "base").video_mu(np.stack([c.frames for c in val[:8]]).astype(np.float32) / 255)
    assert GraphModel.open(sprite_root, "words").captions(mu) != GraphModel.open(sprite_root, "base").captions(mu)


def test_the_cli_refits_the_sentence_decoder_without_recalibrating(sprite_root, tiny_corpus, tmp_path,
                                                                    capsys) -> None:
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli-words", "--decoder", "sentence",
                     "--calibration-clips", "16") == 0
    out = capsys.readouterr().out
    assert "published" in out and "familiarity threshold" not in out
    assert refit_cli(sprite_root, tiny_corpus, tmp_path, "cli-words", "--decoder", "sentence") == 2
    assert "already exists" in capsys.readouterr().err
