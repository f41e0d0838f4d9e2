"""The predictor's verdict on a cache hit: the calibrated score of cached signals, computed once per distinct signals
(the numpy path cost a quarter of a hit's event-loop time: issue 35; `python -m bench.hit_cost` measures it)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from core.channels import REGISTRY
from core.familiarity import QUANTILE_PROBS, VIDEO_SIGNALS, Calibration, verdict
from service.cache import SlrCache, SlrEntry
from service.metrics import Metrics
from service.predictor import Predictor
from service.settings import Settings

CALIBRATION = Calibration(tuple(tuple(float(v) for v in np.linspace(0.0, 0.5 + 0.1 * i, len(QUANTILE_PROBS)))
                                for i in range(len(VIDEO_SIGNALS))))


def predictor(familiarity: bool = True) -> Predictor:
    engine = SimpleNamespace(config=SimpleNamespace(max_words=6, height=4, width=4, latent_dim=3), version="fake",
                             manifest=SimpleNamespace(tasks=dict.fromkeys(REGISTRY), graphs={},
                                                      familiarity=CALIBRATION))
    return Predictor(engine, SlrCache(None, 60, 16, (4, 4, 3)), Metrics(),  # type: ignore[arg-type]
                     Settings(redis_url="", familiarity=familiarity))


def entry(signals: tuple[float, ...] | None, sentence: float | None = None) -> SlrEntry:
    return SlrEntry(np.zeros(3, np.float32), np.ones(3, np.float32), video_signals=signals,
                    sentence_familiarity=sentence)


def close(p: Predictor) -> None:
    asyncio.run(p.close())


def test_a_hit_scores_its_signals_once_and_as_the_calibration_does(monkeypatch: pytest.MonkeyPatch) -> None:
    p = predictor()
    calls: list[int] = []
    direct = Calibration.familiarity

    def counted(self: Calibration, signals: np.ndarray) -> np.ndarray:
        calls.append(len(signals))
        return direct(self, signals)

    monkeypatch.setattr(Calibration, "familiarity", counted)
    for signals in [(0.2, 0.1, 0.3), (0.49, 0.0, 0.3), (0.9, 0.9, 0.9)]:
        want = round(float(direct(CALIBRATION, np.asarray([signals]))[0]), 4)
        first, again = p.entry_verdict(entry(signals)), p.entry_verdict(entry(signals))
        assert first == again and first.familiarity == want, (signals, first, want)
        assert first.familiar == (want >= CALIBRATION.threshold)
    assert calls == [1, 1, 1], "each distinct row of signals is scored once; a repeat is a lookup"
    close(p)


def test_without_scoring_or_signals_there_is_no_video_score() -> None:
    on, off = predictor(), predictor(familiarity=False)
    assert on.entry_verdict(entry(None)).familiarity is None
    assert off.entry_verdict(entry((0.2, 0.1, 0.3))).familiarity is None
    close(on)
    close(off)


def test_a_hit_reuses_its_verdict_and_the_requests_words_are_not_kept() -> None:
    p, off = predictor(), predictor(familiarity=False)
    signals = (0.2, 0.1, 0.3)
    for pred in (p, off):
        assert pred.entry_verdict(entry(signals)) is pred.entry_verdict(entry(signals)), "one verdict per cached entry"
    assert p.entry_verdict(entry(signals)) == verdict(p._video_score(signals), None, CALIBRATION.threshold)
    assert off.entry_verdict(entry(signals)) == verdict(None, None, None)
    kept = p._verdicts.cache_info().currsize
    words = p.entry_verdict(entry(signals, sentence=0.8), ["zebra"])
    assert words == verdict(p._video_score(signals), 0.8, CALIBRATION.threshold, ["zebra"])
    assert [w.code for w in words.warnings] == ["some_unknown_words"] and "zebra" in words.warnings[0].message
    assert p._verdicts.cache_info().currsize == kept, "a request's own words are not memoised"
    assert p.entry_verdict(entry(signals, sentence=0.8)).warnings == ()
    close(p)
    close(off)
