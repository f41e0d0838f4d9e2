"""Numbers over seeds: mean and sample standard deviation of every result, and when a difference counts as real.

An aggregate is {"mean", "std", "n", "values"}; a difference is real only if the two means differ by more than the
sum of their standard deviations."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

Aggregate = dict[str, Any]
EQUAL_TOL = 1e-6  # BLEU of a corpus with no n-gram match is ~1e-9, not 0: such means count as equal
SKIPPED_KEYS = frozenset({"samples", "clips"})  # example outputs and clip counts, not scores


def aggregate(values: Sequence[float]) -> Aggregate:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value) of one number over seeds."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("nothing to aggregate")
    std = statistics.stdev(xs) if len(xs) > 1 else 0.0  # stdev needs two values; one seed has no spread
    return {"mean": statistics.fmean(xs), "std": std, "n": len(xs), "values": xs}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def aggregate_tree(runs: Sequence[dict[str, Any]], skip: frozenset[str] = SKIPPED_KEYS) -> dict[str, Any]:
    """The same nested dict with every numeric leaf present in all runs replaced by aggregate(values)."""
    out: dict[str, Any] = {}
    if not runs:
        return out
    for key in runs[0]:
        if key in skip or not all(isinstance(r, dict) and key in r for r in runs):
            continue
        vals = [r[key] for r in runs]
        if all(isinstance(v, dict) for v in vals):
            sub = aggregate_tree(vals, skip)
            if sub:
                out[key] = sub
        elif all(_is_number(v) for v in vals):
            out[key] = aggregate(vals)
    return out


def stat_at(agg: dict[str, Any], *keys: str) -> Aggregate | None:
    """The aggregate at agg[k1][k2]..., or None where a key is missing or the node is not an aggregate."""
    node: Any = agg
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node if isinstance(node, dict) and "mean" in node else None


def is_real(a: Aggregate, b: Aggregate) -> bool:
    """A difference is real only if the means differ by more than the sum of the standard deviations."""
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


def compare(a: Aggregate, b: Aggregate, higher_is_better: bool) -> str:
    """'better' / 'worse' (real), 'better, within spread' / 'worse, within spread', or 'equal': a versus b."""
    if abs(a["mean"] - b["mean"]) <= EQUAL_TOL * max(1.0, abs(a["mean"]), abs(b["mean"])):
        return "equal"
    better = (a["mean"] > b["mean"]) == higher_is_better
    word = "better" if better else "worse"
    return word if is_real(a, b) else f"{word}, within spread"


def mean_std(agg: Aggregate | None, scale: float = 100.0, digits: int = 1) -> str:
    """'mean ± std' scaled for display ('-' when there is no number): every table cell and the reading use it."""
    if agg is None:
        return "-"
    return f"{agg['mean'] * scale:.{digits}f} ± {agg['std'] * scale:.{digits}f}"
