"""How familiar an input is to the model: a score in [0, 1], calibrated per model at export and kept in its manifest,
so that a caption of a cat photo comes with "this looks unlike anything I know".

Video: three signals, each read inside the clip's own picture (a letterboxed upload's bars left out):
- `rebuild_miss_shaded`, from the model itself: the share of pixels its rebuild of the clip (the video decoder from
  its own SLR and the clip's first frame) misses, once the rebuild's colour cast and shading per frame are forgiven
  (a plane per channel across the frame, fitted where the flat cast already explains the pixel). Two-sided: a
  photograph, a road, a UI are not rebuilt; an empty frame is rebuilt too well (there is no object to miss the edge
  of). Its forerunner `rebuild_miss` forgave the flat cast only, and flagged files whose background is graded more
  steeply than the rebuild draws one (three of the outside set's four false alarms on quality-v15); calibrations that
  name it keep computing it, exactly.
- `motion`: the share of pixels that change between frames: one or two shapes move over a still background in
  every clip the model knows; text scrolling, a camera panning over a texture or crowds change most of the frame.
- `edges`: the share of pixels on a sharp step in colour, two-sided: shapes on plain, graded or grainy backgrounds
  sit in a band that empty frames fall below and photographs, text and screens rise above.
Measured against the out-of-domain set (models/default/README.md, "Familiarity"): the model's own signals alone
(rebuild misses at any threshold, the posterior's width, its distance from training clips' posteriors) flagged at
most 53% of it while passing 95% of familiar clips; these three flag 97%.

Each signal's value is placed among the same signal's values on the training corpus' validation clips (quantiles in
the manifest): its tail share is the share of familiar clips as extreme or more (on its side). The clip's familiarity
is the smallest tail share times the number of signals (Bonferroni: a clip may fail any one of them), capped at 1; it
is `familiar` at or above the calibration's `threshold`, so about that share of clips like the training data are
flagged by construction.

Sentence: the share of its words that the model knows (unknown words are read as <unk>, so a sentence of unknown
words says nothing the model can read); familiar when at least MIN_KNOWN_SHARE of them are known.

Numpy only: the service computes scores exactly as export calibrated them.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.answer_warnings import AnswerWarning, warning
from core.config import rebuilt_frames
from core.frames import Box

Side = Literal["high", "both"]
# The signals a new calibration measures, in the order it stores them (SIGNALS below knows every signal a calibration
# may name, and which tail of each is unfamiliar).
VIDEO_SIGNALS: tuple[str, ...] = ("rebuild_miss_shaded", "motion", "edges")
MISS = 0.2  # a pixel the model "cannot rebuild": this far (RGB distance, 0-1 scale) off, after the colour cast
STEP = 0.1  # a pixel "changes" (motion) or "sits on an edge" (edges) at this RGB distance to its neighbour
# Probabilities at which each signal's calibration quantiles are kept: dense in both tails, where decisions are made.
QUANTILE_PROBS: tuple[float, ...] = tuple(np.round(np.concatenate([
    [0.0, 0.001, 0.005], np.linspace(0.01, 0.09, 9), np.linspace(0.1, 0.9, 9), np.linspace(0.91, 0.99, 9),
    [0.995, 0.999, 1.0]]), 4).tolist())
# The calibrated share of clips like the training data that are flagged (at 0.02, quality-v7 flagged 6.0% of two-object
# test clips; at 0.01 3.4%, with the out-of-domain set still 96%).
FALSE_ALARM = 0.01
MIN_KNOWN_SHARE = 0.5  # a rule of the sentence score, not calibrated: it lives here, not in the manifest


def picture_masks(boxes: Sequence[Box | Sequence[int] | None], height: int, width: int) -> np.ndarray:
    """[B, H, W] bool: where each clip's own picture lies in the model's frame (all of it without a box)."""
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    for mask, box in zip(masks, boxes):
        if box:
            top, left, h, w = box
            mask[top:top + h, left:left + w] = True
        else:
            mask[:] = True
    return masks


def _frame_masks(video: np.ndarray, boxes: Sequence[Box | Sequence[int] | None] | None) -> np.ndarray:
    b, _, h, w, _ = video.shape
    return picture_masks(boxes if boxes is not None else [None] * b, h, w)


def _over(diff: np.ndarray, limit: float) -> np.ndarray:
    """[...] whether each RGB difference [..., 3] is longer than `limit` (squared lengths: no square root). Three
    products summed in place: the same float32 sums as einsum's, at about 2.4x its speed on a last axis of 3 (the
    familiarity signals pass every pixel through here four times per clip)."""
    squared = diff[..., 0] * diff[..., 0]
    squared += diff[..., 1] * diff[..., 1]
    squared += diff[..., 2] * diff[..., 2]
    return squared > limit * limit


def _drawn(video: np.ndarray, drawn: int, axis: int) -> np.ndarray:
    """The frames (on `axis`) of clips that a rebuild of `drawn` frames drew: all of them, or every n-th ending on
    the last (core.config.rebuilt_frames), n read from the two lengths."""
    frames = video.shape[axis]
    if drawn == frames:
        return video
    if drawn < 1 or frames % drawn:
        raise ValueError(f"a rebuild of {drawn} frames cannot be read against clips of {frames}")
    index: list[slice] = [slice(None)] * video.ndim
    index[axis] = rebuilt_frames(frames, frames // drawn)
    return video[tuple(index)]


def rebuild_miss(video: np.ndarray, rebuilt: np.ndarray,
                 boxes: Sequence[Box | Sequence[int] | None] | None = None, shading: bool = False) -> np.ndarray:
    """[B] the share of picture pixels the model's rebuild misses by more than MISS, once each frame's median
    difference (the rebuild's colour cast: a brown background rebuilt a shade too dark) is taken off, and with
    `shading` its shading too (_less_shading). The median is read on every 4th picture pixel: the cast is a property
    of the whole frame, and the full median costs 4x (every 16th: 0.3 ms less per clip, and one more outside file of
    50 flagged). A rebuild of fewer frames than the clip (ModelConfig.rebuild_stride) is read against the frames
    it drew."""
    masks = _frame_masks(video, boxes)
    diff = np.asarray(_drawn(video, rebuilt.shape[1], axis=1), np.float32) - np.asarray(rebuilt, np.float32)
    b, t, h, w, _ = diff.shape
    coords = _plane_coords(h, w)
    out = np.zeros(b)
    whole = masks.reshape(b, -1).all(axis=1)
    if whole.any():  # clips that fill the frame: one vectorised pass (the service's usual batch)
        d = diff[whole].reshape(int(whole.sum()) * t, h * w, 3)
        rest = _forgiven(d, coords, shading)
        out[whole] = _over(rest, MISS).reshape(int(whole.sum()), -1).mean(axis=1)
    for i in np.flatnonzero(~whole):  # letterboxed clips: their own picture each
        inside = diff[i][:, masks[i]]  # [T, P, 3]
        rest = _forgiven(inside, coords[masks[i].ravel()], shading)
        out[i] = np.mean(_over(rest, MISS))
    return out


@functools.lru_cache(maxsize=8)
def _plane_coords(h: int, w: int) -> np.ndarray:
    """[H*W, 3] float32: 1, x and y of each pixel, x and y in [-0.5, 0.5) (the plane a frame's shading is fitted by).
    One read-only array per frame size: every score of a model reads the same one."""
    ys, xs = np.mgrid[0:h, 0:w]
    coords = np.stack([np.ones(h * w), xs.ravel() / w - 0.5, ys.ravel() / h - 0.5], axis=1).astype(np.float32)
    coords.flags.writeable = False
    return coords


# How strongly a frame's shading plane is drawn to its flat median cast: one pixel's worth on the level (a frame whose
# pixels the cast explains nowhere keeps the cast alone), next to nothing on the slopes (a steep ramp explained only
# in a narrow band is still fitted whole).
PULL = np.diag([1.0, 1e-4, 1e-4]).astype(np.float32)


def _cast(sub: np.ndarray) -> np.ndarray:
    """[F, 3] each frame's median difference over its pixels (sub [F, P, 3]): np.median's values exactly (the mean
    of the two middle values where P is even), at about a third of its cost: one partition of a contiguous copy
    whose pixels run last, and the lower middle read as the largest of the lower half."""
    n = sub.shape[1]
    k = n // 2
    x = np.partition(np.ascontiguousarray(sub.transpose(0, 2, 1)), k, axis=-1)  # [F, 3, P]
    return x[..., k] if n % 2 else (x[..., :k].max(axis=-1) + x[..., k]) / 2


def _less_shading(d: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """[F, P, 3] frames' differences with their rebuilds at P picture pixels (coords [P, 3]), less each frame's cast
    and shading: per channel the plane a + b x + c y fitted by least squares on the pixels (every 4th) the frame's
    median cast already explains, so the object the rebuild misses does not tilt it (PULL keeps it defined)."""
    sub, at = d[:, ::4], coords[::4]
    cast = _cast(sub)  # [F, 3]
    explained = (~_over(sub - cast[:, None], MISS)).astype(np.float32)  # [F, P/4]
    # the explained pixels' coordinates, coefficients before pixels: both products below are then plain matrix
    # products (0.25x the cost of the same sums over a transposed view, equal to float rounding)
    weighted = explained[:, None, :] * np.ascontiguousarray(at.T)[None]  # [F, 3, P/4]
    normal = weighted @ at + PULL  # [F, 3, 3]
    target = weighted @ sub  # [F, 3 coefficients, 3 channels]
    target[:, 0] += PULL[0, 0] * cast
    plane = np.linalg.solve(normal, target)  # [F, 3, 3]
    return d - coords[None] @ plane


def _forgiven(d: np.ndarray, coords: np.ndarray, shading: bool) -> np.ndarray:
    """[F, P, 3] frames' differences with their rebuilds less what the signal forgives: each frame's median cast, or
    with `shading` its cast and shading (_less_shading)."""
    return _less_shading(d, coords) if shading else d - _cast(d[:, ::4])[:, None]


def missed_pixels(video: np.ndarray, rebuilt: np.ndarray, box: Box | Sequence[int] | None,
                  shading: bool) -> np.ndarray:
    """[T, H, W] bool: the pixels of one clip's picture [T,H,W,3] its rebuild misses, as rebuild_miss (shading
    False) or rebuild_miss_shaded counts them (for pictures of what each forgives: bench/familiarity.py)."""
    video = _drawn(video, len(rebuilt), axis=0)
    t, h, w, _ = video.shape
    inside = picture_masks([box], h, w)[0].ravel()
    d = (np.asarray(video, np.float32) - np.asarray(rebuilt, np.float32)).reshape(t, h * w, 3)[:, inside]
    out = np.zeros((t, h * w), bool)
    out[:, inside] = _over(_forgiven(d, _plane_coords(h, w)[inside], shading), MISS)
    return out.reshape(t, h, w)


def rebuild_miss_shaded(video: np.ndarray, rebuilt: np.ndarray,
                        boxes: Sequence[Box | Sequence[int] | None] | None = None) -> np.ndarray:
    """rebuild_miss with each frame's shading forgiven as well as its cast."""
    return rebuild_miss(video, rebuilt, boxes, shading=True)


def motion(video: np.ndarray, boxes: Sequence[Box | Sequence[int] | None] | None = None) -> np.ndarray:
    """[B] the share of picture pixels that change by more than STEP from one frame to the next."""
    masks = _frame_masks(video, boxes)
    video = np.asarray(video, np.float32)
    if video.shape[1] < 2:
        return np.zeros(len(video))
    changed = _over(video[:, 1:] - video[:, :-1], STEP)  # [B,T-1,H,W]
    return (changed & masks[:, None]).sum(axis=(1, 2, 3)) / (masks.sum(axis=(1, 2)) * changed.shape[1])


def edges(video: np.ndarray, boxes: Sequence[Box | Sequence[int] | None] | None = None) -> np.ndarray:
    """[B] the share of picture pixels whose right or lower neighbour (inside the picture) differs by more than STEP."""
    masks = _frame_masks(video, boxes)
    video = np.asarray(video, np.float32)
    corner = video[:, :, :-1, :-1]
    step = _over(video[:, :, :-1, 1:] - corner, STEP) | _over(video[:, :, 1:, :-1] - corner, STEP)
    inside = masks[:, :-1, :-1] & masks[:, 1:, :-1] & masks[:, :-1, 1:]  # a pixel and both neighbours in the picture
    step &= inside[:, None]
    return step.sum(axis=(1, 2, 3)) / np.maximum(inside.sum(axis=(1, 2)) * video.shape[1], 1)


# Every signal a calibration may name: how it is computed (video, its rebuild, boxes) and its unfamiliar tail.
SignalFn = Callable[[np.ndarray, np.ndarray, "Sequence[Box | Sequence[int] | None] | None"], np.ndarray]
SIGNALS: dict[str, tuple[SignalFn, Side]] = {
    "rebuild_miss_shaded": (rebuild_miss_shaded, "both"),
    "rebuild_miss": (rebuild_miss, "both"),
    "motion": (lambda video, _, boxes: motion(video, boxes), "high"),
    "edges": (lambda video, _, boxes: edges(video, boxes), "both"),
}
SIDES: tuple[Side, ...] = tuple(SIGNALS[name][1] for name in VIDEO_SIGNALS)  # a new calibration's, in its order


def video_signals(video: np.ndarray, rebuilt: np.ndarray,
                  boxes: Sequence[Box | Sequence[int] | None] | None = None,
                  names: Sequence[str] = VIDEO_SIGNALS) -> np.ndarray:
    """[B, len(names)] for clips [B,T,H,W,3] in [0, 1], their rebuilds, and their pictures' boxes."""
    return np.stack([SIGNALS[name][0](video, rebuilt, boxes) for name in names], axis=1)


@dataclass(frozen=True)
class Calibration:
    """The manifest's `familiarity` entry: per video signal (`signals`, each in SIGNALS) its quantiles at
    QUANTILE_PROBS on familiar clips (the validation split), and the threshold."""

    quantiles: tuple[tuple[float, ...], ...]
    threshold: float = FALSE_ALARM
    clips: int = 0
    source: str = ""
    signals: tuple[str, ...] = VIDEO_SIGNALS

    @property
    def sides(self) -> tuple[Side, ...]:
        return tuple(SIGNALS[name][1] for name in self.signals)

    @classmethod
    def fit(cls, video: np.ndarray, rebuilt: np.ndarray, boxes: Sequence[Box | Sequence[int] | None] | None,
            source: str, threshold: float = FALSE_ALARM) -> Calibration:
        """From familiar clips (the validation split): the clips, the model's rebuilds, their pictures' boxes."""
        q = np.quantile(video_signals(video, rebuilt, boxes).astype(np.float64), QUANTILE_PROBS, axis=0).T
        return cls(tuple(tuple(float(v) for v in row) for row in q), threshold, len(video), source)

    def measure(self, video: np.ndarray, rebuilt: np.ndarray,
                boxes: Sequence[Box | Sequence[int] | None] | None = None) -> np.ndarray:
        """[B, len(self.signals)]: the signals this calibration was fitted on, of clips, rebuilds and boxes."""
        return video_signals(video, rebuilt, boxes, self.signals)

    def score(self, video: np.ndarray, rebuilt: np.ndarray,
              boxes: Sequence[Box | Sequence[int] | None] | None = None) -> np.ndarray:
        """[B] familiarity of clips from their rebuilds (measure, then familiarity)."""
        return self.familiarity(self.measure(video, rebuilt, boxes))

    def to_dict(self) -> dict[str, Any]:
        return {"signals": list(self.signals), "sides": list(self.sides), "probs": list(QUANTILE_PROBS),
                "quantiles": [list(q) for q in self.quantiles], "threshold": self.threshold, "clips": self.clips,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        signals = tuple(d.get("signals", ()))
        if (list(d.get("probs", [])) != list(QUANTILE_PROBS) or not signals
                or any(name not in SIGNALS for name in signals)
                or tuple(d.get("sides", ())) != tuple(SIGNALS[name][1] for name in signals)):
            raise ValueError("familiarity calibration of another layout (signals, sides or quantile probabilities); "
                             "recalibrate the model: slr calibrate")
        quantiles = tuple(tuple(float(v) for v in q) for q in d["quantiles"])
        if len(quantiles) != len(signals) or any(len(q) != len(QUANTILE_PROBS) for q in quantiles):
            raise ValueError("familiarity calibration: one row of quantiles per signal, one per probability")
        return cls(quantiles, float(d.get("threshold", FALSE_ALARM)), int(d.get("clips", 0)), str(d.get("source", "")),
                   signals)

    def familiarity(self, signals: np.ndarray) -> np.ndarray:
        """[B] in [0, 1] from [B, len(signals)]."""
        signals = np.atleast_2d(np.asarray(signals, np.float64))
        tails = np.stack([_tail(signals[:, j], np.asarray(q), side)
                          for j, (q, side) in enumerate(zip(self.quantiles, self.sides))], axis=1)
        return np.clip(len(self.signals) * tails.min(axis=1), 0.0, 1.0)


def _tail(x: np.ndarray, quantiles: np.ndarray, side: Side) -> np.ndarray:
    """The share of calibration values at least as extreme as x: above it ("high"), or twice the nearer tail
    ("both")."""
    above = 1.0 - _cdf(x, quantiles)
    if side == "high":
        return above
    below = _cdf_below(x, quantiles)
    return np.minimum(1.0, 2.0 * np.minimum(above, below))


def _cdf(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """The calibration's share of values below x, linear between its quantiles. A value tied with a run of equal
    quantiles (a signal that saturates) sits at the run's start: the run's mass counts as at least as bad."""
    probs = np.asarray(QUANTILE_PROBS)
    i = np.searchsorted(quantiles, x, side="left")
    lo, hi = np.clip(i - 1, 0, len(quantiles) - 1), np.clip(i, 0, len(quantiles) - 1)
    span = quantiles[hi] - quantiles[lo]
    frac = np.where(span > 0, (x - quantiles[lo]) / np.where(span > 0, span, 1.0), 1.0)
    inside = probs[lo] + frac * (probs[hi] - probs[lo])
    return np.where(i == 0, 0.0, np.where(i >= len(quantiles), 1.0, inside))


def _cdf_below(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """The share of calibration values at or below x, the mirror of _cdf: a value tied with a run of equal quantiles
    sits at the run's end (a signal stuck at its floor for many familiar clips is no evidence at the floor)."""
    return 1.0 - _cdf(-x, -quantiles[::-1])


def sentence_familiarity(token_ids: list[int], unk_id: int) -> float:
    """The share of a sentence's words the model knows."""
    return float(np.mean([t != unk_id for t in token_ids])) if token_ids else 0.0


@dataclass(frozen=True)
class Verdict:
    familiarity: float | None  # None: the model carries no calibration (or the input kind has none)
    familiar: bool | None
    warnings: tuple[AnswerWarning, ...]  # a tuple: one verdict may answer many requests (the predictor keeps them)


def verdict(video: float | None, sentence: float | None, threshold: float | None,
            unknown_words: list[str] | None = None) -> Verdict:
    """What an answer says about its input: the lower of the two media's familiarity, whether it passes, and why not
    (core/answer_warnings.py). `video` None: no video input or no calibration; `sentence` None: no sentence input."""
    warnings: list[AnswerWarning] = []
    scores: list[float] = []
    passes: list[bool] = []
    if video is not None and threshold is not None:
        video = round(video, 4)  # the figure the answer shows is the one compared
        scores.append(video)
        passes.append(video >= threshold)
        if video < threshold:
            warnings.append(warning("unfamiliar_clip"))
    if sentence is not None:
        scores.append(sentence)
        passes.append(sentence >= MIN_KNOWN_SHARE)
        if sentence == 0.0:
            warnings.append(warning("no_known_words"))
        elif sentence < MIN_KNOWN_SHARE:
            warnings.append(warning("few_known_words"))
        elif unknown_words:
            warnings.append(warning("some_unknown_words", words=", ".join(unknown_words)))
    if not scores:
        return Verdict(None, None, tuple(warnings))
    return Verdict(round(float(min(scores)), 4), all(passes), tuple(warnings))
