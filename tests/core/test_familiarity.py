"""The familiarity score: calibrated tails (one- and two-sided), the Bonferroni combination, the three video signals
read inside the picture, sentences by known words, warnings."""
from __future__ import annotations

import numpy as np
import pytest

from core.familiarity import (
    QUANTILE_PROBS,
    VIDEO_SIGNALS,
    Calibration,
    Verdict,
    _cast,
    edges,
    missed_pixels,
    motion,
    picture_masks,
    rebuild_miss,
    sentence_familiarity,
    verdict,
    video_signals,
)

T, H, W = 4, 12, 16


def shape_clips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(video, rebuilt) like the training data: a square of a random colour moving over a grainy background, rebuilt
    but for a slip of its position and some noise (both of a random size, so every signal spreads)."""
    rng = np.random.default_rng(seed)
    video = np.empty((n, T, H, W, 3), np.float32)
    rebuilt = np.empty_like(video)
    for i in range(n):
        bg, fg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        while np.linalg.norm(bg - fg) < 0.5:
            fg = rng.uniform(0, 1, 3)
        size, y = int(rng.integers(3, 6)), int(rng.integers(0, H - 6))
        x, dx = int(rng.integers(0, 4)), int(rng.integers(1, 3))
        slip, grain = int(rng.integers(0, 3)), rng.uniform(0.0, 0.06)
        for t in range(T):
            video[i, t] = np.clip(bg + rng.normal(0, grain, (H, W, 3)), 0, 1)
            rebuilt[i, t] = video[i, t]
            video[i, t, y:y + size, x + dx * t:x + dx * t + size] = fg
            rebuilt[i, t, y + slip:y + slip + size, x + dx * t:x + dx * t + size] = fg
    noise = rng.uniform(0.02, 0.12, (n, 1, 1, 1, 1))
    rebuilt = np.clip(rebuilt + rng.normal(0, 1, rebuilt.shape) * noise, 0, 1).astype(np.float32)
    return video, rebuilt


def calibration() -> Calibration:
    video, rebuilt = shape_clips(1000, 0)
    return Calibration.fit(video, rebuilt, None, "test")


def scores(cal: Calibration, video: np.ndarray, rebuilt: np.ndarray, boxes: list | None = None) -> np.ndarray:
    return cal.familiarity(video_signals(video, rebuilt, boxes))


def test_clips_like_the_calibration_are_flagged_at_about_the_false_alarm_rate() -> None:
    cal = calibration()
    video, rebuilt = shape_clips(2000, 2)
    flagged = np.mean(scores(cal, video, rebuilt) < cal.threshold)
    assert 0.001 <= flagged <= 0.03, flagged


def test_a_clip_not_rebuilt_a_busy_picture_and_an_empty_frame_are_unfamiliar() -> None:
    cal = calibration()
    video, rebuilt = shape_clips(4, 3)
    rng = np.random.default_rng(4)
    rebuilt[0] = rng.uniform(0, 1, rebuilt[0].shape)  # nothing of the clip rebuilt
    video[1] = rng.uniform(0, 1, video[1].shape)  # noise: every pixel an edge, every pixel changing
    rebuilt[1] = video[1]
    video[2], rebuilt[2] = 0.5, 0.5  # an empty grey frame, rebuilt perfectly: no object at all
    s = scores(cal, video, rebuilt)
    assert s[0] < cal.threshold and s[1] < cal.threshold and s[2] < cal.threshold, s
    assert s[3] > 0.1, s


def test_signals_are_shares_of_the_picture() -> None:
    video = np.zeros((1, 2, 4, 8, 3), np.float32)
    rebuilt = video.copy()
    rebuilt[0, :, 0, 0] = rebuilt[0, :, 3, 7] = 0.5  # two pixels of 32, far off, in both frames
    rebuilt[0, :, 1, 1] = 0.05  # one a little off: rebuilt
    assert rebuild_miss(video, rebuilt).tolist() == [1 / 16]
    cast = rebuilt + 0.3  # the whole frame a shade off: a colour cast, forgiven
    assert rebuild_miss(video, cast).tolist() == [1 / 16]
    video[0, 1, :, 4:] = 1.0  # the right half changes from frame 0 to 1 and makes a vertical edge
    assert motion(video).tolist() == [0.5]
    assert edges(video)[0] == pytest.approx(0.5 * 3 / 21)  # frame 1: 3 of the 3 x 7 pixels with both neighbours
    # Inside a letterboxed picture (the four left columns), the bars and the picture's border are not counted.
    box = (0, 0, 4, 4)
    assert picture_masks([box, None], 4, 8).sum(axis=(1, 2)).tolist() == [16, 32]
    assert motion(video, [box]).tolist() == [0.0] and edges(video, [box]).tolist() == [0.0]
    assert rebuild_miss(video, rebuilt, [box]).tolist() == [1 / 16]


def test_calibration_round_trips_through_the_manifest_and_refuses_another_layout() -> None:
    cal = calibration()
    again = Calibration.from_dict(cal.to_dict())
    video, rebuilt = shape_clips(50, 4)
    assert np.allclose(scores(again, video, rebuilt), scores(cal, video, rebuilt))
    with pytest.raises(ValueError):
        Calibration.from_dict({**cal.to_dict(), "probs": list(QUANTILE_PROBS[:-1])})
    with pytest.raises(ValueError):
        Calibration.from_dict({**cal.to_dict(), "signals": ["rebuild_miss", "latent_distance"]})
    with pytest.raises(ValueError, match="slr calibrate"):
        Calibration.from_dict({**cal.to_dict(), "sides": ["high"] * len(VIDEO_SIGNALS)})


def test_a_saturated_signal_counts_its_ties_as_the_tail_on_either_side() -> None:
    """A signal stuck at its floor for a fifth of the familiar clips: a clip there is not unfamiliar, on the
    two-sided signal (rebuild_miss) as on the one-sided one (motion)."""
    cal = calibration()
    q = [list(row) for row in cal.quantiles]
    q[0] = [0.0] * 14 + list(np.linspace(0.0, 1.0, len(QUANTILE_PROBS) - 14))
    q[1] = [0.0] * 14 + list(np.linspace(0.0, 1.0, len(QUANTILE_PROBS) - 14))
    tied = Calibration.from_dict({**cal.to_dict(), "quantiles": q})
    assert tied.familiarity(np.array([[0.0, 0.0, q[2][16]]]))[0] > 0.5
    assert tied.familiarity(np.array([[0.0, 2.0, q[2][16]]]))[0] == 0.0  # above every familiar clip's motion


def codes(v: Verdict) -> list[str]:
    return [w.code for w in v.warnings]


def test_sentences_by_the_share_of_known_words() -> None:
    assert sentence_familiarity([5, 6, 7], unk_id=3) == 1.0
    assert sentence_familiarity([3, 3], unk_id=3) == 0.0
    none = verdict(None, 0.0, None)
    assert none.familiar is False and none.familiarity == 0.0 and codes(none) == ["no_known_words"]
    few = verdict(None, 1 / 3, None)
    assert few.familiar is False and codes(few) == ["few_known_words"]
    some = verdict(None, 0.8, None, ["zebra"])
    assert some.familiar is True and codes(some) == ["some_unknown_words"] and "zebra" in some.warnings[0].message


def test_verdict_takes_the_less_familiar_medium_and_null_without_calibration() -> None:
    both = verdict(0.01, 1.0, 0.02)
    assert both.familiarity == 0.01 and both.familiar is False and codes(both) == ["unfamiliar_clip"]
    assert verdict(0.5, None, None).familiarity is None  # a video with no calibration: null, not a guess
    assert verdict(0.5, None, 0.02).familiar is True


def test_the_shaded_rebuild_miss_forgives_a_graded_background_and_still_counts_a_missed_object() -> None:
    """A rebuild off by a steep linear shading across the frame (what the sprite decoder draws for a background
    graded more steeply than its own): the flat cast leaves most pixels missed, the shading none; an object the rebuild
    leaves out is still missed by both. The flat signal stays for calibrations that name it, bit for bit."""
    from core.familiarity import SIGNALS, rebuild_miss, rebuild_miss_shaded

    h, w = 36, 64
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
    video = np.broadcast_to(np.stack([xs, 1.0 - xs, np.full(w, 0.5, np.float32)], axis=-1), (1, 4, h, w, 3)).copy()
    rebuilt = np.full_like(video, 0.5)  # a flat grey: the ramp's cast right, its shading missed
    assert rebuild_miss(video, rebuilt)[0] > 0.5 and rebuild_miss_shaded(video, rebuilt)[0] < 0.01
    video[:, :, 10:22, 20:32] = (1.0, 0.0, 1.0)  # an object the rebuild leaves out: 12 x 12 of 36 x 64 pixels
    assert rebuild_miss_shaded(video, rebuilt)[0] == pytest.approx(144 / (h * w), abs=0.01)
    boxed = rebuild_miss_shaded(video, rebuilt, [(0, 8, 36, 48)])[0]  # the same inside a pillarboxed picture
    assert boxed == pytest.approx(144 / (h * 48), abs=0.015)
    assert SIGNALS["rebuild_miss"][0] is rebuild_miss


def test_a_calibration_measures_the_signals_it_names() -> None:
    """A calibration of the flat `rebuild_miss` (quality-v15 and older) reads and scores with that signal; one of an
    unknown signal or of sides that are not the signals' own is refused."""
    rng = np.random.default_rng(1)
    video = rng.random((12, 4, 36, 64, 3), dtype=np.float32)
    rebuilt = np.clip(video + rng.normal(0, 0.2, video.shape).astype(np.float32), 0, 1)
    flat = ("rebuild_miss", "motion", "edges")
    old = Calibration.fit(video, rebuilt, None, "noise")
    old = Calibration.from_dict({**old.to_dict(), "signals": list(flat)})
    assert old.signals == flat
    assert np.array_equal(old.measure(video, rebuilt), video_signals(video, rebuilt, None, flat))
    assert not np.array_equal(old.measure(video, rebuilt), video_signals(video, rebuilt))
    with pytest.raises(ValueError, match="another layout"):
        Calibration.from_dict({**old.to_dict(), "signals": ["rebuild_miss", "motion", "colourfulness"]})
    with pytest.raises(ValueError, match="another layout"):
        Calibration.from_dict({**old.to_dict(), "sides": ["high", "high", "both"]})


