"""Recalibrate an exported model's familiarity score (core/familiarity.py) from its own ONNX graphs: for a version
whose checkpoint is not at hand (the shipped model) or whose calibration layout has changed. In place, the graphs
are untouched (their sha256s in the manifest stay valid) and only the manifest's `familiarity` entry is rewritten;
or as a new version beside it, a copy of its files with the new calibration, which the release gate then measures
against the current default like any other new version (a recalibration moves the false alarms and the
out-of-domain share users meet)."""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.familiarity import Calibration
from core.frames import Box
from core.graph_contract import VIDEO_DECODER
from core.manifest import Manifest, resolve_version_dir
from export.graph_model import GraphModel
from export.publish import new_version_name, publish_version, rewrite_manifest


def recalibrate(root: Path, version: str | None, video: np.ndarray, boxes: Sequence[Box | None],
                source: str, as_version: str | None = None) -> Calibration:
    """Calibrate on familiar clips (the training corpus' validation split) and write the version's manifest
    atomically (a temporary file renamed over it, so a reader never sees half a manifest); with `as_version`, publish
    a copy of the version under that name instead (latest untouched: `slr release` moves it)."""
    version_dir = resolve_version_dir(root, version)
    manifest = Manifest.read(version_dir, drop_calibration=True)  # the old one may be of another layout
    manifest.verify_files(version_dir)
    if manifest.model.video_input != "frames" or VIDEO_DECODER not in manifest.graphs:
        raise ValueError(f"{version_dir}: a model without frames input and a video decoder has no familiarity score")
    calibration = Calibration.fit(video, GraphModel(version_dir, manifest).rebuild(video), boxes, source)
    if as_version is None:
        rewrite_manifest(version_dir, dataclasses.replace(manifest, familiarity=calibration))
    else:
        publish_copy(root, version_dir, dataclasses.replace(manifest, familiarity=calibration), as_version)
    return calibration


def publish_copy(root: Path, version_dir: Path, manifest: Manifest, version: str) -> Path:
    """The version's files under a new name with `manifest` (its own release record dropped: that is the gate's)."""
    version = new_version_name(root, version)

    def build(staging: Path) -> None:
        for name in manifest.files:
            shutil.copy2(version_dir / name, staging / name)
        dataclasses.replace(manifest, version=version, release=None,
                            created=datetime.now(timezone.utc).isoformat(timespec="seconds")).write(staging)

    return publish_version(root, version, build, update_latest=False)
