"""Clips and captions as padded tensors, and batches drawn from them (the only torch module in model/data).

All of a split is held in memory as arrays (uint8 frames, padded caption ids), so a batch is a few
vectorised index operations: no DataLoader workers to fight over 2 cores.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from core.config import ModelConfig
from core.frames import crop_box, resize_frame
from core.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab
from model.data.corpus import Clip, Corpus
from model.data.shapes import SHAPES


def drop_words(target_in: Tensor, rate: float, gen: torch.Generator) -> Tensor:
    """Replace a share of the decoder's input words (never <bos> or padding) with <unk>."""
    drop = (torch.rand(target_in.shape, generator=gen) < rate) & (target_in > UNK_ID)
    return torch.where(drop, torch.full_like(target_in, UNK_ID), target_in)


# Degrades a float [B, T, H, W, 3] batch of encoder inputs (model/data/augment.py).
Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass
class SplitTensors:
    video: Tensor  # uint8 [N, T, H, W, 3] (frames) or float32 [N, Tf, D] (features)
    frames: Tensor | None  # uint8 [N, T, H, W, 3] targets for the video decoder, or None
    captions: Tensor  # int64 [N, C, L] word ids, right-padded
    lengths: Tensor  # int64 [N, C]; 0 marks a missing caption slot
    n_captions: Tensor  # int64 [N]
    frames_centred: Tensor | None = None  # the same clips, each object's track centred (sentence-only targets)
    # Where the corpus knows them (the synthetic generator): the described object's pose per frame [N, T, 3] (centre
    # x, y in the frame's [-1, 1] coordinates, radius in half-heights) in the clip and in its centred version, whether
    # it is known [N], and its shape's index in shapes.SHAPES [N] (-1: unknown). The sprite decoder's aux losses.
    pose: Tensor | None = None
    pose_centred: Tensor | None = None
    pose_known: Tensor | None = None
    shape_id: Tensor | None = None
    # The rows of video / frames / frames_centred that hold this split's clips, in order, where those are the
    # whole frame store's memory map (map_store_split); None: row i is clip i.
    rows: Tensor | None = None

    def __len__(self) -> int:
        return int(self.video.shape[0]) if self.rows is None else len(self.rows)


def _clip_video(clip: Clip, cfg: ModelConfig) -> np.ndarray:
    if cfg.video_input == "frames":
        if clip.frames is None:
            raise ValueError(f"clip {clip.clip_id} has no frames but the model reads frames")
        return clip.frames
    feats = np.asarray(clip.features, dtype=np.float32)
    return feats[None] if feats.ndim == 1 else feats


# A pixel belongs to the object when it is this far (0-255, Euclidean over RGB) from the border median.
OBJECT_DISTANCE = 60.0


def unbox_clip(frames: np.ndarray, box: list[int] | None) -> np.ndarray:
    """A letterboxed uint8 [T, H, W, 3] clip's picture (`box`: top, left, h, w) stretched back to H x W: a sentence
    names no aspect ratio, so what it is drawn against fills the frame."""
    if not box:
        return frames
    h, w = frames.shape[1:3]
    return np.stack([resize_frame(np.ascontiguousarray(f), h, w) for f in crop_box(frames, box)])


def _background_of(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32)
    border = np.concatenate([f[:, 0], f[:, -1], f[:, :, 0], f[:, :, -1]], axis=1).reshape(-1, 3)
    return np.median(border, axis=0)


def centre_shift(frames: np.ndarray) -> tuple[int, int]:
    """(dy, dx) in whole pixels that bring a uint8 [T, H, W, 3] clip's object's mean position over the clip to the
    frame's centre; (0, 0) when no object stands out from the background (the median of the borders)."""
    t, h, w, _ = frames.shape
    mask = np.linalg.norm(frames.astype(np.float32) - _background_of(frames), axis=-1) > OBJECT_DISTANCE
    if not mask.any():
        return 0, 0
    ys, xs = np.nonzero(mask.any(axis=0))
    weights = mask.sum(axis=0)[ys, xs]
    return (int(round((h - 1) / 2 - np.average(ys, weights=weights))),
            int(round((w - 1) / 2 - np.average(xs, weights=weights))))


