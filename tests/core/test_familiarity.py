"""The familiarity score: calibrated tails, the Bonferroni combination, the two video signals, sentences by known
words, warnings."""
from __future__ import annotations

import numpy as np
import pytest

from core.familiarity import (
    FEW_KNOWN_WORDS,
    NO_KNOWN_WORDS,
    QUANTILE_PROBS,
    UNFAMILIAR_CLIP,
    VIDEO_SIGNALS,
    Calibration,
    rebuild_miss,
    sentence_familiarity,
    verdict,
)

T, H, W, NZ = 2, 6, 8, 4


def clips(n: int, seed: int, noise: float = 0.02) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(video, rebuilt, mu, sigma): clips rebuilt up to a little noise, posteriors from one Gaussian."""
    rng = np.random.default_rng(seed)
    video = rng.uniform(0, 1, size=(n, T, H, W, 3)).astype(np.float32)
    rebuilt = np.clip(video + rng.normal(0, noise, size=video.shape), 0, 1).astype(np.float32)
    mu = rng.normal(size=(n, NZ)).astype(np.float32)
    sigma = np.exp(rng.normal(-1, 0.1, size=(n, NZ))).astype(np.float32)
    return video, rebuilt, mu, sigma


def calibration() -> Calibration:
    video, rebuilt, mu, sigma = clips(2000, 0)
    _, _, train_mu, train_sigma = clips(2000, 1)
    return Calibration.fit(video, rebuilt, mu, sigma, train_mu, train_sigma, "test")


def test_clips_like_the_calibration_are_flagged_at_about_the_false_alarm_rate() -> None:
    cal = calibration()
    video, rebuilt, mu, sigma = clips(4000, 2)
    flagged = np.mean(cal.familiarity(cal.video_signals(video, rebuilt, mu, sigma)) < cal.threshold)
    assert 0.005 <= flagged <= 0.04, flagged


def test_a_clip_the_model_cannot_rebuild_or_whose_posterior_is_far_off_is_unfamiliar() -> None:
    cal = calibration()
    video, rebuilt, mu, sigma = clips(3, 3)
    rebuilt[0] = 1.0 - video[0]  # nothing of the clip rebuilt
    mu[1] += 8.0  # the posterior far from every training clip's
    scores = cal.familiarity(cal.video_signals(video, rebuilt, mu, sigma))
    assert scores[0] == 0.0 and scores[1] == 0.0 and scores[2] > 0.1, scores


def test_rebuild_miss_is_the_share_of_pixels_missed() -> None:
    video = np.zeros((1, 1, 2, 2, 3), np.float32)
    rebuilt = video.copy()
    rebuilt[0, 0, 0, 0] = 0.5  # one pixel of four, far off
    rebuilt[0, 0, 1, 1] = 0.05  # one a little off: rebuilt
    assert rebuild_miss(video, rebuilt).tolist() == [0.25]


def test_calibration_round_trips_through_the_manifest_and_refuses_another_layout() -> None:
    cal = calibration()
    again = Calibration.from_dict(cal.to_dict())
    video, rebuilt, mu, sigma = clips(50, 4)
    assert np.allclose(again.familiarity(again.video_signals(video, rebuilt, mu, sigma)),
                       cal.familiarity(cal.video_signals(video, rebuilt, mu, sigma)))
    with pytest.raises(ValueError):
        Calibration.from_dict({**cal.to_dict(), "probs": list(QUANTILE_PROBS[:-1])})
    with pytest.raises(ValueError):
        Calibration.from_dict({**cal.to_dict(), "signals": ["recon_error", "posterior_width"]})


def test_a_saturated_signal_counts_its_ties_as_the_tail() -> None:
    """A signal stuck at its floor for a third of the familiar clips: a clip there is not unfamiliar."""
    cal = calibration()
    q = [list(row) for row in cal.quantiles]
    q[0] = [0.0] * 8 + list(np.linspace(0.0, 1.0, len(QUANTILE_PROBS) - 8))
    tied = Calibration.from_dict({**cal.to_dict(), "quantiles": q})
    assert tied.familiarity(np.array([[0.0, q[1][5]]]))[0] > 0.5
    assert len(VIDEO_SIGNALS) == 2


def test_sentences_by_the_share_of_known_words() -> None:
    assert sentence_familiarity([5, 6, 7], unk_id=3) == 1.0
    assert sentence_familiarity([3, 3], unk_id=3) == 0.0
    none = verdict(None, 0.0, None)
    assert none.familiar is False and none.familiarity == 0.0 and none.warnings == [NO_KNOWN_WORDS]
    few = verdict(None, 1 / 3, None)
    assert few.familiar is False and few.warnings == [FEW_KNOWN_WORDS]
    some = verdict(None, 0.8, None, ["zebra"])
    assert some.familiar is True and "zebra" in some.warnings[0]


def test_verdict_takes_the_less_familiar_medium_and_null_without_calibration() -> None:
    both = verdict(0.01, 1.0, 0.02)
    assert both.familiarity == 0.01 and both.familiar is False and both.warnings == [UNFAMILIAR_CLIP]
    assert verdict(0.5, None, None).familiarity is None  # a video with no calibration: null, not a guess
    assert verdict(0.5, None, 0.02).familiar is True