@pytest.mark.parametrize("pixels", [576, 577, 1, 2])
def test_a_frames_cast_is_numpys_median_exactly(pixels: int) -> None:
    # _cast partitions once rather than calling np.median; a calibration fitted before must read the same values
    rng = np.random.default_rng(pixels)
    d = rng.normal(0, 0.3, (5, pixels * 4, 3)).astype(np.float32)
    d[0] = np.round(d[0], 1)  # ties in the middle
    sub = d[:, ::4]  # the strided view the signals read
    np.testing.assert_array_equal(_cast(sub), np.median(sub, axis=1))


def test_a_rebuild_of_every_other_frame_is_read_against_the_frames_it_drew() -> None:
    # ModelConfig.rebuild_stride: the rebuild graph draws frames 1, 3 (of T = 4); the signal reads those of the clip
    video, rebuilt = shape_clips(6, seed=11)
    boxes = [None, None, (2, 0, 8, W), None, None, (0, 4, H, 8)]
    for shading in (False, True):
        np.testing.assert_array_equal(rebuild_miss(video, rebuilt[:, 1::2], boxes, shading),
                                      rebuild_miss(video[:, 1::2], rebuilt[:, 1::2], boxes, shading))
    np.testing.assert_array_equal(missed_pixels(video[0], rebuilt[0, 1::2], None, True),
                                  missed_pixels(video[0, 1::2], rebuilt[0, 1::2], None, True))
    with pytest.raises(ValueError, match="cannot be read"):
        rebuild_miss(video, rebuilt[:, :3])
