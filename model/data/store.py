"""The frame store: a folder of video files decoded once, through the service's own upload decode
(`core.media.prepare_upload`: the same sampling, letterbox and colour), into one memory-mapped uint8 array at the
model's input size. Torch-free.

A store is a folder:
- `store.json`: the plan (clip ids, files, captions, splits), the frame shape, the caption policy; rewritten whole
  (a temporary file renamed over it), never half-written.
- `frames.u8`: raw uint8 [N, T, H, W, 3], one row per clip in plan order, created sparse (disk is used as rows
  are written). `boxes.i32`: int32 [N, 4], where a letterboxed clip's picture lies (-1: fills the frame).
- `status.u8`: one byte per row, 0 to do, 1 decoded, 2 unreadable. A row's status is written only after its frames
  are synced to disk, so a reader (which takes rows of status 1 alone) never reads a half-written clip, and a run
  killed at any point resumes with the rows it had not committed.
- `report.json`: the unreadable files and why (the run goes on past them).

Decoding runs in worker processes, at most a few clips in flight per worker: memory stays bounded whatever the
corpus size (a clip's file is read whole by its worker; the main process writes rows with pwrite, no mapping).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import ModelConfig
from model.data.corpus import Clip, Corpus, DataError
from model.data.features import NO_VIDEO
from model.data.folder import Plan

FORMAT = 1
STORE_JSON, FRAMES, BOXES, STATUS, REPORT = "store.json", "frames.u8", "boxes.i32", "status.u8", "report.json"
TODO, OK, FAILED = 0, 1, 2
CENTRED = "centred.npy"  # the drawing decoders' targets, derived by training (model/data/dataset.py: centred_map)
IN_FLIGHT_PER_WORKER = 2  # clips submitted ahead per worker: enough to keep it busy, few enough to bound memory
COMMIT_ROWS, COMMIT_S = 64, 2.0  # rows are synced and marked done in groups: this many, or this often
# Offline preparation may take long files that an upload may not (core.media.MediaLimits for serving).
PREPARE_MAX_FRAMES, PREPARE_MAX_PIXELS, PREPARE_MAX_DECODE_S = 200_000, 4096 * 4096, 600.0
# What real captions need by default (slr train --min-count / --word-percentile override it per run).
DEFAULT_MIN_COUNT, DEFAULT_WORD_PERCENTILE = 2, 99.0


@dataclass(frozen=True)
class Outcome:
    """One prepare run: rows decoded now, rows already done before, rows unreadable (all runs), seconds."""

    decoded: int
    skipped: int
    failed: int
    seconds: float
    store: Path

    @property
    def clips_per_s(self) -> float:
        return self.decoded / self.seconds if self.seconds > 0 else 0.0


def write_atomic(path: Path, text: str) -> None:
    """A file replaced whole: a reader sees the old one or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def frame_shape(cfg: ModelConfig) -> tuple[int, int, int, int]:
    return (cfg.frames, cfg.height, cfg.width, 3)


def fingerprint(plan: Plan, cfg: ModelConfig) -> str:
    """What the rows depend on: each clip's file (name, size, modification time) in order and the frame shape."""
    h = hashlib.sha256(json.dumps([frame_shape(cfg), cfg.frame_fit]).encode())
    for e in plan.entries:
        stat = os.stat(e.file) if e.file else None
        h.update(json.dumps([e.clip_id, e.file, stat and stat.st_size, stat and stat.st_mtime_ns]).encode())
    return h.hexdigest()


def store_doc(plan: Plan, cfg: ModelConfig, preset: str, print_: str) -> dict[str, Any]:
    return {
        "format": FORMAT, "layout": plan.layout, "source": plan.root, "annotations": list(plan.annotations),
        "split_source": plan.split_source, "preset": preset, "fingerprint": print_,
        "sentences_only": plan.sentences_only,
        "shape": None if plan.sentences_only else list(frame_shape(cfg)), "frame_fit": cfg.frame_fit,
        "caption_policy": {"min_count": DEFAULT_MIN_COUNT, "word_percentile": DEFAULT_WORD_PERCENTILE},
        "clips": [{"clip_id": e.clip_id, "file": e.file, "captions": list(e.captions), "split": e.split}
                  for e in plan.entries],
    }


# ---------------------------------------------------------------- decoding (in the worker processes)

def decode_file(path: str, cfg: ModelConfig) -> tuple[np.ndarray, list[int]] | str:
    """A video file -> (uint8 [T,H,W,3] exactly as the service would feed the model, its picture's box or
    [-1]*4), or the reason it cannot be read."""
    from core.media import MediaError, MediaLimits, prepare_upload

    limits = MediaLimits(PREPARE_MAX_FRAMES, PREPARE_MAX_PIXELS, PREPARE_MAX_DECODE_S)
    try:
        prepared = prepare_upload(Path(path).read_bytes(), cfg, limits)
    except MediaError as e:
        return f"{e.code}: {e}"
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    except Exception as e:  # a decoder's surprise is one file's failure, not the run's
        return f"{type(e).__name__}: {e}"
    assert prepared.pixels is not None  # a frames model's upload
    return prepared.pixels, list(prepared.box) if prepared.box else [-1, -1, -1, -1]


