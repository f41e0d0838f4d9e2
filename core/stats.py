"""Tests that tell noise from loss when two models are compared on the same clips: the release gate
(export/gate.py) and the cheaper graph variants (export/variants.py) decide with them. Torch-free, numpy-free."""
from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.05  # one-sided: a fall is called a loss when chance alone would make one as large under 5% of the time


def mcnemar_fall_p(old: Sequence[bool], new: Sequence[bool]) -> float:
    """One-sided exact McNemar p-value that `new` is worse than `old` on the same items: of the discordant items
    (one right, the other wrong), how likely at least this many go against `new` if either side were as likely."""
    if len(old) != len(new):
        raise ValueError(f"paired outcomes differ in length: {len(old)} against {len(new)}")
    lost = sum(1 for a, b in zip(old, new) if a and not b)
    won = sum(1 for a, b in zip(old, new) if b and not a)
    return binomial_tail(lost, lost + won)


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2); 1.0 when n is 0 (no discordant item: no evidence of a fall)."""
    if n == 0 or k <= 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n  # integers: exact for any n, no float overflow


def proportion_fall_p(old_right: int, old_n: int, new_right: int, new_n: int) -> float:
    """One-sided p-value that the share `new_right / new_n` is below `old_right / old_n`, two independent samples
    (a pooled two-proportion z-test): for figures whose per-clip outcomes were not kept."""
    if old_n <= 0 or new_n <= 0:
        return 1.0
    p_old, p_new = old_right / old_n, new_right / new_n
    pooled = (old_right + new_right) / (old_n + new_n)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / old_n + 1.0 / new_n))
    if se == 0.0:
        return 1.0 if p_new >= p_old else 0.0
    z = (p_old - p_new) / se
    return 0.5 * math.erfc(z / math.sqrt(2.0))
