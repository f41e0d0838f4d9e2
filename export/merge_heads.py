"""A version whose video decoder draws video-to-video with one version's heads and sentence-to-video with another's:
both refits of the same encoders (one latent), each picked for the task it does best (quality-v13: quality-v12's
refit raised reconstruct's shape 78.4 -> 80.5 and lost sentence-to-video's 65.6 -> 61.2, quality-v11 the reverse).

A sprite decoder with sentence_heads (model/star.py: SpriteVideoDecoder) draws each row from its own kind's heads; the
one parameter both kinds of row read is the first frame's correction of the background, whose input is zeros for a
sentence: its bias. The sentence heads' own background bias takes up the difference, so the merged graph's
sentence-to-video rows compute exactly what the sentence version's compute, and its video-to-video rows (and the
rebuild graph, and so the familiarity calibration) what the video version's compute. Both are checked on the written
graphs before anything is published."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.channels import INPUT_KEYS
from core.graph_contract import VIDEO_DECODER, VIDEO_REBUILD, encoder_graph
from export.graph_model import GraphModel
from export.graphs import graph_specs
from export.parity import FP32_ATOL
from export.refit import decoder_from_graph, publish_refit, rows_difference, video_graphs_parity
from model.star import SpriteVideoDecoder, StarModel

SENTENCE_HEADS = "sentence."  # DrawHeads' parameters in the decoder's state dict


def check_mergeable(video_from: GraphModel, sentence_from: GraphModel) -> None:
    """Both sprite decoders with sentence-to-video's own heads, on byte-identical encoders (one latent)."""
    for model in (video_from, sentence_from):
        cfg = model.manifest.model
        if cfg.video_decoder != "sprite" or not cfg.sentence_heads or VIDEO_DECODER not in model.manifest.graphs:
            raise ValueError(f"{model.version} has no sprite video decoder with sentence-to-video's own heads")
    for key in INPUT_KEYS:
        graph = encoder_graph(key)
        files = [m.manifest.files.get(m.manifest.graphs[graph].file) if graph in m.manifest.graphs else None
                 for m in (video_from, sentence_from)]
        if files[0] != files[1]:
            raise ValueError(f"{video_from.version} and {sentence_from.version} have different {graph} graphs: their "
                             "latents differ, so one decoder cannot take heads from both")


def merged_decoder(video_from: GraphModel, sentence_from: GraphModel) -> SpriteVideoDecoder:
    """video_from's decoder with sentence_from's sentence heads, the background bias moved over (module docstring)."""
    check_mergeable(video_from, sentence_from)
    a = decoder_from_graph(video_from, video_from.manifest.model)
    b = decoder_from_graph(sentence_from, sentence_from.manifest.model)
    state = a.state_dict()
    state.update({name: value for name, value in b.state_dict().items() if name.startswith(SENTENCE_HEADS)})
    state["sentence.bg_from_z.bias"] = (b.state_dict()["sentence.bg_from_z.bias"] + b.state_dict()["bg_from_first.bias"]
                                        - a.state_dict()["bg_from_first.bias"])
    a.load_state_dict(state)
    return a.eval()


def source_difference(merged: Path, video_from: GraphModel, sentence_from: GraphModel, z: np.ndarray,
                      first: np.ndarray) -> float:
    """Largest |merged - source| of the written graph: video-to-video rows against video_from's graph, sentence-to-
    video rows (zeros as the first frame) against sentence_from's."""
    return max(rows_difference(merged, video_from, z, first),
               rows_difference(merged, sentence_from, z, np.zeros_like(first)))


def merge_version(root: Path, video_from: str, sentence_from: str, version: str, first: np.ndarray,
                  atol: float = FP32_ATOL) -> Path:
    """Publish `version` beside them (latest untouched: the release gate moves it). `first`: clips [N,T,H,W,3] in
    [0, 1] whose latents and first frames the graphs are checked on."""
    a, b = GraphModel.open(root, video_from), GraphModel.open(root, sentence_from)
    decoder = merged_decoder(a, b)
    star = StarModel(decoder.cfg).eval()  # only the decoder's graphs are new
    star.video_decoder = decoder
    specs = graph_specs(star.cfg)
    z = a.video_mu(first)
    z_t, first_t = torch.from_numpy(z), torch.from_numpy(np.ascontiguousarray(first[:, 0]))

    def parity(staging: Path) -> float:
        gap = source_difference(staging / specs[VIDEO_DECODER].file, a, b, z, first[:, 0])
        if gap > atol:
            raise ValueError(f"the merged decoder differs from its sources' graphs by {gap:.2e} (> {atol:.0e})")
        return video_graphs_parity(decoder, staging, z_t, first_t)

    record = {"video_heads_from": a.version, "sentence_heads_from": b.version}
    return publish_refit(root, a, version, star, (VIDEO_DECODER, VIDEO_REBUILD), parity, record, atol)
