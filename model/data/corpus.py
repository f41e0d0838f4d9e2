"""The corpus contract: clips with captions, split into train / val / test, saved as npz + json.

Torch-free. A saved corpus is a directory holding `corpus.json` (names, captions, attributes, meta)
and one `<split>.npz` per split with the video arrays; it is read back with `allow_pickle=False`,
so a corpus file can never execute code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1
CORPUS_JSON = "corpus.json"

VideoInput = Literal["frames", "features"]


class DataError(ValueError):
    """A person's data folder is not as expected: the message is one line saying what was expected (the command
    line prints it and exits 2)."""


@dataclass
class Clip:
    """One video with its descriptions; exactly one of `frames` / `features` is set for real data."""

    clip_id: str
    captions: list[str]
    frames: np.ndarray | None = None  # uint8 (T, H, W, 3)
    features: np.ndarray | None = None  # float32 (D,) or (Tf, D)
    attributes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames is not None:
            f = self.frames
            if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
                raise ValueError(f"{self.clip_id}: frames must be uint8 (T, H, W, 3), got {f.dtype} {f.shape}")
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)
            if self.features.ndim not in (1, 2):
                raise ValueError(f"{self.clip_id}: features must be (D,) or (Tf, D), got {self.features.shape}")

    @property
    def video(self) -> np.ndarray | None:
        """Whichever array this clip carries (frames first)."""
        return self.frames if self.frames is not None else self.features


def has_truth(clip: Clip) -> bool:
    """Whether a clip carries the generator's ground truth (colour, shape, motion) that the attribute figures read;
    a real clip's attributes hold at most where its picture lies (`frame_box`)."""
    return "colour" in clip.attributes


def caption_policy(corpus: "Corpus") -> tuple[int, float]:
    """(minimum count of a word in the vocabulary, percentile of caption lengths the word cap takes) of a corpus:
    real captions (a frame store) set them in meta; generated ones keep every word and the longest caption."""
    return int(corpus.meta.get("vocab_min_count", 1)), float(corpus.meta.get("word_percentile", 100.0))


@dataclass
class Corpus:
    name: str
    video_input: VideoInput
    splits: dict[str, list[Clip]]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.video_input not in ("frames", "features"):
            raise ValueError(f"video_input must be 'frames' or 'features', got {self.video_input!r}")
        for split in SPLITS:
            self.splits.setdefault(split, [])

    # --- views -----------------------------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        return {split: len(clips) for split, clips in self.splits.items()}

    def __len__(self) -> int:
        return sum(self.sizes().values())

    def clips(self, split: str | None = None) -> list[Clip]:
        """Clips of one split, or of all splits in train, val, test order."""
        if split is not None:
            return self.splits[split]
        return [clip for s in self.splits for clip in self.splits[s]]

    def all_captions(self, split: str | None = None) -> list[str]:
        return [caption for clip in self.clips(split) for caption in clip.captions]

    def pairs(self, split: str) -> Iterator[tuple[int, str]]:
        """(clip index within the split, caption) for every caption: the unit a captioner trains on."""
        for i, clip in enumerate(self.splits[split]):
            for caption in clip.captions:
                yield i, caption

    def get(self, clip_id: str) -> Clip:
        for clip in self.clips():
            if clip.clip_id == clip_id:
                return clip
        raise KeyError(clip_id)

    # --- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "video_input": self.video_input,
            "meta": self.meta,
            "splits": {},
        }
        for split, clips in self.splits.items():
            layout = _save_split_arrays(directory / f"{split}.npz", clips)
            doc["splits"][split] = {
                "layout": layout,
                "clips": [{"clip_id": c.clip_id, "captions": c.captions, "attributes": c.attributes} for c in clips],
            }
        (directory / CORPUS_JSON).write_text(json.dumps(doc, indent=1, sort_keys=False))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Corpus":
        directory = Path(directory)
        doc = json.loads((directory / CORPUS_JSON).read_text())
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported corpus format {doc.get('format')!r} in {directory}")
        field_name = doc["video_input"]
        splits: dict[str, list[Clip]] = {}
        for split, entry in doc["splits"].items():
            arrays = _load_split_arrays(directory / f"{split}.npz", entry["layout"], len(entry["clips"]))
            splits[split] = [
                Clip(
                    clip_id=c["clip_id"],
                    captions=list(c["captions"]),
                    attributes=dict(c["attributes"]),
                    **{field_name: array},
                )
                for c, array in zip(entry["clips"], arrays)
            ]
        return cls(name=doc["name"], video_input=field_name, splits=splits, meta=doc["meta"])


def load_split(directory: str | Path, split: str, limit: int | None = None) -> list[Clip]:
    """The first `limit` clips (None: all) of one split of a saved corpus, without reading the other splits' arrays
    (a quality corpus's training split alone is a gigabyte)."""
    directory = Path(directory)
    doc = json.loads((directory / CORPUS_JSON).read_text())
    if doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported corpus format {doc.get('format')!r} in {directory}")
    if split not in doc["splits"]:
        raise ValueError(f"{directory} has no split {split!r}; it has {sorted(doc['splits'])}")
    entry = doc["splits"][split]
    arrays = _load_split_arrays(directory / f"{split}.npz", entry["layout"], len(entry["clips"]))
    return [Clip(clip_id=c["clip_id"], captions=list(c["captions"]), attributes=dict(c["attributes"]),
                 **{doc["video_input"]: array})
            for c, array in list(zip(entry["clips"], arrays))[:limit]]


# Arrays of one split are stacked into a single `data` array when every clip has the same shape
# (synthetic frames: fast to read, one memory block); otherwise (MSVD features with varying Tf)
# each clip gets its own key `c<i>`.
def _save_split_arrays(path: Path, clips: list[Clip]) -> str:
    arrays = [c.video for c in clips]
    if not arrays or all(a is None for a in arrays):
        np.savez(path)
        return "none"
    if any(a is None for a in arrays):
        raise ValueError(f"{path.stem}: either every clip carries a video array or none does")
    if len({(a.shape, a.dtype.str) for a in arrays}) == 1:
        np.savez(path, data=np.stack(arrays))
        return "stacked"
    np.savez(path, **{f"c{i}": a for i, a in enumerate(arrays)})
    return "per_clip"


def _load_split_arrays(path: Path, layout: str, n: int) -> list[np.ndarray | None]:
    if layout == "none":
        return [None] * n
    with np.load(path, allow_pickle=False) as npz:
        if layout == "stacked":
            data = npz["data"]
            if len(data) != n:
                raise ValueError(f"{path}: {len(data)} arrays for {n} clips")
            return list(data)
        if layout == "per_clip":
            return [npz[f"c{i}"] for i in range(n)]
    raise ValueError(f"{path}: unknown array layout {layout!r}")
