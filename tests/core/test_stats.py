"""core/stats.py: the paired test the release gate and the graph variants decide with."""
from __future__ import annotations

import pytest

from core.stats import binomial_tail, mcnemar_fall_p, paired


def test_mcnemar_tells_a_loss_from_noise() -> None:
    same = [True] * 50 + [False] * 50
    assert mcnemar_fall_p(same, same) == 1.0
    noise = same[:]  # 3 lost, 2 won of 100
    for i in (0, 1, 2):
        noise[i] = False
    noise[50], noise[51] = True, True
    assert mcnemar_fall_p(same, noise) > 0.05
    loss = [False] * 10 + same[10:]  # 10 lost, none won
    assert mcnemar_fall_p(same, loss) < 0.01


def test_binomial_tail_by_hand() -> None:
    assert binomial_tail(0, 5) == 1.0 and binomial_tail(3, 0) == 1.0
    assert binomial_tail(5, 5) == pytest.approx(1 / 32)
    assert binomial_tail(4, 5) == pytest.approx(6 / 32)
    assert binomial_tail(1500, 3000) == pytest.approx(0.5, abs=0.01)  # a test split's worth of discordant clips


def test_mcnemar_needs_paired_outcomes() -> None:
    with pytest.raises(ValueError, match="length"):
        mcnemar_fall_p([True], [True, False])


def test_paired_counts_each_side_once() -> None:
    got = paired([True, True, False, False, True], [False, True, True, False, False])
    assert (got.n, got.lost, got.won) == (5, 2, 1) and got.p_fall == pytest.approx(binomial_tail(2, 3))
