"""How familiar an input is to the model: a score in [0, 1] from the model's own signals, calibrated per model at
export and kept in its manifest, so that a caption of a cat photo comes with "this looks unlike anything I know".

Video: how much of the clip the model fails to rebuild from its own SLR (the video decoder from z = mu and the
clip's first frame, against the clip), beside how far its posterior lies from training clips' posteriors. Each
signal's value is placed among the same signal's values on the training corpus' validation clips (quantiles in the
manifest): its tail share is the share of familiar clips that scored as badly or worse. The clip's familiarity is
the smallest tail share times the number of signals (Bonferroni: a clip may fail any one of them), capped at 1; it
is `familiar` at or above the calibration's `threshold`, so about that share of clips like the training data are
flagged by construction.

Sentence: the share of its words that the model knows (unknown words are read as <unk>, so a sentence of unknown
words says nothing the model can read); familiar when at least MIN_KNOWN_SHARE of them are known.

Numpy only: the service computes scores exactly as export calibrated them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# The signals of a video, in the order the calibration stores them (each: higher = less familiar). Measured on the
# first quality-v7 export against the out-of-domain set (models/default/README.md, "Familiarity"): the mean rebuild
# error and the posterior's mean log sigma flagged 17% of it at 2% of familiar clips; these two did better.
VIDEO_SIGNALS: tuple[str, ...] = ("rebuild_miss", "latent_distance")
MISS = 0.2  # a pixel the model "cannot rebuild": its rebuilt colour this far (RGB distance, 0-1 scale) from the input's
# Probabilities at which each signal's calibration quantiles are kept: dense in the tail, where decisions are made.
QUANTILE_PROBS: tuple[float, ...] = tuple(
    np.round(np.concatenate([np.linspace(0, 0.9, 10), np.linspace(0.91, 0.99, 9), [0.995, 0.999, 1.0]]), 4).tolist())
FALSE_ALARM = 0.02  # the calibrated share of clips like the training data that are flagged
MIN_KNOWN_SHARE = 0.5

UNFAMILIAR_CLIP = ("this clip looks unlike anything the model was trained on: coloured shapes on plain backgrounds; "
                   "the answer is likely wrong")
NO_KNOWN_WORDS = "none of these words are in the model's vocabulary: the answer says nothing about the input"
FEW_KNOWN_WORDS = "most of these words are not in the model's vocabulary: the answer is likely wrong"
SOME_UNKNOWN_WORDS = "some words are not in the model's vocabulary and were ignored: {words}"


def rebuild_miss(video: np.ndarray, rebuilt: np.ndarray) -> np.ndarray:
    """[B] the share of pixels the model's rebuild of the clip (from its own SLR) misses by more than MISS: a clip of
    one shape on a plain background is rebuilt but for the shape's edge; a photograph, a road, a UI are not."""
    diff = np.linalg.norm(np.asarray(video, np.float32) - np.asarray(rebuilt, np.float32), axis=-1)
    return np.mean(diff > MISS, axis=tuple(range(1, diff.ndim)))


