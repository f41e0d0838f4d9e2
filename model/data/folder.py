"""A folder of the user's own video files and their captions, in one of three layouts, read into a plan: which
file is which clip, its captions and its split. Torch-free; nothing is decoded here (model/data/store.py does that).

- `msrvtt`: `train_val_videodatainfo.json` / `test_videodatainfo.json` (`videos[]` with `split`, `sentences[]`),
  the files in `videos/` (or the release's `TrainValVideo/`, `TestVideo/`) as `<video_id>.<ext>`.
- `msvd`: the MSR Video Description Corpus CSV (`video_corpus.csv`, English rows) or `AllVideoDescriptions.txt`,
  the files in `YouTubeClips/` as `<VideoID>_<Start>_<End>.<ext>`.
- `plain`: `captions.csv` with `file,caption[,split]` rows (several per file), paths relative to the folder.

Every mistake a person can make with such a folder is a `DataError`: one line saying what was expected.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data.corpus import SPLITS, DataError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif")
LAYOUTS = ("msrvtt", "msvd", "plain")
MSRVTT_FILES = ("train_val_videodatainfo.json", "test_videodatainfo.json")
MSRVTT_DIRS = ("videos", "TrainValVideo", "TestVideo")
MSVD_FILES = ("video_corpus.csv", "MSR Video Description Corpus.csv", "AllVideoDescriptions.txt")
MSVD_DIRS = ("YouTubeClips",)
PLAIN_FILE = "captions.csv"
SEEDED_SHARES = (0.8, 0.1, 0.1)  # train / val / test where the annotations name no split
SHOWN = 5  # ids quoted in an error about absent files


@dataclass(frozen=True)
class Entry:
    """One clip of the plan: its id, the video file (None: captions only), its captions and its split."""

    clip_id: str
    file: str | None
    captions: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class Plan:
    layout: str
    root: str
    annotations: tuple[str, ...]
    entries: tuple[Entry, ...]
    split_source: str  # "annotations", "seeded (seed N)", or a mix of both

    @property
    def sentences_only(self) -> bool:
        return all(e.file is None for e in self.entries)


def detect_layout(root: Path) -> str:
    """The layout a folder is in, from the names of what it holds."""
    if (root / PLAIN_FILE).exists():
        return "plain"
    if any((root / n).exists() for n in MSRVTT_FILES + MSRVTT_DIRS):
        return "msrvtt"
    if any((root / n).exists() for n in MSVD_FILES + MSVD_DIRS):
        return "msvd"
    raise DataError(
        f"{root} matches none of the three layouts: expected {PLAIN_FILE} (file,caption[,split]), MSR-VTT "
        f"(videos/ + {' / '.join(MSRVTT_FILES)}) or MSVD (YouTubeClips/ + video_corpus.csv or "
        "AllVideoDescriptions.txt)")


def _missing_annotation(root: Path, layout: str, looked_for: tuple[str, ...], suffix: str) -> DataError:
    others = sorted(p.name for p in root.glob(f"*{suffix}"))
    found = f"; found {', '.join(others[:SHOWN])}: rename it or pass --annotations" if others else ""
    return DataError(f"{layout} layout: no annotation file in {root}: looked for {', '.join(looked_for)}{found}")



def video_index(root: Path, folders: tuple[str, ...]) -> dict[str, Path]:
    """clip id (the file's stem) -> its video file, over the layout's video folders (one listing each)."""
    index: dict[str, Path] = {}
    for name in folders:
        folder = root / name
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.suffix.lower() in VIDEO_EXTENSIONS:
                    index.setdefault(p.stem, p)
    return index


def seeded_splits(ids: list[str], seed: int, shares: tuple[float, float, float] = SEEDED_SHARES) -> dict[str, str]:
    """clip id -> split, a seeded permutation cut by `shares` (val and test at least one clip from 3 clips on)."""
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    n = len(order)
    n_val = max(1, round(n * shares[1])) if n >= 3 else 0
    n_test = max(1, round(n * shares[2])) if n >= 3 else 0
    return cut_splits(order, n - n_val - n_test, n_val)


def cut_splits(ordered: list[str], n_train: int, n_val: int) -> dict[str, str]:
    """clip id -> split: the first n_train ids train, the next n_val val, the rest test."""
    return {cid: "train" if i < n_train else "val" if i < n_train + n_val else "test" for i, cid in enumerate(ordered)}


def _check_split(name: str, where: str) -> str:
    split = {"validate": "val", "validation": "val"}.get(name, name)
    if split not in SPLITS:
        raise DataError(f"{where}: unknown split {name!r}; expected train, val (validate) or test")
    return split


def read_plain(path: Path) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
    """captions.csv -> (clip id -> captions, clip id -> file relative to its folder, clip id -> split where given)."""
    captions: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    splits: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["file", "caption"]:
        rows = rows[1:]
    ids = plain_clip_ids(list(dict.fromkeys(r[0].strip() for r in rows if r[0].strip())))
    for line, row in enumerate(rows, 2):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path}: row {line} is {row!r}; expected file,caption[,split]")
        file = row[0].strip()
        clip_id = ids[file]
        files[clip_id] = file
        captions.setdefault(clip_id, []).append(row[1].strip())
        if len(row) > 2 and row[2].strip():
            splits[clip_id] = _check_split(row[2].strip(), f"{path} row {line}")
    if not captions:
        raise DataError(f"{path} holds no captions; expected file,caption[,split] rows")
    return captions, files, splits


def plain_clip_ids(files: list[str]) -> dict[str, str]:
    """Each file's clip id: its name without extension, or its path where two folders hold the same name."""
    stems = Counter(Path(f).stem for f in files)
    return {f: Path(f).stem if stems[Path(f).stem] == 1 else str(Path(f).with_suffix("")).replace("/", "__")
            for f in files}


def read_msrvtt(root: Path, annotations: list[Path]) -> tuple[dict[str, list[str]], dict[str, str]]:
    from model.data.msrvtt import read_videodatainfo

    try:
        split_of, captions = read_videodatainfo(annotations)
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{', '.join(map(str, annotations))}: not MSR-VTT videodatainfo json "
                        f"(videos[] with video_id, split; sentences[] with video_id, caption): {e}") from None
    except ValueError as e:
        raise DataError(str(e)) from None
    return captions, split_of


