"""Tests that tell noise from loss when two models are compared on the same clips: the release gate
(export/gate.py) and the cheaper graph variants (export/variants.py) decide with them. Torch-free, numpy-free."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05  # one-sided: a fall is called a loss when chance alone would make one as large under 5% of the time


@dataclass(frozen=True)
class Paired:
    """Two versions' outcomes on the same items: how many, the items only the old one had right (lost), only the
    new one (won), and the one-sided exact McNemar p-value that the new one is worse."""

    n: int
    lost: int
    won: int
    p_fall: float


def paired(old: Sequence[bool], new: Sequence[bool]) -> Paired:
    """Count the discordant items once and test them: of those, how likely at least `lost` go against `new` if
    either side were as likely."""
    if len(old) != len(new):
        raise ValueError(f"paired outcomes differ in length: {len(old)} against {len(new)}")
    lost = sum(1 for a, b in zip(old, new) if a and not b)
    won = sum(1 for a, b in zip(old, new) if b and not a)
    return Paired(len(old), lost, won, binomial_tail(lost, lost + won))


def mcnemar_fall_p(old: Sequence[bool], new: Sequence[bool]) -> float:
    """One-sided exact McNemar p-value that `new` is worse than `old` on the same items (`paired`)."""
    return paired(old, new).p_fall


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2); 1.0 when n is 0 (no discordant item: no evidence of a fall)."""
    if n == 0 or k <= 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n  # integers: exact for any n, no float overflow
