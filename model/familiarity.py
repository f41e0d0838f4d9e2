"""The familiarity calibration of a PyTorch model (what `slr export` writes into the manifest): the model's rebuilds of
clips like its training data, fitted by core/familiarity.py, where the score itself lives. Its separation on
unfamiliar inputs is measured by model/evaluate.py: evaluate_familiarity."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.familiarity import Calibration
from core.frames import Box
from model.data.corpus import Clip
from model.inference import EVAL_BATCH, true_frames
from model.star import StarModel

# Validation clips `slr export` calibrates on (None: all; cli/export.py: --calibration-clips). Every one: the score
# flags what lies beyond about the 99.8th percentile of a signal, which 1,000 clips place on two or three of them (on
# quality-v13, 1,000 clips flagged 4.2% of two-object test clips, all 2,304 2.0%).
CALIBRATION_CLIPS: int | None = None


@torch.no_grad()
def rebuild(model: StarModel, video: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """The model's rebuilds of clips [N,T,H,W,3] in [0, 1], as the service computes them from the graphs: the video
    decoder's rebuild from z = mu and the clip's first frame."""
    model.eval()
    parts: list[np.ndarray] = []
    for i in range(0, len(video), batch):
        v = torch.from_numpy(np.ascontiguousarray(video[i:i + batch], dtype=np.float32))
        parts.append(model.rebuild_video(model.encode(video=v).mu, v[:, 0]).numpy())
    return np.concatenate(parts)


def clip_boxes(clips: Sequence[Clip]) -> list[Box | None]:
    """Where each corpus clip's picture lies in the model's frame (letterboxed synthetic clips record it)."""
    return [tuple(c.attributes["frame_box"]) if c.attributes.get("frame_box") else None for c in clips]


def familiarity_calibration(model: StarModel, clips: Sequence[Clip] | None) -> Calibration | None:
    """The calibration from clips like the training data (the validation split). None for a model that cannot
    rebuild video (features input or no video output) or when no clips are given."""
    if not clips or model.cfg.video_input != "frames" or model.video_decoder is None:
        return None
    video = true_frames(clips)
    return Calibration.fit(video, rebuild(model, video), clip_boxes(clips), f"{len(clips)} validation clips")


def familiarity_scores(model: StarModel, calibration: Calibration, video: np.ndarray,
                       boxes: Sequence[Box | None]) -> np.ndarray:
    return calibration.score(video, rebuild(model, video), boxes)