def read_msvd(annotation: Path) -> dict[str, list[str]]:
    from model.data.msvd import read_annotations

    try:
        captions = read_annotations(annotation)
    except KeyError as e:
        raise DataError(f"{annotation}: no column {e}; expected VideoID,Start,End,...,Language,Description") from None
    if not captions:
        raise DataError(f"{annotation} holds no English captions")
    return captions


def msvd_splits(ids: list[str]) -> dict[str, str]:
    """The paper's MSVD rule (model/data/msvd.py): sorted clip ids cut 1200 / 100 / 670, scaled to the corpus."""
    from model.data.msvd import scaled_split_sizes

    n_train, n_val, _ = scaled_split_sizes(len(ids))
    return cut_splits(sorted(ids), n_train, n_val)


def _annotation_files(root: Path, layout: str, given: list[str] | None) -> list[Path]:
    if given:
        paths = [Path(p) if Path(p).is_absolute() else root / p for p in given]
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise DataError(f"--annotations: no file {', '.join(absent)}")
        return paths
    names = {"msrvtt": MSRVTT_FILES, "msvd": MSVD_FILES, "plain": (PLAIN_FILE,)}[layout]
    found = [root / n for n in names if (root / n).is_file()]
    if not found:
        raise _missing_annotation(root, layout, names, ".json" if layout == "msrvtt" else ".csv")
    return found if layout == "msrvtt" else found[:1]


def check_videos(layout: str, root: Path, ids: list[str], files: dict[str, Path],
                 allow_missing: bool, sentences_only: bool) -> dict[str, Path | None]:
    """clip id -> its file; refuses (one line) a folder without video data or with referenced videos absent."""
    absent = [cid for cid in ids if cid not in files]
    if len(absent) == len(ids):
        if sentences_only:
            return {cid: None for cid in ids}
        raise DataError(f"{layout} layout: none of the {len(ids)} annotated videos is in {root} "
                        f"(looked in {', '.join(_video_dirs(layout))}): no video data to train the video channel; "
                        "pass --sentences-only to prepare the captions alone")
    if absent and not allow_missing:
        raise DataError(f"{len(absent)} of {len(ids)} annotated videos are absent from {root} "
                        f"(first: {', '.join(absent[:SHOWN])}); pass --allow-missing to prepare the others")
    return {cid: files[cid] for cid in ids if cid in files}


def _video_dirs(layout: str) -> tuple[str, ...]:
    return {"msrvtt": MSRVTT_DIRS, "msvd": MSVD_DIRS, "plain": (".",)}[layout]


def read_folder(root: str | Path, layout: str | None = None, annotations: list[str] | None = None, seed: int = 0,
                allow_missing: bool = False, sentences_only: bool = False) -> Plan:
    """The plan of a folder: every annotated clip with a file (or none, captions only), its captions and split."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    layout = layout or detect_layout(root)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    paths = _annotation_files(root, layout, annotations)
    given_splits: dict[str, str] = {}
    if layout == "plain":
        captions, rel, given_splits = read_plain(paths[0])
        files = {cid: root / f for cid, f in rel.items() if (root / f).is_file()}
    elif layout == "msrvtt":
        captions, given_splits = read_msrvtt(root, paths)
        files = video_index(root, MSRVTT_DIRS)
    else:
        captions = read_msvd(paths[0])
        given_splits = msvd_splits(list(captions))
        files = video_index(root, MSVD_DIRS)
    ids = [cid for cid in (given_splits if layout == "msrvtt" else captions) if captions.get(cid)]
    if not ids:
        raise DataError(f"{', '.join(map(str, paths))}: no clip has a caption")
    found = check_videos(layout, root, ids, files, allow_missing, sentences_only)
    ids = [cid for cid in ids if cid in found]
    unsplit = [cid for cid in ids if cid not in given_splits]
    seeded = seeded_splits(unsplit, seed)
    source = ("annotations" if not unsplit else f"seeded (seed {seed})" if len(unsplit) == len(ids)
              else f"annotations, {len(unsplit)} clips seeded (seed {seed})")
    entries = tuple(Entry(cid, None if found[cid] is None else str(found[cid]), tuple(captions[cid]),
                          given_splits.get(cid) or seeded[cid]) for cid in ids)
    return Plan(layout, str(root.resolve()), tuple(str(p) for p in paths), entries, source)
