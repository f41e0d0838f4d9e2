"""MSVD (YouTube2Text): public annotations plus one feature file per clip.

Annotations come as `video_corpus.csv` (`VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,
Description`; only English rows are kept; clip id `{VideoID}_{Start}_{End}`) or as
`AllVideoDescriptions.txt` (`<clip_id> <caption>` per line, `#` lines are comments).
Features: `<features_dir>/<clip_id>.npy`, float (D,) or (Tf, D), read with `allow_pickle=False`.

Split rule (the paper's): clips in the standard order, the first 1200 train, the next 100 val, the last
670 test. The standard order is that of `youtube_mapping.txt` (`<clip_id> vid<N>` lines, ordered by N)
when given; otherwise clip ids sorted as strings. When the annotations hold a different number of clips
than `sum(split_sizes)` (fixtures, partial downloads), the sizes are scaled proportionally: train =
round(N * 1200 / 1970), val = round(N * 100 / 1970) (at least 1 each when N >= 3), test = the rest.
The split is computed over every annotated clip before clips without a feature file are dropped, so a
missing file never moves another clip to a different split.
Without a features folder the corpus holds the captions only (`meta["sentences_only"]`): the sentence tasks need
no video, and a constant stand-in feature (model/data/features.py: NO_VIDEO) keeps every other path running.
Torch-free.
"""
from __future__ import annotations

import csv
import re
import warnings
from collections import defaultdict
from pathlib import Path

from model.data.corpus import Corpus
from model.data.features import check_feature_dims, split_clips

MSVD_SPLIT_SIZES = (1200, 100, 670)


def read_video_corpus_csv(path: Path) -> dict[str, list[str]]:
    """clip id -> English captions in file order."""
    captions: dict[str, list[str]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8-sig") as f:  # tolerate a BOM
        for row in csv.DictReader(f):
            if (row.get("Language") or "").strip() != "English":
                continue
            text = (row.get("Description") or "").strip()
            if text:
                captions[f"{row['VideoID'].strip()}_{row['Start'].strip()}_{row['End'].strip()}"].append(text)
    return dict(captions)


def read_all_video_descriptions(path: Path) -> dict[str, list[str]]:
    """clip id -> captions from `<clip_id> <caption>` lines; `#` lines and blank lines are skipped."""
    captions: dict[str, list[str]] = defaultdict(list)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        clip_id, _, text = line.partition(" ")
        if text.strip():
            captions[clip_id].append(text.strip())
    return dict(captions)


def read_annotations(path: Path) -> dict[str, list[str]]:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_video_corpus_csv(path)
    return read_all_video_descriptions(path)


def read_mapping_order(path: Path) -> list[str]:
    """Clip ids in the standard order of `youtube_mapping.txt` (`<clip_id> vid<N>`)."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"vid\d+", parts[1]):
            entries.append((int(parts[1][3:]), parts[0]))
    return [clip_id for _, clip_id in sorted(entries)]


def scaled_split_sizes(n: int, split_sizes: tuple[int, int, int] = MSVD_SPLIT_SIZES) -> tuple[int, int, int]:
    """The split sizes for n clips: exact when n matches, else proportional (see the module docstring)."""
    total = sum(split_sizes)
    if n == total:
        return tuple(split_sizes)
    n_train = round(n * split_sizes[0] / total)
    n_val = round(n * split_sizes[1] / total)
    if n >= 3:
        n_val = max(1, n_val)
        n_train = max(1, min(n_train, n - n_val - 1))
    n_train, n_val = min(n_train, n), min(n_val, max(0, n - n_train))
    return n_train, n_val, n - n_train - n_val


def load_msvd(annotations: Path, features_dir: Path, split_sizes: tuple[int, int, int] = MSVD_SPLIT_SIZES,
              mapping: Path | None = None) -> Corpus:
    captions = read_annotations(Path(annotations))
    if mapping is not None:
        standard = read_mapping_order(Path(mapping))
        ids = [c for c in standard if c in captions] + sorted(c for c in captions if c not in set(standard))
    else:
        ids = sorted(captions)
    n_train, n_val, _ = scaled_split_sizes(len(ids), split_sizes)
    parts = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}
    splits, missing = {}, []
    sentences_only = not Path(features_dir).is_dir()
    if sentences_only:
        warnings.warn(f"MSVD: no feature folder {features_dir}: captions only (the sentence tasks)")
    for split, split_ids in parts.items():
        splits[split], lost = split_clips(split_ids, captions, Path(features_dir), sentences_only)
        missing += lost
    if missing:
        warnings.warn(f"MSVD: {len(missing)} annotated clips have no feature file in {features_dir}; skipped")
    meta = {
        "source": str(annotations), "features_dir": str(features_dir), "sentences_only": sentences_only,
        "feature_dim": None if sentences_only else check_feature_dims(splits),
        "annotated_clips": len(ids), "split_sizes_requested": list(split_sizes),
        "split_sizes_used": [n_train, n_val, len(ids) - n_train - n_val],
        "order": "youtube_mapping" if mapping is not None else "sorted clip id",
        "missing_features": len(missing), "missing_feature_ids": missing[:50],
    }
    return Corpus(name="msvd", video_input="features", splits=splits, meta=meta)
