"""The rule a cheaper variant is accepted by (export/variants.py: caption_falls): a caption figure falls only when a
one-sided exact McNemar test on the same clips says chance would rarely give the fall (p < core.stats.ALPHA)."""
from __future__ import annotations

import numpy as np
import pytest

from core.stats import ALPHA
from export.variants import caption_falls, paired_figures

N = 596  # the quality corpus' test split


def flipped(right: list[bool], lose: list[int], win: list[int]) -> list[bool]:
    out = list(right)
    for i in lose:
        assert out[i]
        out[i] = False
    for i in win:
        assert not out[i]
        out[i] = True
    return out


def source(share: float = 0.8) -> list[bool]:
    return [i < int(share * N) for i in range(N)]


def test_three_clips_of_596_is_noise_not_a_loss() -> None:
    old = source()
    new = flipped(old, lose=[0, 1, 2], win=[])  # 0.5 points: the fixed rule called this a loss
    assert caption_falls({"shape": old}, {"shape": new}) == []
    [f] = paired_figures({"shape": old}, {"shape": new})
    assert (f.lost, f.won, f.clips) == (3, 0, N) and f.p_fall == pytest.approx(1 / 8)
    assert f.delta_points == pytest.approx(-100 * 3 / N)


def test_a_real_loss_is_refused_and_named() -> None:
    old = source()
    new = flipped(old, lose=list(range(10)), win=[N - 1])  # 9 net clips, nearly all one way: p 0.006
    [f] = caption_falls({"colour": old, "shape": old}, {"colour": old, "shape": new})
    assert f.name == "shape" and (f.lost, f.won) == (10, 1) and f.p_fall < ALPHA
    assert f.text().startswith("shape -1.51 points (10 clips lost, 1 won of 596")


def test_random_flips_both_ways_pass_about_as_often_as_alpha_says() -> None:
    """Noise: a variant as good as its source, whose clips flip either way alike (as many right ones turn wrong as
    wrong ones turn right, on average); it is refused at most ALPHA of the time."""
    rng = np.random.default_rng(0)
    old = source()  # 80% right: a right clip flips with p 0.01, a wrong one with p 0.04, 4.8 clips each way
    refused = 0
    for _ in range(400):
        flips = rng.random(N) < np.where(old, 0.01, 0.04)
        new = [o != f for o, f in zip(old, flips)]
        refused += bool(caption_falls({"all": old}, {"all": new}))
    assert refused / 400 <= ALPHA


def test_figures_must_pair_the_same_clips() -> None:
    with pytest.raises(ValueError, match="one side only"):
        caption_falls({"shape": [True]}, {"colour": [True]})
    with pytest.raises(ValueError):
        caption_falls({"shape": [True, False]}, {"shape": [True]})
