"""What the feature corpora (MSVD, MSR-VTT) share: one `<clip_id>.npy` feature file per clip, read without
pickle, or captions only when there is no feature folder. Torch-free.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.data.corpus import Clip


def load_features(path: Path) -> np.ndarray:
    """A (D,) or (Tf, D) float32 array; refuses object arrays (no pickle) and other ranks."""
    array = np.load(path, allow_pickle=False)
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path}: features must be numeric (D,) or (Tf, D), got {array.dtype} {array.shape}")
    return array.astype(np.float32, copy=False)


def clips_with_features(ids: list[str], captions: dict[str, list[str]],
                        features_dir: Path) -> tuple[list[Clip], list[str]]:
    """Clips whose `<id>.npy` exists, and the ids that had none."""
    clips, missing = [], []
    for clip_id in ids:
        path = Path(features_dir) / f"{clip_id}.npy"
        if not path.exists():
            missing.append(clip_id)
            continue
        clips.append(Clip(clip_id=clip_id, captions=captions[clip_id], frames=None, features=load_features(path),
                          attributes={}))
    return clips, missing


# Caption files without video features: one constant number stands in for each clip's video, so tensors, model and
# evaluation run unchanged; the video channel then carries nothing, and only sentence-to-sentence means anything.
NO_VIDEO = np.zeros(1, dtype=np.float32)


def sentence_clips(ids: list[str], captions: dict[str, list[str]]) -> list[Clip]:
    """Clips of captions only, each with the constant stand-in feature."""
    return [Clip(clip_id=i, captions=captions[i], frames=None, features=NO_VIDEO.copy(), attributes={}) for i in ids]


def split_clips(ids: list[str], captions: dict[str, list[str]], features_dir: Path,
                sentences_only: bool) -> tuple[list[Clip], list[str]]:
    """A split's clips (with their feature files, or captions only) and the ids that had no feature file."""
    return (sentence_clips(ids, captions), []) if sentences_only else clips_with_features(ids, captions, features_dir)


def check_feature_dims(splits: dict[str, list[Clip]]) -> int | None:
    dims = {clip.features.shape[-1] for clips in splits.values() for clip in clips}
    if len(dims) > 1:
        raise ValueError(f"feature files disagree on the feature size: {sorted(dims)}")
    return dims.pop() if dims else None
