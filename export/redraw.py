"""A version whose video decoder draws video-to-video over the first frame's own scene (ModelConfig.
first_frame_background, model/star.py: first_frame_scene), with the source version's weights: no training.

    redraw_version(root, "quality-v16", "quality-v17", clips)

Only the video decoder's graph is new. Its sentence-to-video rows compute exactly what the source's compute (no first
frame: the scene is the decoder's own background), its video-to-video rows draw the source's sprite and track over
the first frame; the familiarity rebuild graph is the source's file, byte for byte (it keeps the decoder's own
background, so the calibration stays the source's). All three are checked on the written graphs before anything is
published; `slr release` then decides whether the version becomes `latest`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from core.graph_contract import VIDEO_DECODER, VIDEO_REBUILD
from export.graph_model import GraphModel
from export.graphs import graph_specs
from export.parity import FP32_ATOL
from export.refit import decoder_from_graph, publish_refit, rows_difference, video_graphs_parity
from model.star import StarModel


def redraw_version(root: Path, source_version: str | None, version: str, clips: np.ndarray,
                   atol: float = FP32_ATOL) -> Path:
    """Publish `version` beside the source (latest untouched). `clips`: [N,T,H,W,3] in [0, 1] whose latents and
    first frames the graphs are checked on."""
    source = GraphModel.open(root, source_version)
    cfg = source.manifest.model
    if cfg.video_decoder != "sprite" or VIDEO_DECODER not in source.manifest.graphs:
        raise ValueError(f"{source.version} has no sprite video decoder to redraw")
    if cfg.first_frame_background:
        raise ValueError(f"{source.version} already draws video-to-video over the first frame")
    if VIDEO_REBUILD not in graph_specs(cfg):
        raise ValueError(f"{source.version} has no rebuild graph apart from its decoder: its familiarity rebuild would "
                         "change with it (refit it with sentence-to-video's own heads first)")
    decoder = decoder_from_graph(source, dataclasses.replace(cfg, first_frame_background=True)).eval()
    star = StarModel(decoder.cfg).eval()  # only the decoder's graph is new
    star.video_decoder = decoder
    z = source.video_mu(clips)
    first = np.ascontiguousarray(clips[:, 0])

    def parity(staging: Path) -> float:
        gap = rows_difference(staging / graph_specs(star.cfg)[VIDEO_DECODER].file, source, z, np.zeros_like(first))
        if gap > atol:
            raise ValueError(f"sentence-to-video rows differ from {source.version}'s by {gap:.2e} (> {atol:.0e})")
        return video_graphs_parity(decoder, staging, torch.from_numpy(z), torch.from_numpy(first))

    record = {"first_frame_background": True, "weights_from": source.version}
    return publish_refit(root, source, version, star, (VIDEO_DECODER,), parity, record, atol)
