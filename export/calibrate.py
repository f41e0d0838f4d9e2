"""Recalibrate an exported model's familiarity score (core/familiarity.py) from its own ONNX graphs, in place: for a
version whose checkpoint is not at hand (the shipped model) or whose calibration layout has changed. The graphs are
untouched (their sha256s in the manifest stay valid); only the manifest's `familiarity` entry is rewritten."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.familiarity import Calibration
from core.frames import Box
from core.graph_contract import VIDEO_DECODER
from core.manifest import Manifest, resolve_version_dir
from export.graph_model import GraphModel
from export.publish import rewrite_manifest


def recalibrate(root: Path, version: str | None, video: np.ndarray, boxes: Sequence[Box | None],
                source: str) -> Calibration:
    """Calibrate on familiar clips (the training corpus' validation split) and write the version's manifest
    atomically (a temporary file renamed over it, so a reader never sees half a manifest)."""
    version_dir = resolve_version_dir(root, version)
    manifest = Manifest.read(version_dir, drop_calibration=True)  # the old one may be of another layout
    manifest.verify_files(version_dir)
    if manifest.model.video_input != "frames" or VIDEO_DECODER not in manifest.graphs:
        raise ValueError(f"{version_dir}: a model without frames input and a video decoder has no familiarity score")
    calibration = Calibration.fit(video, GraphModel(version_dir, manifest).rebuild(video), boxes, source)
    rewrite_manifest(version_dir, dataclasses.replace(manifest, familiarity=calibration))
    return calibration
