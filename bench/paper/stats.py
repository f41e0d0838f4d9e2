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


def _at_step(info: dict[str, Any], step: int) -> dict[str, Any] | None:
    """The validation of a run's curve at `step`, or None."""
    return next((p for p in info.get("curve", []) if p["step"] == step), None)


def aggregate_run(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What one row's trainings did over seeds: steps run, training seconds and, for a converging row, the step
    whose weights were kept, how many seeds stopped before the cap, and every task's validation figure there."""
    out: dict[str, Any] = {"n": len(infos), "steps": aggregate([i["steps"] for i in infos]),
                           "train_seconds": aggregate([i["train_seconds"] for i in infos])}
    if infos and all("best_step" in i for i in infos):
        out["best_step"] = aggregate([i["best_step"] for i in infos])
        out["stopped_early"] = sum(bool(i["stopped_early"]) for i in infos)
        points = [_at_step(i, i["best_step"]) for i in infos]
        if all(points):
            out["best_figures"] = aggregate_tree([{t: f["figure"] for t, f in p["tasks"].items()} for p in points])
    return out


def aggregate_runs(runs: dict[str, dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """{run key: aggregate_run over the seeds that have it}."""
    keys = dict.fromkeys(k for s in seeds for k in runs[str(s)])
    return {k: aggregate_run([runs[str(s)][k] for s in seeds if k in runs[str(s)]]) for k in keys}


def mean_curve(curves: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One learning curve over seeds: at each validated step, the overall and every task's figure averaged over the
    seeds that validated there (a seed that stopped early drops out; n says how many remain)."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for curve in curves:
        for point in curve:
            by_step.setdefault(point["step"], []).append(point)
    out = []
    for step in sorted(by_step):
        pts = by_step[step]
        tasks = sorted({t for p in pts for t in p["tasks"]})
        out.append({"step": step, "phase": pts[0]["phase"], "n": len(pts),
                    "figure": statistics.fmean(p["figure"] for p in pts),
                    "tasks": {t: statistics.fmean(p["tasks"][t]["figure"] for p in pts if t in p["tasks"])
                              for t in tasks}})
    return out


def mean_curves(runs: dict[str, dict[str, Any]], seeds: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """{run key: mean_curve over seeds}, keys without any validation left out."""
    keys = dict.fromkeys(k for s in seeds for k in runs[str(s)])
    curves = {k: mean_curve([runs[str(s)][k]["curve"] for s in seeds if k in runs[str(s)]]) for k in keys}
    return {k: c for k, c in curves.items() if c}
