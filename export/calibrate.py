"""Recalibrate an exported model's familiarity score (core/familiarity.py) from its own ONNX graphs, in place: for a
version whose checkpoint is not at hand (the shipped model) or whose calibration layout has changed. The graphs are
untouched (their sha256s in the manifest stay valid); only the manifest's `familiarity` entry is rewritten."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.familiarity import Calibration
from core.frames import Box
from core.graph_contract import ENCODER_V, VIDEO_DECODER
from core.manifest import MANIFEST, Manifest, resolve_version_dir
from export.parity import open_cpu_session

BATCH = 64


def rebuild_with_graphs(version_dir: Path, manifest: Manifest, video: np.ndarray) -> np.ndarray:
    """The model's rebuild of clips [N,T,H,W,3] in [0, 1] through its graphs, as the service computes it: the video
    encoder's mu, then the video decoder from it and the clip's first frame."""
    encoder = open_cpu_session(version_dir / manifest.graphs[ENCODER_V].file)
    decoder = open_cpu_session(version_dir / manifest.graphs[VIDEO_DECODER].file)
    parts = []
    for i in range(0, len(video), BATCH):
        v = np.ascontiguousarray(video[i:i + BATCH], dtype=np.float32)
        mu = encoder.run(["mu"], {"video": v})[0]
        parts.append(decoder.run(["frames"], {"z": mu, "first_frame": np.ascontiguousarray(v[:, 0])})[0])
    return np.concatenate(parts)


def recalibrate(root: Path, version: str | None, video: np.ndarray, boxes: Sequence[Box | None],
                source: str) -> Calibration:
    """Calibrate on familiar clips (the training corpus' validation split) and write the version's manifest
    atomically (a temporary file renamed over it, so a reader never sees half a manifest)."""
    version_dir = resolve_version_dir(root, version)
    manifest = Manifest.read(version_dir, drop_calibration=True)  # the old one may be of another layout
    manifest.verify_files(version_dir)
    if manifest.model.video_input != "frames" or VIDEO_DECODER not in manifest.graphs:
        raise ValueError(f"{version_dir}: a model without frames input and a video decoder has no familiarity score")
    calibration = Calibration.fit(video, rebuild_with_graphs(version_dir, manifest, video), boxes, source)
    updated = dataclasses.replace(manifest, familiarity=calibration)
    staging = version_dir / f".{MANIFEST}.tmp"
    staging.mkdir(exist_ok=True)
    try:
        updated.write(staging)
        os.replace(staging / MANIFEST, version_dir / MANIFEST)
    finally:
        staging.rmdir()
    return calibration