def centre_clip(frames: np.ndarray, shift: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 [T, H, W, 3] moved (whole pixels, no wrap-around) by `shift` (default: its centre_shift); uncovered
    pixels take the background colour (the median of the borders)."""
    t, h, w, _ = frames.shape
    dy, dx = centre_shift(frames) if shift is None else shift
    if (dy, dx) == (0, 0):
        return frames.copy()
    background = _background_of(frames)
    out = np.empty_like(frames)
    out[:] = np.rint(background).astype(np.uint8)
    src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[:, dst_y, dst_x] = frames[:, src_y, src_x]
    return out


def caption_tensors(clips: list[Clip], vocab: Vocab, cfg: ModelConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Padded caption ids [N, C, L], their lengths [N, C] (0: no caption in that slot), captions per clip [N]."""
    ids = [[vocab.encode(s, cfg.max_words) or [UNK_ID] for s in c.captions] for c in clips]
    n_cap = max(len(x) for x in ids)
    caps = np.full((len(clips), n_cap, cfg.max_words), PAD_ID, dtype=np.int64)
    lens = np.zeros((len(clips), n_cap), dtype=np.int64)
    for i, sents in enumerate(ids):
        for j, s in enumerate(sents):
            caps[i, j, : len(s)] = s
            lens[i, j] = len(s)
    return torch.from_numpy(caps), torch.from_numpy(lens), torch.tensor([len(x) for x in ids], dtype=torch.long)


def tensorize(clips: list[Clip], vocab: Vocab, cfg: ModelConfig) -> SplitTensors:
    """Stack a split. Captions are cut to cfg.max_words; clips with different feature lengths are mean-padded."""
    if not clips:
        raise ValueError("empty split")
    videos = [_clip_video(c, cfg) for c in clips]
    if cfg.video_input == "features":
        tf = max(v.shape[0] for v in videos)
        # Repeat the clip's mean to a common length: the encoder mean-pools, so the mean is unchanged.
        videos = [np.concatenate([v, np.repeat(v.mean(0, keepdims=True), tf - len(v), 0)]) for v in videos]
    video = torch.from_numpy(np.stack(videos))
    frames = video if cfg.video_input == "frames" else None
    data = SplitTensors(video, frames, *caption_tensors(clips, vocab, cfg))
    # The drawing decoders learn sentence-to-video against centred clips (model/losses.py: video_target).
    if frames is not None and cfg.video_output and cfg.video_decoder in ("layers", "sprite"):
        unboxed = [unbox_clip(v, c.attributes.get("frame_box")) for v, c in zip(videos, clips)]
        shifts = [centre_shift(u) for u in unboxed]
        data.frames_centred = torch.from_numpy(np.stack([centre_clip(u, s) for u, s in zip(unboxed, shifts)]))
        if cfg.video_decoder == "sprite":
            add_pose_truth(data, clips, shifts, cfg)
    return data


def centred_map(store: Path, frames: np.ndarray, clips: list[Clip], rows: list[int]) -> np.ndarray:
    """The drawing decoders' centred targets of a store's rows, computed once into `centred.u8` beside the frames
    (clip by clip: memory stays bounded) and memory-mapped like them; a file is complete or absent (renamed)."""
    from model.data.store import CENTRED

    path = store / CENTRED
    if not path.exists():
        tmp = store / f".{CENTRED}.tmp"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=frames.shape)
        for clip, row in zip(clips, rows):
            out[row] = centre_clip(unbox_clip(np.asarray(frames[row]), clip.attributes.get("frame_box")))
        out.flush()
        del out
        os.replace(tmp, path)
    return np.load(path, mmap_mode="c")


def map_store_split(clips: list[Clip], rows: list[int], store: str | Path, vocab: Vocab,
                    cfg: ModelConfig) -> SplitTensors:
    """A split of a frame store (model/data/store.py) without reading it: the video tensors wrap the store's
    memory map, and a batch reads its own rows only (make_batch), so a corpus larger than memory trains."""
    from model.data.store import load_store_frames

    if not clips:
        raise ValueError("empty split")
    frames = load_store_frames(Path(store))
    video = torch.from_numpy(frames)
    data = SplitTensors(video, video, *caption_tensors(clips, vocab, cfg), rows=torch.tensor(rows, dtype=torch.long))
    if cfg.video_output and cfg.video_decoder in ("layers", "sprite"):
        centred = centred_map(Path(store), frames, clips, rows)
        data.frames_centred = torch.from_numpy(centred)
        if cfg.video_decoder == "sprite":
            add_pose_truth(data, clips, [(0, 0)] * len(clips), cfg)  # real clips carry no track: pose unknown
    return data


def split_tensors(corpus: Corpus, split: str, vocab: Vocab, cfg: ModelConfig) -> SplitTensors:
    """A split as tensors: a frame store's memory-mapped, any other corpus stacked in memory."""
    store = corpus.meta.get("frame_store")
    if store and corpus.video_input == "frames" and cfg.video_input == "frames":
        return map_store_split(corpus.splits[split], corpus.meta["rows"][split], store, vocab, cfg)
    return tensorize(corpus.splits[split], vocab, cfg)


def _pose(track: np.ndarray, box: list[int]) -> np.ndarray:
    """[T, 3] pixels (centre x, y, radius) -> the decoder's pose: centre in [-1, 1] of `box` (top, left, h, w),
    radius in half-heights of it."""
    top, left, h, w = box
    return np.stack([(track[:, 0] - left) / w * 2 - 1, (track[:, 1] - top) / h * 2 - 1, track[:, 2] / (h / 2)], axis=1)


