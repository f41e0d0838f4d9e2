"""The figures an exported model is shipped with, recomputed through the ONNX engine alone (torch-free).
It joins two rooms (the synthetic generator of model/data and the service engine), so it lives with the
command line that composes the rooms, not inside either.

A fixed check set (synthetic clips generated from a recorded seed at the model's frame shape) is
captioned by `service.engine.Engine`; `check.json` beside the shipped model records the result, and a
test recomputes it, so a shipped model whose graphs, vocabulary or preprocessing drift is caught.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CHECK_SEED = 20261125  # a corpus no training run uses
CHECK_CLIPS = 240
CHECK_FILE = "check.json"


def check_figures(root: str | Path, n_clips: int = CHECK_CLIPS, seed: int = CHECK_SEED) -> dict[str, Any]:
    """Caption attribute accuracy of the engine on the check set, plus the model version it measured."""
    from model.data.attributes import attribute_accuracy
    from model.data.synthetic import generate
    from service.engine import Engine

    engine = Engine.load(root)
    cfg = engine.config
    corpus = generate(n_clips, seed=seed, frames=cfg.frames, height=cfg.height, width=cfg.width)
    clips = [c for split in ("train", "val", "test") for c in corpus.splits[split]]
    video = np.stack([f for c in clips if (f := c.frames) is not None]).astype(np.float32) / 255.0  # generated: all
    captions: list[str] = []
    for i in range(0, len(clips), 32):
        mu, _ = engine.encode(video[i: i + 32], None)
        captions += [engine.vocab.decode(ids) for ids in engine.decode_sentence(mu)]
    acc = attribute_accuracy(captions, [c.attributes for c in clips])
    return {"version": engine.version, "check_seed": seed, "check_clips": len(clips),
            "caption_attributes": {k: round(v, 4) for k, v in acc.items()},
            "samples": [{"truth": {a: c.attributes[a] for a in ("colour", "shape", "motion")}, "caption": s}
                        for c, s in zip(clips[:6], captions)]}


def write_check(root: str | Path) -> Path:
    path = Path(root) / CHECK_FILE
    path.write_text(json.dumps(check_figures(root), indent=2))
    return path