def decoded(rows: list[int], files: list[str], cfg: ModelConfig,
            workers: int) -> Iterator[tuple[int, tuple[np.ndarray, list[int]] | str]]:
    """(row, decode_file's answer) as they finish, with at most IN_FLIGHT_PER_WORKER clips per worker in flight."""
    if workers <= 1:
        for row in rows:
            yield row, decode_file(files[row], cfg)
        return
    todo = iter(rows)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future, int] = {}

        def top_up() -> None:
            while len(pending) < workers * IN_FLIGHT_PER_WORKER:
                row = next(todo, None)
                if row is None:
                    return
                pending[pool.submit(decode_file, files[row], cfg)] = row

        top_up()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
            top_up()


# ---------------------------------------------------------------- writing rows (the main process)

class RowWriter:
    """Writes decoded rows at their offsets and commits them: data synced first, then their status bytes."""

    def __init__(self, root: Path, n: int, shape: tuple[int, ...], reasons: dict[str, str], clip_ids: list[str],
                 files: list[str]) -> None:
        self.row_bytes = int(np.prod(shape))
        self.frames = os.open(root / FRAMES, os.O_RDWR)
        self.boxes = os.open(root / BOXES, os.O_RDWR)
        self.status = os.open(root / STATUS, os.O_RDWR)
        self.root, self.reasons, self.clip_ids, self.files = root, reasons, clip_ids, files
        self.pending: list[tuple[int, int]] = []
        self.last_commit = time.monotonic()

    def put(self, row: int, answer: tuple[np.ndarray, list[int]] | str) -> None:
        if isinstance(answer, str):
            self.reasons[self.clip_ids[row]] = answer
            self.pending.append((row, FAILED))
        else:
            frames, box = answer
            os.pwrite(self.frames, np.ascontiguousarray(frames).tobytes(), row * self.row_bytes)
            os.pwrite(self.boxes, np.asarray(box, np.int32).tobytes(), row * 16)
            self.pending.append((row, OK))
        if len(self.pending) >= COMMIT_ROWS or time.monotonic() - self.last_commit > COMMIT_S:
            self.commit()

    def commit(self) -> None:
        if self.pending:
            os.fdatasync(self.frames)
            os.fdatasync(self.boxes)
            for row, code in self.pending:
                os.pwrite(self.status, bytes([code]), row)
            os.fdatasync(self.status)
            if any(code == FAILED for _, code in self.pending):
                write_report(self.root, self.reasons, self.clip_ids, self.files)
            self.pending = []
        self.last_commit = time.monotonic()

    def close(self) -> None:
        self.commit()
        for fd in (self.frames, self.boxes, self.status):
            os.close(fd)


def write_report(root: Path, reasons: dict[str, str], clip_ids: list[str], files: list[str]) -> None:
    where = dict(zip(clip_ids, files))
    failed = [{"clip_id": cid, "file": where.get(cid), "reason": why} for cid, why in reasons.items()]
    write_atomic(root / REPORT, json.dumps({"unreadable": len(failed), "files": failed}, indent=1) + "\n")


def read_reasons(root: Path) -> dict[str, str]:
    path = root / REPORT
    if not path.exists():
        return {}
    return {f["clip_id"]: f["reason"] for f in json.loads(path.read_text(encoding="utf-8"))["files"]}


def _sized_file(path: Path, size: int) -> None:
    """A file of `size` bytes, sparse: no disk is used until rows are written."""
    with open(path, "wb") as f:
        f.truncate(size)


def open_or_create(root: Path, doc: dict[str, Any], force: bool) -> None:
    """Starts a store at `root`, or checks that the store there was made from the same files at the same size."""
    old = root / STORE_JSON
    if old.exists() and not force:
        prev = json.loads(old.read_text(encoding="utf-8"))
        if prev.get("fingerprint") != doc["fingerprint"]:
            raise DataError(f"{root} holds a store prepared from other files or at another frame size "
                            f"({prev.get('shape')}, {prev.get('layout')} {prev.get('source')}); "
                            "pass another --out, or --force to start it over")
        write_atomic(old, json.dumps(doc, indent=1))  # captions and splits may have changed; the rows have not
        return
    root.mkdir(parents=True, exist_ok=True)
    for name in (STORE_JSON, REPORT, CENTRED):
        (root / name).unlink(missing_ok=True)
    n = len(doc["clips"])
    shape = doc["shape"] or [0]
    _sized_file(root / FRAMES, n * int(np.prod(shape)))
    _sized_file(root / BOXES, n * 16)
    _sized_file(root / STATUS, n)
    write_atomic(old, json.dumps(doc, indent=1))  # last: a store without store.json is not a store


