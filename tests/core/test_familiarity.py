"""The familiarity score: calibrated tails, the Bonferroni combination, sentences by known words, warnings."""
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
    recon_error,
    sentence_familiarity,
    verdict,
)


def calibration(n: int = 2000, seed: int = 0) -> tuple[Calibration, np.ndarray]:
    signals = np.random.default_rng(seed).normal(size=(n, len(VIDEO_SIGNALS)))
    return Calibration.fit(signals, "test"), signals


def test_clips_like_the_calibration_are_flagged_at_about_the_false_alarm_rate() -> None:
    cal, _ = calibration()
    fresh = np.random.default_rng(1).normal(size=(4000, len(VIDEO_SIGNALS)))
    flagged = np.mean(cal.familiarity(fresh) < cal.threshold)
    assert 0.005 <= flagged <= 0.04, flagged


def test_a_clip_far_out_on_any_one_signal_is_unfamiliar() -> None:
    cal, _ = calibration()
    typical = np.zeros(len(VIDEO_SIGNALS))
    assert cal.familiarity(typical[None])[0] > 0.9  # the median on both signals
    for j in range(len(VIDEO_SIGNALS)):
        far = typical.copy()
        far[j] = 10.0
        assert cal.familiarity(far[None])[0] == 0.0
    low = np.full(len(VIDEO_SIGNALS), -10.0)  # better than every calibration clip: as familiar as it gets
    assert cal.familiarity(low[None])[0] == 1.0


def test_calibration_round_trips_through_the_manifest_and_refuses_another_layout() -> None:
    cal, signals = calibration()
    again = Calibration.from_dict(cal.to_dict())
    assert np.allclose(again.familiarity(signals[:50]), cal.familiarity(signals[:50]))
    bad = {**cal.to_dict(), "probs": list(QUANTILE_PROBS[:-1])}
    with pytest.raises(ValueError):
        Calibration.from_dict(bad)


def test_recon_error_is_per_clip() -> None:
    video = np.zeros((2, 3, 4, 5, 3), np.float32)
    rebuilt = video.copy()
    rebuilt[1] = 0.5
    assert recon_error(video, rebuilt).tolist() == [0.0, 0.25]


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


def test_a_saturated_signal_counts_its_ties_as_the_tail() -> None:
    """A signal stuck at its ceiling for a third of the familiar clips: a clip at the ceiling is not unfamiliar."""
    rng = np.random.default_rng(0)
    signals = rng.normal(size=(900, len(VIDEO_SIGNALS)))
    signals[:300, 1] = signals[:, 1].max() + 1.0
    cal = Calibration.fit(signals, "test")
    at_ceiling = np.array([[0.0, signals[0, 1]]])
    assert cal.familiarity(at_ceiling)[0] > 0.5
