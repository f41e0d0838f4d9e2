"""Versions that draw otherwise with the source version's weights, no training:

    redraw_version(root, "quality-v16", "quality-v17", clips)       video-to-video over the first frame's scene
    restride_version(root, "quality-v21", "quality-v22", 2, clips)  the familiarity rebuild, every 2nd frame
    reexport_version(root, "quality-v23", "quality-v24", clips)     the same pixels through today's drawing code
    clear_track_version(root, "quality-v24", "quality-v25", clips)  sentence-to-video's track cleared

redraw_version: the video decoder draws video-to-video over the first frame's own scene (ModelConfig.
first_frame_background, model/star.py: first_frame_scene); only the video decoder's graph is new. Its sentence-to-
video rows compute exactly what the source's compute (no first frame: the scene is the decoder's own background), its
video-to-video rows draw the source's sprite and track over the first frame; the familiarity rebuild graph is the
source's file, byte for byte (it keeps the decoder's own background, so the calibration stays the source's). All
three are checked on the written graphs before anything is published; `slr release` then decides whether the version
becomes `latest`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from core.config import ModelConfig, rebuilt_frames
from core.graph_contract import VIDEO_DECODER, VIDEO_REBUILD
from export.graph_model import GraphModel
from export.graphs import graph_specs
from export.parity import FP32_ATOL, max_abs_diff, open_cpu_session
from export.refit import decoder_from_graph, publish_refit, rows_difference, video_graphs_parity
from model.star import StarModel


def redraw_version(root: Path, source_version: str | None, version: str, clips: np.ndarray,
                   atol: float = FP32_ATOL) -> Path:
    """Publish `version` beside the source (latest untouched). `clips`: [N,T,H,W,3] in [0, 1] whose latents and
    first frames the graphs are checked on."""
    source = _sprite_source(root, source_version)
    cfg = source.manifest.model
    if cfg.first_frame_background:
        raise ValueError(f"{source.version} already draws video-to-video over the first frame")
    if VIDEO_REBUILD not in graph_specs(cfg):
        raise ValueError(f"{source.version} has no rebuild graph apart from its decoder: its familiarity rebuild would "
                         "change with it (refit it with sentence-to-video's own heads first)")
    return _publish_redrawn(root, source, version, clips, "first_frame_background", "sentence-to-video", atol)


def _sprite_source(root: Path, source_version: str | None) -> GraphModel:
    source = GraphModel.open(root, source_version)
    if source.manifest.model.video_decoder != "sprite" or VIDEO_DECODER not in source.manifest.graphs:
        raise ValueError(f"{source.version} has no sprite video decoder to redraw")
    return source


def _publish_redrawn(root: Path, source: GraphModel, version: str, clips: np.ndarray, flag: str,
                     kept: Literal["sentence-to-video", "video-to-video"], atol: float) -> Path:
    """The source with its video decoder's graph alone exported anew from its weights with the config's boolean
    `flag` on; the `kept` task's rows checked against the source's graph, every row against PyTorch."""
    cfg = ModelConfig.from_dict({**source.manifest.model.to_dict(), flag: True})
    decoder = decoder_from_graph(source, cfg).eval()
    star = StarModel(decoder.cfg).eval()  # only the decoder's graph is new
    star.video_decoder = decoder
    z = source.video_mu(clips)
    first = np.ascontiguousarray(clips[:, 0])

    def parity(staging: Path) -> float:
        frame = first if kept == "video-to-video" else np.zeros_like(first)
        gap = rows_difference(staging / graph_specs(star.cfg)[VIDEO_DECODER].file, source, z, frame)
        if gap > atol:
            raise ValueError(f"{kept} rows differ from {source.version}'s by {gap:.2e} (> {atol:.0e})")
        return video_graphs_parity(decoder, staging, torch.from_numpy(z), torch.from_numpy(first))

    record = {flag: True, "weights_from": source.version}
    return publish_refit(root, source, version, star, (VIDEO_DECODER,), parity, record, atol)


def restride_version(root: Path, source_version: str | None, version: str, stride: int, clips: np.ndarray,
                     atol: float = FP32_ATOL) -> Path:
    """Publish `version` beside the source (latest untouched) whose familiarity rebuild graph draws every `stride`-th
    frame (ModelConfig.rebuild_stride) with the source rebuild graph's weights; every other file is the source's.
    The frames it draws are checked against PyTorch and against the source rebuild's own at the same frames. It is
    published without a familiarity calibration (its rebuild-miss signal reads fewer frames): `slr calibrate` it,
    then `slr release`. `clips`: [N,T,H,W,3] in [0, 1] whose latents and first frames the graph is checked on."""
    source = GraphModel.open(root, source_version)
    cfg = source.manifest.model
    if VIDEO_REBUILD not in source.manifest.graphs:
        raise ValueError(f"{source.version} has no rebuild graph apart from its decoder to redraw (a sprite decoder "
                         "with sentence-to-video's own heads exports one)")
    if stride == cfg.rebuild_stride:
        raise ValueError(f"{source.version} already rebuilds every {stride} frame(s)")
    ours, theirs = (np.arange(cfg.frames)[rebuilt_frames(cfg.frames, s)] for s in (stride, cfg.rebuild_stride))
    decoder = decoder_from_graph(source, dataclasses.replace(cfg, rebuild_stride=stride), VIDEO_REBUILD).eval()
    star = StarModel(decoder.cfg).eval()  # only the rebuild graph is new
    star.video_decoder = decoder
    z = source.video_mu(clips)
    first = np.ascontiguousarray(clips[:, 0])

    def parity(staging: Path) -> float:
        got = open_cpu_session(staging / graph_specs(decoder.cfg)[VIDEO_REBUILD].file).run(
            ["frames"], {"z": z, "first_frame": first})[0]
        was = source.frames(z, first, VIDEO_REBUILD)
        both = np.intersect1d(ours, theirs)  # the last frame at least
        gap = float(np.abs(got[:, np.searchsorted(ours, both)] - was[:, np.searchsorted(theirs, both)]).max())
        if gap > atol:
            raise ValueError(f"the rebuilt frames differ from {source.version}'s by {gap:.2e} (> {atol:.0e})")
        with torch.no_grad():
            return max_abs_diff([decoder.rebuild(torch.from_numpy(z), torch.from_numpy(first)).numpy()], [got])

    record = {"rebuild_stride": stride, "weights_from": source.version}
    return publish_refit(root, source, version, star, (VIDEO_REBUILD,), parity, record, atol, keep_calibration=False)


def reexport_version(root: Path, source_version: str | None, version: str, clips: np.ndarray,
                     atol: float = FP32_ATOL) -> Path:
    """Publish `version` beside the source (latest untouched) whose video graphs (the decoder and its familiarity
    rebuild) are exported anew from the source's weights by today's drawing code: the same pixels to float rounding
    (e.g. the sprite placed by two matrix products instead of GridSample: model/star.py sample_separable). Each new
    graph is checked against PyTorch and against the source's own graph, both video tasks' rows; the calibration is
    the source's (the rebuild draws what it drew)."""
    source = _sprite_source(root, source_version)
    cfg = source.manifest.model
    decoder = decoder_from_graph(source, cfg).eval()  # the rebuild graph's weights are the decoder's own
    star = StarModel(cfg).eval()
    star.video_decoder = decoder
    graphs = tuple(name for name in (VIDEO_DECODER, VIDEO_REBUILD) if name in source.manifest.graphs)
    z = source.video_mu(clips)
    first = np.ascontiguousarray(clips[:, 0])
    cases = [(VIDEO_DECODER, np.zeros_like(first)), (VIDEO_DECODER, first)] + [(VIDEO_REBUILD, first)] * (
        VIDEO_REBUILD in graphs)

    def parity(staging: Path) -> float:
        for name, frame in cases:
            got = open_cpu_session(staging / graph_specs(cfg)[name].file).run(
                ["frames"], {"z": z, "first_frame": frame})[0]
            gap = float(np.abs(got - source.frames(z, frame, name)).max())
            if gap > atol:
                raise ValueError(f"the new {name} graph draws {source.version}'s rows {gap:.2e} apart (> {atol:.0e})")
        return video_graphs_parity(decoder, staging, torch.from_numpy(z), torch.from_numpy(first))

    record = {"reexported": list(graphs), "weights_from": source.version}
    return publish_refit(root, source, version, star, graphs, parity, record, atol)


def clear_track_version(root: Path, source_version: str | None, version: str, clips: np.ndarray,
                        atol: float = FP32_ATOL) -> Path:
    """Publish `version` beside the source (latest untouched) whose video decoder draws sentence-to-video over its
    background with the sprite's track filled from the rest of it (ModelConfig.clear_sentence_track, model/star.py:
    clear_track): the source's weights, its video-to-video rows exactly, the familiarity rebuild graph and the
    calibration byte for byte (only video_decoder.onnx is new)."""
    source = _sprite_source(root, source_version)
    if source.manifest.model.clear_sentence_track:
        raise ValueError(f"{source.version} already clears sentence-to-video's track")
    return _publish_redrawn(root, source, version, clips, "clear_sentence_track", "video-to-video", atol)
