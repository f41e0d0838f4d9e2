"""The ONNX export: every registered channel configuration has its graphs, every graph passes onnx.checker
and matches PyTorch, the manifest says so, and a failed export writes nothing."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from core.channels import INPUT_KEYS, REGISTRY
from core.config import preset
from core.manifest import sha256_file
from export.graphs import BATCH_ON_AXIS_1, graph_specs
from export.onnx_export import export_run
from export.parity import FP32_ATOL, ExportParityError
from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.star import StarModel

GRAPHS = tuple(graph_specs(preset("tiny").model))  # names only: encoder_v/s/vs, sentence_init/step, video_decoder
EXPECTED_TASKS = {"encode_v", "encode_s", "encode_vs", "caption", "paraphrase", "reconstruct", "sentence_to_video"}


@pytest.fixture(scope="module")
def version_dir(artifacts_dir: Path) -> Path:
    return artifacts_dir / (artifacts_dir / "latest").read_text().strip()


@pytest.fixture(scope="module")
def manifest(version_dir: Path) -> dict:
    return json.loads((version_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def checkpoint(tiny_run: Path) -> Checkpoint:
    return load_checkpoint(tiny_run / "checkpoint.pt")


@pytest.fixture(scope="module")
def model(checkpoint: Checkpoint) -> StarModel:
    return checkpoint.model.eval()


@pytest.fixture(scope="module")
def sessions(version_dir: Path, manifest: dict) -> dict[str, ort.InferenceSession]:
    return {name: ort.InferenceSession(str(version_dir / g["file"]), providers=["CPUExecutionProvider"])
            for name, g in manifest["graphs"].items()}


# ---------------------------------------------------------------- the manifest

def test_manifest_lists_every_task_graph_and_checksum(manifest: dict, version_dir: Path, tiny_run: Path) -> None:
    assert set(manifest["tasks"]) == EXPECTED_TASKS
    assert manifest["unsupported_tasks"] == {}
    assert set(manifest["graphs"]) == set(GRAPHS)
    assert manifest["format"] == 1 and manifest["opset"] >= 17 and manifest["precision"] == "fp32"
    assert manifest["source_checkpoint_sha256"] == sha256_file(tiny_run / "checkpoint.pt")
    cfg = manifest["model"]
    assert manifest["preprocess"] == {"input": "frames", "frames": cfg["frames"], "height": cfg["height"],
                                      "width": cfg["width"], "layout": "THWC", "value_range": [0.0, 1.0]}
    on_disk = {p.name for p in version_dir.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"vocab.json", *(f"{g}.onnx" for g in GRAPHS)} <= on_disk
    for name, digest in manifest["files"].items():
        assert sha256_file(version_dir / name) == digest, name
    assert manifest["tasks"]["caption"]["graphs"] == ["encoder_v", "sentence_init", "sentence_step"]
    assert manifest["tasks"]["sentence_to_video"]["graphs"] == ["encoder_s", "video_decoder"]


def test_latest_pointer_names_the_version_and_no_staging_is_left(artifacts_dir: Path, manifest: dict) -> None:
    assert (artifacts_dir / "latest").read_text().strip() == manifest["version"]
    assert not [p for p in artifacts_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("task", sorted(REGISTRY))
def test_every_registered_configuration_has_its_graphs(task: str, manifest: dict, version_dir: Path) -> None:
    """Fails as soon as a configuration is added to the registry without a graph to serve it."""
    config = REGISTRY[task]
    assert task in manifest["tasks"], f"registered configuration {task} was not exported"
    entry = manifest["tasks"][task]
    assert set(entry["inputs"]) == set(config.inputs) and set(entry["outputs"]) == set(config.outputs)
    assert f"encoder_{config.input_key}" in entry["graphs"]
    for graph in entry["graphs"]:
        assert (version_dir / manifest["graphs"][graph]["file"]).is_file(), f"{task} needs {graph}"


@pytest.mark.parametrize("key", INPUT_KEYS)
def test_one_encoder_graph_per_input_configuration(key: str, manifest: dict) -> None:
    assert manifest["graphs"][f"encoder_{key}"]["inputs"] == (["video"] if "v" in key else []) + (
        ["tokens", "lengths"] if "s" in key else [])


def test_parity_figures_are_recorded(manifest: dict) -> None:
    parity = manifest["parity"]
    for graph in GRAPHS:
        assert 0.0 <= parity[graph]["max_abs_diff"] <= FP32_ATOL, graph
    assert parity["greedy_captions_equal"] is True and parity["captions_compared"] > 0


# ---------------------------------------------------------------- the graphs

@pytest.mark.parametrize("graph", GRAPHS)
def test_graph_passes_onnx_checker_with_dynamic_batch(graph: str, version_dir: Path) -> None:
    proto = onnx.load(str(version_dir / f"{graph}.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        batch_axis = 1 if value.name in BATCH_ON_AXIS_1 else 0
        assert dims[batch_axis].dim_param, f"{graph}.{value.name}: batch axis is not dynamic"
        if value.name == "tokens":
            assert dims[1].dim_param, "token length L is not dynamic"


def test_inactive_input_is_folded_away(version_dir: Path) -> None:
    """encoder_v computes no sentence encoder, encoder_s no video encoder: neither their ops nor their weights."""
    def graph(name: str) -> onnx.GraphProto:
        return onnx.load(str(version_dir / f"{name}.onnx")).graph

    def ops(name: str) -> set[str]:
        return {n.op_type for n in graph(name).node}

    def weights(name: str) -> set[str]:
        return {t.name for t in graph(name).initializer}

    assert "LSTM" not in ops("encoder_v") and not any(w.startswith("sentence_encoder") for w in weights("encoder_v"))
    assert not {"Conv", "GRU"} & ops("encoder_s") and not any(w.startswith("video_encoder")
                                                            for w in weights("encoder_s"))
    assert {"Conv", "GRU", "LSTM"} <= ops("encoder_vs")


# ---------------------------------------------------------------- parity, per channel configuration

def run_task_onnx(task: str, sessions: dict, video: np.ndarray, tokens: np.ndarray, lengths: np.ndarray,
                  max_len: int) -> dict[str, object]:
    from export.parity import onnx_sentences

    config = REGISTRY[task]
    feed = {}
    if "video" in config.inputs:
        feed["video"] = video
    if "sentence" in config.inputs:
        feed["tokens"], feed["lengths"] = tokens, lengths
    mu, sigma = sessions[f"encoder_{config.input_key}"].run(["mu", "sigma"], feed)
    out: dict[str, object] = {"mu": mu, "sigma": sigma}
    if "sentence" in config.outputs:
        out["sentence"] = onnx_sentences(sessions, mu, 1, max_len)
    if "video" in config.outputs:
        first = video[:, 0] if "video" in config.inputs else np.zeros_like(video[:, 0])
        out["video"] = sessions["video_decoder"].run(["frames"], {"z": mu, "first_frame": first})[0]
    return out


@torch.no_grad()
def run_task_torch(task: str, model: StarModel, video: np.ndarray, tokens: np.ndarray, lengths: np.ndarray,
                   max_len: int) -> dict[str, object]:
    config = REGISTRY[task]
    v = torch.from_numpy(video) if "video" in config.inputs else None
    t, n = (torch.from_numpy(tokens), torch.from_numpy(lengths)) if "sentence" in config.inputs else (None, None)
    latent = model.encode(v, t, n)
    out: dict[str, object] = {"mu": latent.mu.numpy(), "sigma": latent.sigma.numpy()}
    if "sentence" in config.outputs:
        out["sentence"] = model.generate_sentences(latent.mu, beam_size=1, max_len=max_len)
    if "video" in config.outputs:
        first = v[:, 0] if v is not None else None
        out["video"] = model.decode_video(latent.mu, first).numpy()
    return out


@pytest.mark.parametrize("task", sorted(REGISTRY))
def test_task_parity_against_pytorch(task: str, checkpoint: Checkpoint, model: StarModel, sessions: dict,
                                    tiny_corpus) -> None:
    """Random and real inputs through the task's graphs in onnxruntime and through PyTorch: fp32 within 1e-4,
    greedy captions equal token for token."""
    cfg = model.cfg
    clips = tiny_corpus.splits["test"][:5]
    rng = np.random.default_rng(1)
    real_video = np.stack([c.frames for c in clips]).astype(np.float32) / 255.0
    random_video = rng.random(real_video.shape, dtype=np.float32)
    rows = [checkpoint.vocab.encode(c.captions[0], cfg.max_words) for c in clips]
    rows[1] = rows[1][:1]  # a one-word sentence next to full ones: right padding must not matter
    lengths = np.array([max(1, len(r)) for r in rows], dtype=np.int64)
    tokens = np.zeros((len(rows), max(lengths) + 2), dtype=np.int64)  # extra padding columns on purpose
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
    for video in (real_video, random_video):
        got = run_task_onnx(task, sessions, video, tokens, lengths, cfg.max_words + 1)
        ref = run_task_torch(task, model, video, tokens, lengths, cfg.max_words + 1)
        for key in ("mu", "sigma", "video"):
            if key in ref:
                assert np.abs(got[key] - ref[key]).max() <= FP32_ATOL, f"{task} {key}"
        if "sentence" in ref:
            assert got["sentence"] == ref["sentence"], f"{task}: greedy captions differ"


# ---------------------------------------------------------------- publication

def break_one_graph(real_export_graph):
    """An export_graph that writes a subtly wrong encoder_s: one weight nudged by 1e-2."""
    def export_graph(model, spec, path, opset=17):
        proto = real_export_graph(model, spec, path, opset)
        if spec.name == "encoder_s":
            init = next(t for t in proto.graph.initializer
                        if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2)
            arr = onnx.numpy_helper.to_array(init) + 1e-2
            init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
            onnx.save(proto, str(path))
        return proto
    return export_graph


def test_parity_failure_raises_and_publishes_nothing(tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    import export.onnx_export as ex

    root = tmp_path / "artifacts"
    export_run(tiny_run, root, version="good")
    monkeypatch.setattr(ex, "export_graph", break_one_graph(ex.export_graph))
    with pytest.raises(ExportParityError, match="encoder_s"):
        export_run(tiny_run, root, version="bad")
    assert sorted(p.name for p in root.iterdir()) == ["good", "latest"]  # no "bad", no staging left behind
    assert (root / "latest").read_text().strip() == "good"


def test_default_version_and_latest_move_to_the_newest(tiny_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    first = export_run(tiny_run, root, version="older")
    second = export_run(tiny_run, root)
    digest = sha256_file(tiny_run / "checkpoint.pt")
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", second.name) and second.name.endswith(digest[:8])
    assert (root / "latest").read_text().strip() == second.name and first.is_dir()
    with pytest.raises(FileExistsError):
        export_run(tiny_run, root, version="older")
    for bad in ("latest", "../escape", ".hidden", ""):
        with pytest.raises(ValueError):
            export_run(tiny_run, root, version=bad or "a/b")


def test_checkpoint_file_path_is_accepted(tiny_run: Path, tmp_path: Path) -> None:
    out = export_run(tiny_run / "checkpoint.pt", tmp_path, version="v1")
    assert (out / "manifest.json").is_file()


def test_model_without_video_output_lists_video_tasks_as_unsupported(tiny_run: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(tiny_run / "checkpoint.pt")
    cfg = ckpt.model.cfg
    cfg_nv = type(cfg).from_dict({**cfg.to_dict(), "video_output": False})
    model = StarModel(cfg_nv)
    state = {k: v for k, v in ckpt.model.state_dict().items() if not k.startswith("video_decoder.")}
    model.load_state_dict(state)
    save_checkpoint(tmp_path / "checkpoint.pt", model, ckpt.vocab, ckpt.train_config)
    manifest = json.loads((export_run(tmp_path, tmp_path / "art", version="nv") / "manifest.json").read_text())
    assert set(manifest["unsupported_tasks"]) == {"reconstruct", "sentence_to_video"}
    assert all("video_output" in reason for reason in manifest["unsupported_tasks"].values())
    assert set(manifest["tasks"]) == EXPECTED_TASKS - {"reconstruct", "sentence_to_video"}
    assert "video_decoder" not in manifest["graphs"] and not (tmp_path / "art" / "nv" / "video_decoder.onnx").exists()


@pytest.mark.parametrize("mode", ["int8", "fp16"])
def test_quantised_export_reports_its_cost_and_serves(mode: str, tiny_run: Path, tmp_path: Path) -> None:
    from service.engine import Engine

    out = export_run(tiny_run, tmp_path, version=mode, quantize=mode)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == mode and manifest["quantization"]["mode"] == mode
    for graph in GRAPHS:
        assert np.isfinite(manifest["quantization"][graph]["max_abs_diff_vs_fp32"])
        onnx.checker.check_model(onnx.load(str(out / f"{graph}.onnx")), full_check=True)
    assert 0.0 <= manifest["quantization"]["greedy_captions_equal_fraction"] <= 1.0
    assert manifest["parity"]["greedy_captions_equal"] is True  # the fp32 gate ran before quantising
    engine = Engine.load(tmp_path, mode)
    mu, _ = engine.encode(np.zeros((2, *engine.video_shape()), np.float32), None)
    assert len(engine.decode_sentence(mu)) == 2


def test_copy_of_artifacts_is_self_contained(artifacts_dir: Path, tmp_path: Path) -> None:
    """A version dir copied elsewhere (e.g. into an image) still verifies: no absolute paths inside."""
    from service.engine import Engine

    shutil.copytree(artifacts_dir, tmp_path / "copy")
    assert Engine.load(tmp_path / "copy").version == (artifacts_dir / "latest").read_text().strip()


def test_sample_clips_as_stored_and_wrong_shapes(tiny_run: Path, tiny_corpus, tmp_path: Path) -> None:
    """uint8 clips straight from the corpus are scaled to [0, 1]; a sample of the wrong frame size is refused
    before anything is written."""
    frames = np.stack([c.frames for c in tiny_corpus.splits["test"][:3]])
    assert frames.dtype == np.uint8
    manifest = json.loads((export_run(tiny_run, tmp_path / "a", version="u8", sample_video=frames)
                           / "manifest.json").read_text())
    assert manifest["parity"]["encoder_v"]["cases"] == 3  # two random cases + the real one
    with pytest.raises(ValueError, match="sample_video"):
        export_run(tiny_run, tmp_path / "b", version="bad", sample_video=frames[:, :, :4])
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_every_graph_a_task_needs_has_one_spec_and_every_spec_serves_a_task() -> None:
    """The GraphSpec registry and the channel registry agree: no task's graph forgotten, no graph orphaned (the
    rebuild graph serves the familiarity score, not a task)."""
    from core.channels import REGISTRY
    from core.graph_contract import VIDEO_REBUILD
    from core.manifest import task_graphs
    from export.graphs import GRAPHS

    needed = {g for task in REGISTRY.values() for g in task_graphs(task)}
    specs = [spec.name for spec in GRAPHS]
    assert len(specs) == len(set(specs)), "two GraphSpecs share a name"
    assert needed | {VIDEO_REBUILD} == set(specs) and VIDEO_REBUILD not in needed
