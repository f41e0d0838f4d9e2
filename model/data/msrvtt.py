"""MSR-VTT: `train_val_videodatainfo.json` / `test_videodatainfo.json` plus one feature file per video.

Each json holds `videos[]` (`video_id`, `split` in train / validate / test) and `sentences[]`
(`caption`, `video_id`, `sen_id`). The splits come from the files (6513 / 497 / 2990 in the real data).
Features: `<features_dir>/<video_id>.npy`, float (D,) or (Tf, D), read with `allow_pickle=False`;
videos without one are skipped and counted in `meta["missing_features"]`. Without a features folder: captions
only (`meta["sentences_only"]`, model/data/features.py: NO_VIDEO). Torch-free.
"""
from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from pathlib import Path

from model.data.corpus import Corpus
from model.data.features import check_feature_dims, split_clips

SPLIT_NAMES = {"train": "train", "validate": "val", "val": "val", "test": "test"}


def _natural_key(video_id: str) -> tuple:
    """video2 before video10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", video_id))


def read_videodatainfo(paths: list[Path]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """video id -> split name (train / val / test), video id -> captions ordered by sen_id."""
    split_of: dict[str, str] = {}
    sentences: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for path in paths:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        for video in doc.get("videos", []):
            split = SPLIT_NAMES.get(video["split"])
            if split is None:
                raise ValueError(f"{path}: unknown split {video['split']!r} for {video['video_id']}")
            split_of[video["video_id"]] = split
        for s in doc.get("sentences", []):
            sentences[s["video_id"]].append((int(s.get("sen_id", 0)), s["caption"].strip()))
    captions = {vid: [text for _, text in sorted(items)] for vid, items in sentences.items()}
    return split_of, captions


def load_msrvtt(annotation_files: list[Path] | Path, features_dir: Path) -> Corpus:
    one = isinstance(annotation_files, (str, Path))
    paths = [Path(annotation_files)] if one else [Path(p) for p in annotation_files]
    split_of, captions = read_videodatainfo(paths)
    # A video without any sentence has nothing to learn from.
    no_caption = [vid for vid in split_of if not captions.get(vid)]
    splits, missing = {}, []
    sentences_only = not Path(features_dir).is_dir()
    if sentences_only:
        warnings.warn(f"MSR-VTT: no feature folder {features_dir}: captions only (the sentence tasks)")
    for split in ("train", "val", "test"):
        ids = sorted((vid for vid, s in split_of.items() if s == split and captions.get(vid)), key=_natural_key)
        splits[split], lost = split_clips(ids, captions, Path(features_dir), sentences_only)
        missing += lost
    if missing:
        warnings.warn(f"MSR-VTT: {len(missing)} videos have no feature file in {features_dir}; skipped")
    meta = {
        "sources": [str(p) for p in paths], "features_dir": str(features_dir), "sentences_only": sentences_only,
        "feature_dim": None if sentences_only else check_feature_dims(splits),
        "videos": len(split_of), "videos_without_captions": len(no_caption),
        "missing_features": len(missing), "missing_feature_ids": missing[:50],
    }
    return Corpus(name="msrvtt", video_input="features", splits=splits, meta=meta)