def prepare_store(plan: Plan, out: str | Path, cfg: ModelConfig, preset: str = "", workers: int = 1,
                  force: bool = False, retry_failed: bool = False,
                  progress: Callable[[int], Any] | None = None) -> Outcome:
    """Decode every clip of the plan not yet in the store at `out`; returns what this run did.
    `progress(n)` is called as rows finish (a tqdm bar's update)."""
    root = Path(out)
    start = time.monotonic()
    doc = store_doc(plan, cfg, preset, fingerprint(plan, cfg))
    open_or_create(root, doc, force)
    status = np.fromfile(root / STATUS, dtype=np.uint8)
    clip_ids = [e.clip_id for e in plan.entries]
    files = [e.file or "" for e in plan.entries]
    reasons = {cid: why for cid, why in read_reasons(root).items() if cid in set(clip_ids)}
    if retry_failed:
        status[status == FAILED] = TODO
        reasons = {}
    rows = [] if plan.sentences_only else [int(r) for r in np.flatnonzero(status == TODO)]
    skipped = len(status) - len(rows)
    if rows:
        (root / CENTRED).unlink(missing_ok=True)  # derived from the rows: stale once any row changes
        writer = RowWriter(root, len(status), frame_shape(cfg), reasons, clip_ids, files)
        try:
            for row, answer in decoded(rows, files, cfg, workers):
                writer.put(row, answer)
                if progress:
                    progress(1)
        finally:
            writer.close()
    write_report(root, reasons, clip_ids, files)
    return Outcome(len(rows), skipped, len(reasons), time.monotonic() - start, root)


# ---------------------------------------------------------------- reading (training, evaluation, export)

def is_store(root: str | Path) -> bool:
    return (Path(root) / STORE_JSON).exists()


def read_doc(root: Path) -> dict[str, Any]:
    doc = json.loads((root / STORE_JSON).read_text(encoding="utf-8"))
    if doc.get("format") != FORMAT:
        raise DataError(f"{root}: unsupported frame store format {doc.get('format')!r}")
    return doc


def open_frames(root: Path, n: int, shape: list[int]) -> np.ndarray:
    """The rows as one copy-on-write memory map: pages are read as batches touch them, never all at once
    (copy-on-write only so that torch may wrap it without a read-only warning; nothing writes to it)."""
    return np.memmap(root / FRAMES, dtype=np.uint8, mode="c", shape=(n, *shape))


def load_store_frames(root: Path) -> np.ndarray:
    """uint8 [N, T, H, W, 3]: every row of a store, memory-mapped (rows of status 1 alone hold clips)."""
    doc = read_doc(root)
    if doc["sentences_only"]:
        raise DataError(f"{root} holds captions only (prepared with --sentences-only): no frames")
    return open_frames(root, len(doc["clips"]), doc["shape"])


def load_store(root: str | Path) -> Corpus:
    """The store as a corpus whose clips' frames are rows of one memory map (nothing is read here); clips whose
    file could not be read are left out. meta["frame_store"] and meta["rows"] let training map whole splits."""
    root = Path(root)
    doc = read_doc(root)
    status = np.fromfile(root / STATUS, dtype=np.uint8)
    todo = int((status == TODO).sum()) if not doc["sentences_only"] else 0
    if todo:
        raise DataError(f"{root}: {todo} of {len(status)} clips are not prepared yet; run slr data prepare again "
                        "to finish (it resumes)")
    entries = doc["clips"]
    frames = None if doc["sentences_only"] else open_frames(root, len(entries), doc["shape"])
    boxes = np.fromfile(root / BOXES, dtype=np.int32).reshape(-1, 4)
    splits: dict[str, list[Clip]] = {"train": [], "val": [], "test": []}
    rows: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for row, e in enumerate(entries):
        if frames is None:
            clip = Clip(e["clip_id"], list(e["captions"]), features=NO_VIDEO.copy())
        elif status[row] == OK:
            box = boxes[row].tolist()
            clip = Clip(e["clip_id"], list(e["captions"]), frames=frames[row],
                        attributes={"frame_box": box} if box[0] >= 0 else {})
        else:
            continue
        splits[e["split"]].append(clip)
        rows[e["split"]].append(row)
    policy = doc["caption_policy"]
    meta = {"frame_store": str(root.resolve()), "rows": rows, "layout": doc["layout"], "source": doc["source"],
            "split_source": doc["split_source"], "sentences_only": doc["sentences_only"],
            "unreadable": int((status == FAILED).sum()), "vocab_min_count": policy["min_count"],
            "word_percentile": policy["word_percentile"]}
    return Corpus("store", "features" if frames is None else "frames", splits, meta)
