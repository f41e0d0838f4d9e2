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
