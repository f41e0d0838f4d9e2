"""A cheaper encoder derived from an exported version without its checkpoint (export/variants.py, `slr
export-variant`): the new version loads in the engine with every checksum, its encoder is what it says (int8 QDQ,
fp16, ...), it matches the source's fp32 encoder within the variant's tolerance, every other file is the source's,
and a variant out of tolerance publishes nothing."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from core.manifest import Manifest, sha256_file
from export.parity import ExportParityError
from export.quantize import VARIANTS
from export.variants import TOLERANCE, derive_version
from service.engine import Engine

SOURCE = "tiny-test"  # the version tests/conftest.py exports


@pytest.fixture()
def root(artifacts_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's artifacts root (the derived versions are written beside the source)."""
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir, copy)
    return copy


@pytest.fixture(scope="module")
def clips(tiny_corpus) -> dict[str, np.ndarray]:
    def video(split: str) -> np.ndarray:
        return np.stack([c.frames for c in tiny_corpus.splits[split]]).astype(np.float32) / 255.0

    return {"train": video("train"), "test": video("test")}


def encoder_outputs(root: Path, version: str, video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return Engine.load(root, version, device="cpu", intra_op_threads=1).encode(video, None)


def test_static_int8_encoder_loads_matches_fp32_and_keeps_the_manifest_valid(root: Path, clips) -> None:
    source = Manifest.read(root / SOURCE)
    path = derive_version(root, SOURCE, "tiny-int8", "int8-static", calibration=clips["train"],
                          sample_video=clips["test"])
    assert path == root / "tiny-int8"
    assert (root / "latest").read_text().strip() == SOURCE  # only --latest moves the pointer
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging left

    derived = Manifest.read(path)
    derived.verify_files(path)
    assert derived.version == "tiny-int8" and derived.precision == "fp32+int8-static:encoder_v"
    assert derived.graphs == source.graphs and derived.tasks == source.tasks and derived.model == source.model
    assert derived.familiarity == source.familiarity and derived.parity == source.parity
    assert set(derived.files) == set(source.files)
    changed = {name for name in derived.files if derived.files[name] != source.files[name]}
    assert changed == {"encoder_v.onnx"}
    q = derived.quantization
    assert q["mode"] == "int8-static" and q["graphs"] == ["encoder_v"] and q["source_version"] == SOURCE
    assert q["source_files"] == {"encoder_v.onnx": source.files["encoder_v.onnx"]}
    assert q["calibration_clips"] == len(clips["train"])
    assert q["encoder_v"]["clips_compared"] == len(clips["test"])
    assert 0.0 < q["encoder_v"]["max_abs_diff_vs_source"] <= TOLERANCE["int8-static"]
    assert 0.0 <= q["encoder_v"]["greedy_captions_equal_fraction"] <= 1.0

    graph = onnx.load(str(path / "encoder_v.onnx"))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ form, fused into QLinearConv by onnxruntime
    int8_weights = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 3  # the three convolutions of the frame CNN at least

    # The engine loads it (every sha256 checked) and its encoder stays within the stated tolerance of fp32.
    mu, sigma = encoder_outputs(root, SOURCE, clips["test"])
    mu8, sigma8 = encoder_outputs(root, "tiny-int8", clips["test"])
    assert np.max(np.abs(mu8 - mu)) <= TOLERANCE["int8-static"]
    assert np.max(np.abs(sigma8 - sigma)) <= TOLERANCE["int8-static"]
    assert np.max(np.abs(mu8 - mu)) > 0  # it is another graph, not a copy


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "int8-static"])
def test_other_variants_load_and_match_fp32(root: Path, clips, variant: str) -> None:
    path = derive_version(root, None, f"tiny-{variant}", variant, sample_video=clips["test"][:8],
                          update_latest=True)
    assert (root / "latest").read_text().strip() == f"tiny-{variant}"
    report = Manifest.read(path).quantization
    assert report["mode"] == variant and report["encoder_v"]["max_abs_diff_vs_source"] <= TOLERANCE[variant]
    mu, _ = encoder_outputs(root, SOURCE, clips["test"])
    mu2, _ = encoder_outputs(root, "latest", clips["test"])
    assert np.max(np.abs(mu2 - mu)) <= TOLERANCE[variant]


def test_a_variant_beyond_its_tolerance_publishes_nothing(root: Path, clips) -> None:
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(ExportParityError, match="tolerance"):
        derive_version(root, SOURCE, "tiny-bad", "int8-static", calibration=clips["train"],
                       sample_video=clips["test"], tolerance=0.0, update_latest=True)
    assert sorted(p.name for p in root.iterdir()) == before
    assert (root / "latest").read_text().strip() == SOURCE


def test_bad_requests_are_refused(root: Path, clips) -> None:
    with pytest.raises(FileExistsError):
        derive_version(root, SOURCE, SOURCE, "optimized")
    with pytest.raises(ValueError, match="calibration"):
        derive_version(root, SOURCE, "tiny-x", "int8-static")
    with pytest.raises(ValueError, match="variant"):
        derive_version(root, SOURCE, "tiny-x", "int4")
    with pytest.raises(ValueError, match="video-only"):
        derive_version(root, SOURCE, "tiny-x", "optimized", graphs=("encoder_s",))
    with pytest.raises(ValueError, match="clips must be"):
        derive_version(root, SOURCE, "tiny-x", "int8-static", calibration=clips["train"][:, :, :4])
    assert not (root / "tiny-x").exists()


def test_a_tampered_source_is_refused(root: Path) -> None:
    manifest = json.loads((root / SOURCE / "manifest.json").read_text())
    (root / SOURCE / "encoder_v.onnx").write_bytes(b"not a graph")
    assert sha256_file(root / SOURCE / "encoder_v.onnx") != manifest["files"]["encoder_v.onnx"]
    with pytest.raises(Exception, match="sha256"):
        derive_version(root, SOURCE, "tiny-x", "optimized")


def test_cli_export_variant_with_a_saved_corpus(root: Path, tiny_corpus, tmp_path: Path, capsys) -> None:
    from cli.main import main

    data = tiny_corpus.save(tmp_path / "corpus")
    assert main(["export-variant", str(root), "--variant", "int8-static", "--version", "tiny-cli",
                 "--calibration-data", str(data), "--calibration-clips", "48", "--parity-clips", "8",
                 "--latest"]) == 0
    assert "exported" in capsys.readouterr().out
    assert (root / "latest").read_text().strip() == "tiny-cli"
    q = Manifest.read(root / "tiny-cli").quantization
    assert q["calibration_clips"] == 48 and q["encoder_v"]["clips_compared"] == 8
    Engine.load(root)  # the new latest, every checksum verified


def test_cli_check_needs_latest_and_refuses_before_writing(root: Path) -> None:
    from cli.main import main

    with pytest.raises(SystemExit, match="--latest"):
        main(["export-variant", str(root), "--variant", "optimized", "--version", "tiny-chk", "--check"])
    assert not (root / "tiny-chk").exists()
