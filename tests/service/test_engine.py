"""The onnxruntime engine: checksums, providers told truthfully, every task against PyTorch, and no torch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from core.channels import REGISTRY
from model.checkpoint import Checkpoint, load_checkpoint
from service.engine import ArtifactError, DeviceUnavailableError, Engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(artifacts_dir: Path) -> Engine:
    e = Engine.load(artifacts_dir, intra_op_threads=1)
    e.warmup()
    return e


@pytest.fixture(scope="module")
def checkpoint(tiny_run: Path) -> Checkpoint:
    ckpt = load_checkpoint(tiny_run / "checkpoint.pt")
    ckpt.model.eval()
    return ckpt


@pytest.fixture(scope="module")
def clips(tiny_corpus) -> tuple[np.ndarray, list[str]]:
    test = tiny_corpus.splits["test"][:6]
    return np.stack([c.frames for c in test]).astype(np.float32) / 255.0, [c.captions[0] for c in test]


@pytest.fixture()
def artifacts_copy(artifacts_dir: Path, tmp_path: Path) -> Path:
    """A private copy to damage (the session artifacts are shared with other tests)."""
    return Path(shutil.copytree(artifacts_dir, tmp_path / "artifacts"))


def version_of(root: Path) -> Path:
    return root / (root / "latest").read_text().strip()


# ---------------------------------------------------------------- loading and checksums

def test_load_follows_latest_and_exposes_the_contract(engine: Engine, artifacts_dir: Path) -> None:
    assert engine.version == (artifacts_dir / "latest").read_text().strip()
    assert engine.manifest.version == engine.version
    assert engine.config.vocab_size == len(engine.vocab)
    assert set(engine.providers) == set(engine.manifest.graphs)
    assert all(engine.has_task(name) for name in REGISTRY) and not engine.has_task("no_such_task")
    assert Engine.load(artifacts_dir, version=engine.version).version == engine.version


def test_sessions_use_explicit_options(engine: Engine) -> None:
    for name, session in engine.sessions.items():
        opts = session.get_session_options()
        assert opts.enable_cpu_mem_arena is False, name
        assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        assert opts.intra_op_num_threads == 1


def test_tampered_graph_is_refused(artifacts_copy: Path) -> None:
    path = version_of(artifacts_copy) / "sentence_step.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        Engine.load(artifacts_copy)


@pytest.mark.parametrize("name", ["encoder_v.onnx", "vocab.json", "manifest.json"])
def test_missing_file_is_refused(name: str, artifacts_copy: Path) -> None:
    (version_of(artifacts_copy) / name).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        Engine.load(artifacts_copy)


def test_graph_without_checksum_is_refused(artifacts_copy: Path) -> None:
    path = version_of(artifacts_copy) / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["files"]["video_decoder.onnx"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="checksum"):
        Engine.load(artifacts_copy)


def test_missing_version_and_pointer_are_refused(artifacts_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        Engine.load(artifacts_copy, version="19700101-000000-deadbeef")
    with pytest.raises(ArtifactError):
        Engine.load(tmp_path / "empty")


# ---------------------------------------------------------------- providers, told truthfully

def test_auto_on_cpu_machine_reports_cpu(artifacts_dir: Path) -> None:
    engine = Engine.load(artifacts_dir, device="auto")
    assert engine.uses_gpu is False
    assert all(p == ["CPUExecutionProvider"] for p in engine.providers.values())


def test_cuda_required_without_cuda_is_refused(artifacts_dir: Path) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime lists CUDA; the listed-but-unusable case is tested below")
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        Engine.load(artifacts_dir, device="cuda")


@pytest.fixture()
def cuda_listed_but_unusable(monkeypatch) -> None:
    """What onnxruntime-gpu does on a machine without a GPU: CUDA is "available", sessions run on CPU."""
    if any("CUDA" in p for p in ort.get_available_providers()):
        pytest.skip("CUDA is really listed here")
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])


def test_listed_cuda_fallback_is_reported_as_cpu(cuda_listed_but_unusable, artifacts_dir: Path) -> None:
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):  # onnxruntime's own (quiet) fallback notice
        engine = Engine.load(artifacts_dir, device="auto")
    assert engine.uses_gpu is False
    assert all("CUDAExecutionProvider" not in p for p in engine.providers.values())


def test_listed_cuda_fallback_is_refused_when_cuda_is_required(cuda_listed_but_unusable, artifacts_dir: Path) -> None:
    with pytest.warns(UserWarning), pytest.raises(DeviceUnavailableError, match="refusing to fall back"):
        Engine.load(artifacts_dir, device="cuda")


def test_unknown_device_is_a_value_error(artifacts_dir: Path) -> None:
    with pytest.raises(ValueError):
        Engine.load(artifacts_dir, device="tpu")


# ---------------------------------------------------------------- tasks against PyTorch

def test_encode_matches_pytorch_for_each_input_configuration(engine: Engine, checkpoint: Checkpoint, clips) -> None:
    video, sentences = clips
    rows = [checkpoint.vocab.encode(s, engine.config.max_words) for s in sentences]
    tokens, lengths = (torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long),
                       torch.tensor([len(r) for r in rows]))
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    v = torch.from_numpy(video)
    with torch.no_grad():
        refs = {"v": checkpoint.model.encode(v), "s": checkpoint.model.encode(None, tokens, lengths),
                "vs": checkpoint.model.encode(v, tokens, lengths)}
    got = {"v": engine.encode(video, None), "s": engine.encode(None, rows), "vs": engine.encode(video, rows)}
    for key, ref in refs.items():
        assert np.abs(got[key][0] - ref.mu.numpy()).max() <= 1e-4, key
        assert np.abs(got[key][1] - ref.sigma.numpy()).max() <= 1e-4, key


def test_padding_does_not_change_a_sentence_code(engine: Engine) -> None:
    alone, _ = engine.encode(None, [[5, 6]])
    padded, _ = engine.encode(None, [[5, 6], [5, 6, 7, 8, 9, 4]])
    assert np.abs(alone[0] - padded[0]).max() <= 1e-5


@pytest.mark.parametrize("beam", [1, 3])
def test_sentences_match_pytorch_token_for_token(beam: int, engine: Engine, checkpoint: Checkpoint, clips) -> None:
    video, _ = clips
    mu, _ = engine.encode(video, None)
    got = engine.decode_sentence(mu, beam_size=beam)
    ref = checkpoint.model.generate_sentences(torch.from_numpy(mu), beam_size=beam)
    assert got == ref
    assert all(isinstance(t, int) for row in got for t in row)


def test_decode_video_matches_pytorch(engine: Engine, checkpoint: Checkpoint, clips) -> None:
    video, _ = clips
    mu, _ = engine.encode(video, None)
    with torch.no_grad():
        ref_first = checkpoint.model.decode_video(torch.from_numpy(mu), torch.from_numpy(video[:, 0])).numpy()
        ref_zero = checkpoint.model.decode_video(torch.from_numpy(mu)).numpy()
    assert np.abs(engine.decode_video(mu, video[:, 0]) - ref_first).max() <= 1e-4
    frames = engine.decode_video(mu)
    assert np.abs(frames - ref_zero).max() <= 1e-4
    assert frames.shape == (len(mu), *engine.video_shape()) and 0.0 <= frames.min() and frames.max() <= 1.0


def test_bad_inputs_are_value_errors(engine: Engine) -> None:
    with pytest.raises(ValueError, match="video"):
        engine.encode(np.zeros((1, 2, 3, 4, 3), np.float32), None)
    with pytest.raises(ValueError, match="token"):
        engine.encode(None, [[len(engine.vocab)]])
    with pytest.raises(ValueError, match="z"):
        engine.decode_sentence(np.zeros((1, engine.config.latent_dim + 1), np.float32))
    with pytest.raises(ValueError):
        engine.encode(None, None)
    assert engine.decode_sentence(np.zeros((0, engine.config.latent_dim), np.float32)) == []


# ---------------------------------------------------------------- no torch in the serving path

TORCH_FREE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from service.engine import Engine

    engine = Engine.load(sys.argv[1], intra_op_threads=1)
    engine.warmup()
    cfg = engine.config
    video = np.random.default_rng(0).random((2, cfg.frames, cfg.height, cfg.width, 3), dtype=np.float32)
    tokens = [engine.vocab.encode("a red circle moves left"), [4, 5]]
    out = {}
    mu_v, _ = engine.encode(video, None)
    mu_s, _ = engine.encode(None, tokens)
    out["encode"] = [engine.encode(video, tokens)[0].shape[1], mu_v.shape[1], mu_s.shape[1]]
    out["caption"] = engine.decode_sentence(mu_v)
    out["paraphrase"] = engine.decode_sentence(mu_s, beam_size=3)
    out["reconstruct"] = list(engine.decode_video(mu_v, video[:, 0]).shape)
    out["sentence_to_video"] = list(engine.decode_video(mu_s).shape)
    out["torch_loaded"] = "torch" in sys.modules
    print(json.dumps(out))
""")


def test_every_task_runs_without_torch(artifacts_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", TORCH_FREE_SCRIPT, str(artifacts_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch_loaded"] is False
    assert len(out["caption"]) == 2 and len(out["paraphrase"]) == 2
    assert out["reconstruct"][0] == 2 and out["sentence_to_video"][0] == 2


def test_bench_runs_every_task_against_pytorch(tiny_run: Path, artifacts_dir: Path) -> None:
    """bench/engine.py end to end on the tiny model (figures not asserted: this machine is shared)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench.engine", str(tiny_run), "--artifacts", str(artifacts_dir),
                           "--repeats", "1", "--batch", "4", "--threads", "1", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["task"] for r in report["results"]] == list(REGISTRY)
    assert all(r["batch1"]["onnx_ms"] > 0 and r["batch4"]["torch_items_s"] > 0 for r in report["results"])


def test_version_latest_means_the_pointer(artifacts_dir) -> None:
    from service.engine import resolve_version_dir

    named = (artifacts_dir / "latest").read_text().strip()
    assert (resolve_version_dir(artifacts_dir, "latest") == resolve_version_dir(artifacts_dir, None)
            == artifacts_dir / named)
