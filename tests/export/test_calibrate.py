"""`slr calibrate`: an exported version's familiarity recalibrated from its own graphs, in place, the graphs untouched
(the shipped model has no checkpoint beside it)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.familiarity import SIDES, VIDEO_SIGNALS, Calibration
from core.manifest import MANIFEST, Manifest, resolve_version_dir


def test_recalibration_rewrites_only_the_familiarity_entry(artifacts_dir: Path, tiny_corpus, tmp_path: Path) -> None:
    from export.calibrate import recalibrate
    from model.familiarity import clip_boxes
    from service.engine import Engine

    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir, root)
    version_dir = resolve_version_dir(root, None)
    before = json.loads((version_dir / MANIFEST).read_text())
    graphs = {p.name: p.read_bytes() for p in version_dir.glob("*.onnx")}
    clips = tiny_corpus.splits["val"]
    video = np.stack([c.frames for c in clips]).astype(np.float32) / 255.0
    calibration = recalibrate(root, None, video, clip_boxes(clips), "val of the tiny corpus")
    after = json.loads((version_dir / MANIFEST).read_text())
    assert {k: v for k, v in after.items() if k != "familiarity"} == {k: v for k, v in before.items()
                                                                        if k != "familiarity"}
    assert after["familiarity"]["source"] == "val of the tiny corpus" and after["familiarity"]["clips"] == len(clips)
    assert tuple(after["familiarity"]["signals"]) == VIDEO_SIGNALS and tuple(after["familiarity"]["sides"]) == SIDES
    assert Calibration.from_dict(after["familiarity"]) == calibration
    assert {p.name: p.read_bytes() for p in version_dir.glob("*.onnx")} == graphs
    assert not list(version_dir.glob(".*")), "no staging left behind"
    Engine.load(root)  # every sha256 in the manifest still holds


def test_a_model_without_a_video_decoder_is_refused(artifacts_dir: Path, tmp_path: Path) -> None:
    from export.calibrate import recalibrate

    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir, root)
    version_dir = resolve_version_dir(root, None)
    d = json.loads((version_dir / MANIFEST).read_text())
    del d["graphs"]["video_decoder"]
    Manifest.from_dict(d).write(version_dir)
    with pytest.raises(ValueError, match="video decoder"):
        recalibrate(root, None, np.zeros((2, 1, 1, 1, 3), np.float32), [None, None], "x")


def test_the_cli_calibrates_from_a_saved_corpus(artifacts_dir: Path, tiny_corpus, tmp_path: Path) -> None:
    root, data = tmp_path / "artifacts", tmp_path / "corpus"
    shutil.copytree(artifacts_dir, root)
    tiny_corpus.save(data)
    command = [sys.executable, "-m", "cli.main", "calibrate", str(root), "--data-dir", str(data),
               "--calibration-clips", "8"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert "on 8 validation clips of corpus" in out.stdout
    manifest = json.loads((resolve_version_dir(root, None) / MANIFEST).read_text())
    assert manifest["familiarity"]["clips"] == 8


def test_a_recalibration_as_a_new_version_leaves_the_old_one_and_latest(artifacts_dir: Path, tiny_corpus,
                                                                         tmp_path: Path) -> None:
    """`slr calibrate --as-version`: the copy carries the new calibration and no release record (the gate writes
    that), the source version and `latest` are untouched, and a name already taken is refused before any work."""
    from export.publish import read_latest
    from service.engine import Engine

    root, data = tmp_path / "artifacts", tmp_path / "corpus"
    shutil.copytree(artifacts_dir, root)
    tiny_corpus.save(data)
    source = resolve_version_dir(root, None)
    before = json.loads((source / MANIFEST).read_text())
    latest = read_latest(root)
    command = [sys.executable, "-m", "cli.main", "calibrate", str(root), "--data-dir", str(data),
               "--calibration-clips", "8", "--as-version", "recalibrated"]
    cwd = Path(__file__).resolve().parents[2]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert "as recalibrated, beside it" in out.stdout
    assert json.loads((source / MANIFEST).read_text()) == before and read_latest(root) == latest
    copy = json.loads((root / "recalibrated" / MANIFEST).read_text())
    assert copy["version"] == "recalibrated" and copy.get("release") is None and copy["familiarity"]["clips"] == 8
    assert {k: v for k, v in copy.items() if k not in ("version", "created", "release", "familiarity")} == {
        k: v for k, v in before.items() if k not in ("version", "created", "release", "familiarity")}
    Engine.load(root, "recalibrated")  # every file copied, every sha256 holds
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert again.returncode != 0 and "already exists" in again.stderr