def latent_point(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """[B, 2 Nz]: the posterior as one point (mu and log sigma)."""
    return np.concatenate([np.asarray(mu, np.float32), np.log(np.maximum(np.asarray(sigma, np.float32), 1e-12))], -1)


@dataclass(frozen=True)
class Calibration:
    """The manifest's `familiarity` entry: where training clips' posteriors lie (per-dimension centre and scale), and
    per video signal its quantiles at QUANTILE_PROBS on familiar clips (the validation split)."""

    quantiles: tuple[tuple[float, ...], ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float = FALSE_ALARM
    clips: int = 0
    source: str = ""
    signals: tuple[str, ...] = VIDEO_SIGNALS

    def video_signals(self, video: np.ndarray, rebuilt: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """[B, len(VIDEO_SIGNALS)]: the rebuild's misses; the posterior's mean squared standardised distance from
        the training clips' (a diagonal Mahalanobis distance)."""
        z = (latent_point(mu, sigma) - np.asarray(self.center)) / np.asarray(self.scale)
        return np.stack([rebuild_miss(video, rebuilt), np.mean(z * z, axis=-1)], axis=1)

    @classmethod
    def fit(cls, video: np.ndarray, rebuilt: np.ndarray, mu: np.ndarray, sigma: np.ndarray, train_mu: np.ndarray,
            train_sigma: np.ndarray, source: str, threshold: float = FALSE_ALARM) -> Calibration:
        """From familiar clips (the validation split: the clips, the model's rebuilds, their posteriors) and the
        posteriors of training clips (where the latent's familiar region lies)."""
        points = latent_point(train_mu, train_sigma)
        center, scale = points.mean(axis=0), points.std(axis=0) + 1e-6
        draft = cls((), tuple(center.tolist()), tuple(scale.tolist()), threshold, len(video), source)
        q = np.quantile(draft.video_signals(video, rebuilt, mu, sigma).astype(np.float64), QUANTILE_PROBS, axis=0).T
        return cls(tuple(tuple(float(v) for v in row) for row in q), draft.center, draft.scale, threshold, len(video),
                   source)

    def to_dict(self) -> dict[str, Any]:
        return {"signals": list(self.signals), "probs": list(QUANTILE_PROBS),
                "quantiles": [list(q) for q in self.quantiles], "latent_center": list(self.center),
                "latent_scale": list(self.scale), "threshold": self.threshold, "clips": self.clips,
                "source": self.source, "min_known_share": MIN_KNOWN_SHARE}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        if list(d.get("probs", [])) != list(QUANTILE_PROBS) or tuple(d.get("signals", ())) != VIDEO_SIGNALS:
            raise ValueError("familiarity calibration of another layout (signals or quantile probabilities)")
        quantiles = tuple(tuple(float(v) for v in q) for q in d["quantiles"])
        if len(quantiles) != len(VIDEO_SIGNALS) or any(len(q) != len(QUANTILE_PROBS) for q in quantiles):
            raise ValueError("familiarity calibration: one row of quantiles per signal, one per probability")
        center, scale = tuple(float(v) for v in d["latent_center"]), tuple(float(v) for v in d["latent_scale"])
        if len(center) != len(scale) or min(scale, default=0.0) <= 0:
            raise ValueError("familiarity calibration: latent centre and scale of one length, scales positive")
        return cls(quantiles, center, scale, float(d.get("threshold", FALSE_ALARM)), int(d.get("clips", 0)),
                   str(d.get("source", "")))

    def familiarity(self, signals: np.ndarray) -> np.ndarray:
        """[B] in [0, 1] from [B, len(signals)]."""
        signals = np.atleast_2d(np.asarray(signals, np.float64))
        tails = np.stack([1.0 - _cdf(signals[:, j], np.asarray(q)) for j, q in enumerate(self.quantiles)], axis=1)
        return np.clip(len(self.signals) * tails.min(axis=1), 0.0, 1.0)


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


def sentence_familiarity(token_ids: list[int], unk_id: int) -> float:
    """The share of a sentence's words the model knows."""
    return float(np.mean([t != unk_id for t in token_ids])) if token_ids else 0.0


@dataclass(frozen=True)
class Verdict:
    familiarity: float | None  # None: the model carries no calibration (or the input kind has none)
    familiar: bool | None
    warnings: list[str]


def verdict(video: float | None, sentence: float | None, threshold: float | None,
            unknown_words: list[str] | None = None) -> Verdict:
    """What an answer says about its input: the lower of the two media's familiarity, whether it passes, and why not
    in words. `video` None: no video input or no calibration; `sentence` None: no sentence input."""
    warnings: list[str] = []
    scores: list[float] = []
    passes: list[bool] = []
    if video is not None and threshold is not None:
        video = round(video, 4)  # the figure the answer shows is the one compared
        scores.append(video)
        passes.append(video >= threshold)
        if video < threshold:
            warnings.append(UNFAMILIAR_CLIP)
    if sentence is not None:
        scores.append(sentence)
        passes.append(sentence >= MIN_KNOWN_SHARE)
        if sentence == 0.0:
            warnings.append(NO_KNOWN_WORDS)
        elif sentence < MIN_KNOWN_SHARE:
            warnings.append(FEW_KNOWN_WORDS)
        elif unknown_words:
            warnings.append(SOME_UNKNOWN_WORDS.format(words=", ".join(unknown_words)))
    if not scores:
        return Verdict(None, None, warnings)
    return Verdict(round(float(min(scores)), 4), all(passes), warnings)