def add_pose_truth(data: SplitTensors, clips: list[Clip], shifts: list[tuple[int, int]], cfg: ModelConfig) -> None:
    """The described object's pose and shape where the corpus knows them (synthetic attributes `track`, `shape`):
    in the clip as it is, and in its centred version (the picture unboxed, then moved by `shifts`, (dy, dx))."""
    n, t = len(clips), cfg.frames
    pose, centred = np.zeros((n, t, 3), np.float32), np.zeros((n, t, 3), np.float32)
    known, shape_id = np.zeros(n, np.float32), np.full(n, -1, np.int64)
    full = [0, 0, cfg.height, cfg.width]
    for i, (clip, (dy, dx)) in enumerate(zip(clips, shifts)):
        track = np.asarray(clip.attributes.get("track", []), np.float32)
        if track.shape != (t, 3):
            continue
        pose[i] = _pose(track, full)
        centred[i] = _pose(track, clip.attributes.get("frame_box") or full)
        centred[i, :, 0] += 2 * dx / cfg.width
        centred[i, :, 1] += 2 * dy / cfg.height
        known[i] = 1.0
        shape_id[i] = SHAPES.index(clip.attributes["shape"]) if clip.attributes.get("shape") in SHAPES else -1
    data.pose, data.pose_centred = torch.from_numpy(pose), torch.from_numpy(centred)
    data.pose_known, data.shape_id = torch.from_numpy(known), torch.from_numpy(shape_id)


def _pick_pair(n_captions: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two caption slots per clip; the second differs from the first where the clip has more than one:
    intra-media matching (the paper): the sentence target is another description of the same video."""
    n = n_captions
    a = (torch.rand(n.shape, generator=gen) * n).long()
    shift = 1 + (torch.rand(n.shape, generator=gen) * (n - 1).clamp(min=1)).long()
    b = torch.where(n > 1, (a + shift) % n, a)
    return a, b


def decoder_io(words: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """[B, L] words -> teacher-forcing input (<bos> w1..wn) and target (w1..wn <eos>), both [B, L+1]."""
    b, length = words.shape
    tin = torch.full((b, length + 1), PAD_ID, dtype=torch.long)
    tin[:, 0] = BOS_ID
    tin[:, 1:] = words
    tout = torch.full((b, length + 1), PAD_ID, dtype=torch.long)
    tout[:, :length] = words
    tout[torch.arange(b), lengths] = EOS_ID
    return tin, tout


def make_batch(data: SplitTensors, idx: Tensor, gen: torch.Generator, augment: Augment | None = None,
               word_dropout: float = 0.0, rows: slice | None = None) -> dict[str, Tensor]:
    """One training batch: video in, one caption in, another caption of the same clip as target.
    `augment` degrades the encoder's input only; the video decoder's target stays the clean clip.
    `rows` keeps part of the batch (a distributed rank's shard): the random draws are made for the whole
    batch all the same, so that every rank draws alike and the shards together are one process's batch."""
    a, b = _pick_pair(data.n_captions[idx], gen)
    rows_all = torch.arange(len(idx))
    in_words, in_len = data.captions[idx][rows_all, a], data.lengths[idx][rows_all, a]
    tgt_words, tgt_len = data.captions[idx][rows_all, b], data.lengths[idx][rows_all, b]
    lmax = int(in_len.max())
    tmax = int(tgt_len.max())
    target_in, target_out = decoder_io(tgt_words[:, :tmax], tgt_len)
    keep = slice(None) if rows is None else rows
    pick = (idx if data.rows is None else data.rows[idx])[keep]  # rows of the video arrays (a store's map)
    video = data.video[pick]
    batch = {
        "video": video.float() / 255.0 if video.dtype == torch.uint8 else video,
        "tokens": in_words[keep, : max(lmax, 1)],
        "lengths": in_len[keep].clamp(min=1),
        "target_in": target_in[keep],
        "target_out": target_out[keep],
    }
    if word_dropout > 0:
        batch["target_in_dropped"] = drop_words(target_in, word_dropout, gen)[keep]
    if data.frames is not None:
        batch["frames"] = batch["video"]
        if data.frames_centred is not None:
            batch["frames_centred"] = data.frames_centred[pick].float() / 255.0
        if data.pose is not None:
            for key in ("pose", "pose_centred", "pose_known", "shape_id"):
                batch[key] = getattr(data, key)[idx[keep]]
        if augment is not None:
            batch["video"] = augment(batch["video"], gen)
    return batch


class BatchStream:
    """Endless shuffled batches over a split (an epoch is one permutation), deterministic by seed."""

    def __init__(self, data: SplitTensors, batch_size: int, seed: int, augment: Augment | None = None,
                 word_dropout: float = 0.0) -> None:
        self.data, self.batch_size, self.augment = data, min(batch_size, len(data)), augment
        self.word_dropout = word_dropout
        self.gen = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def next(self) -> dict[str, Tensor]:
        if self._pos + self.batch_size > len(self._order):
            self._order, self._pos = torch.randperm(len(self.data), generator=self.gen), 0
        idx = self._order[self._pos: self._pos + self.batch_size]
        self._pos += self.batch_size
        return make_batch(self.data, idx, self.gen, self.augment, self.word_dropout)
