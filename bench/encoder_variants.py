"""What a cheaper video encoder gains in time and costs in captions: fp32 against each variant (export/quantize.py:
VARIANTS), side by side in one run.

    python -m bench.encoder_variants --artifacts models/default --data data/synthetic-quality --outside data/outside
    python -m bench.encoder_variants --artifacts models/default --variants int8-static --clips 400    # quicker

Each variant is derived from the source version as `slr export-variant` does (export/variants.py; int8-static
calibrated on the first --calibration-clips clips of the corpus's training split) into a temporary root, and loaded
by the service's engine with one intra-op thread (the service's default). Then:
- time: encoder_v alone at batch 1 and batch 8 on test clips, --rounds rounds, each round running every graph in
  turn, starting one further each round (A B C, B C A, ...), so that the machine's drifting load falls on all of
  them alike; medians per clip;
- captions: greedy, through the engine's sentence graphs, on the corpus's test split (colour / shape / motion / all
  three, over all clips and by one or two objects, read as `slr eval` reads them) and on the outside set's files
  (decoded by the service's own path, `core.media.prepare_upload`);
- familiarity: the share of those clips the manifest's calibration flags as unfamiliar (the service's signals).
A variant passes when no caption figure (colour, shape, motion, all three; over all test clips, one-object,
two-object and held-out-combination clips, and the outside set's one- and two-object files) falls below fp32's
beyond noise: a one-sided exact McNemar test per figure on the same clips at --alpha (export/variants.py:
caption_falls; 95% by default), and fp32 takes at least --min-speedup times as long at both batch sizes.
Without --data, synthetic clips are generated at the model's frame shape. `make variant-check` runs it on the
shipped model's `latest` with int8-static.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.graph_contract import ENCODER_V
from core.manifest import LATEST, Manifest, resolve_version_dir
from core.stats import ALPHA

FP32 = "fp32"
DEFAULT_VARIANTS = ("int8-static", "int8", "fp16", "optimized")
ATTRS = ("colour", "shape", "motion", "all")
GENERATED_SEED = 20261204  # generated clips (no --data): a seed no training run uses


# ---------------------------------------------------------------- inputs

def corpus_clips(data: str | None, split: str, n: int | None, cfg: Any, seed: int) -> list[Any]:
    """Clips of a saved corpus's split (the first n), or n generated at the model's frame shape."""
    if data:
        from model.data.corpus import load_split

        return load_split(data, split, n)
    from model.data.synthetic import generate

    corpus = generate(n or 1000, seed=seed, frames=cfg.frames, height=cfg.height, width=cfg.width)
    return [c for s in ("train", "val", "test") for c in corpus.splits[s]][:n]


def as_video(clips: list[Any]) -> np.ndarray:
    return np.stack([c.frames for c in clips]).astype(np.float32) / 255.0


def build_variants(artifacts: Path, version: str | None, variants: list[str], calibration: np.ndarray,
                   sample: np.ndarray, work: Path) -> tuple[Path, dict[str, str]]:
    """A temporary root holding the source version (as FP32) and one derived version per variant."""
    from export.variants import derive_version

    src = resolve_version_dir(artifacts, version)
    root = work / "root"
    root.mkdir()
    shutil.copytree(src, root / src.name)
    (root / LATEST).write_text(src.name + "\n")
    names = {FP32: src.name}
    for variant in variants:
        started = time.perf_counter()
        derive_version(root, src.name, f"{src.name}-{variant}", variant,
                       calibration=calibration if variant == "int8-static" else None, sample_video=sample)
        names[variant] = f"{src.name}-{variant}"
        print(f"  derived {variant} in {time.perf_counter() - started:.1f} s", flush=True)
    return root, names


# ---------------------------------------------------------------- time

def rotated(items: dict[str, Any], r: int) -> list[tuple[str, Any]]:
    """The items in turn, starting one further each round: no graph always runs first (right after another's)."""
    pairs = list(items.items())
    k = r % len(pairs)
    return pairs[k:] + pairs[:k]


def encoder_times(engines: dict[str, Any], video: np.ndarray, batch: int, rounds: int,
                  min_seconds: float = 0.15) -> dict[str, float]:
    """Median ms per call of encoder_v at `batch`, the graphs alternating round by round."""
    x = np.ascontiguousarray(video[:batch])
    sessions = {name: e.graph(ENCODER_V) for name, e in engines.items()}
    for s in sessions.values():  # warm-up, and how many calls fill min_seconds
        for _ in range(3):
            s.run(["mu", "sigma"], {"video": x})
    started = time.perf_counter()
    sessions[FP32].run(["mu", "sigma"], {"video": x})
    calls = max(3, int(min_seconds / max(1e-4, time.perf_counter() - started)))
    per_round: dict[str, list[float]] = {name: [] for name in sessions}
    for r in range(rounds):
        for name, s in rotated(sessions, r):
            started = time.perf_counter()
            for _ in range(calls):
                s.run(["mu", "sigma"], {"video": x})
            per_round[name].append(1000 * (time.perf_counter() - started) / calls)
    return {name: round(statistics.median(ts), 3) for name, ts in per_round.items()}


def model_floors(root: Path, names: dict[str, str], clip_shape: str, rounds: int) -> dict[str, dict[str, float]]:
    """Median over alternating rounds of the model's floor per clip (ms) with each encoder: decode, encoder_v and
    greedy caption, with and without the familiarity rebuild, at batch 1 and 8."""
    from bench.load_floors import model_floor
    from bench.support import clip_shape as parse_clip_shape
    from bench.support import make_clip

    frames, height, width = parse_clip_shape(clip_shape)
    clip = make_clip(frames, height, width)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(rounds):
        for name, version in rotated(names, r):
            runs[name].append(model_floor(clip, root, repeat=30, version=version))
    out: dict[str, dict[str, float]] = {}
    for name, fs in runs.items():
        med = lambda get: round(statistics.median(get(f) for f in fs), 3)  # noqa: E731
        out[name] = {"prepare_ms": med(lambda f: f["prepare_ms"])}
        for b in ("batch_1", "batch_8"):
            out[name][f"encode_ms_{b}"] = med(lambda f: f["encode_ms"][b])
            out[name][f"floor_ms_{b}"] = med(lambda f: f["without_familiarity"][b]["ms"])
            out[name][f"floor_with_familiarity_ms_{b}"] = med(lambda f: f["with_familiarity"][b]["ms"])
    return out


# ---------------------------------------------------------------- captions and familiarity

def engine_outputs(engine: Any, video: np.ndarray, boxes: list[Any] | None = None,
                   batch: int = 32) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Greedy captions, mu and (when the manifest is calibrated) familiarity of every clip, as the service does;
    `boxes`: where each clip's picture lies in its frames (None: they fill them)."""
    calibration = engine.manifest.familiarity
    captions: list[str] = []
    mus, fams = [], []
    for i in range(0, len(video), batch):
        x = video[i: i + batch]
        mu, _ = engine.encode(x, None)
        captions += [engine.vocab.decode(ids) for ids in engine.decode_sentence(mu)]
        mus.append(mu)
        if calibration is not None:
            rebuilt = engine.rebuild_video(mu, x[:, 0])
            where = None if boxes is None else boxes[i: i + batch]
            fams.append(calibration.score(x, rebuilt, where))
    flagged = None
    if calibration is not None:
        flagged = np.concatenate(fams) < calibration.threshold
    return captions, np.concatenate(mus), flagged


Outcomes = dict[str, list[bool]]  # "<where> <group> <attribute>" -> per clip: captioned right or not


def clip_outcomes(captions: list[str], truths: list[dict[str, Any]]) -> dict[str, list[bool]]:
    """Per attribute (and all three) whether each caption names it right, read as `slr eval` reads them
    (model.data.attributes: a two-object caption against the object it names)."""
    from model.data.attributes import ATTRIBUTES, described_object, parse_attributes

    out: dict[str, list[bool]] = {a: [] for a in ATTRS}
    for caption, truth in zip(captions, truths, strict=True):
        parsed = parse_attributes(caption)
        named = described_object(parsed, truth)
        ok = [parsed.get(a) == named.get(a) for a in ATTRIBUTES]
        for a, good in zip(ATTRIBUTES, ok):
            out[a].append(good)
        out["all"].append(all(ok))
    return out


def synthetic_groups(truths: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The test split's groups: all clips, one object, two objects, held-out colour-shape-motion combinations."""
    groups = {"all_clips": list(range(len(truths))),
              "one_object": [i for i, t in enumerate(truths) if len(t.get("objects") or [t]) == 1],
              "two_objects": [i for i, t in enumerate(truths) if len(t.get("objects") or [t]) == 2],
              "unseen_combos": [i for i, t in enumerate(truths) if t.get("unseen_combo")]}
    return {g: idx for g, idx in groups.items() if idx or g == "all_clips"}


def outside_groups(labels: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The outside set as `slr eval --outside` groups it: one-object files (its "overall") and two-object files."""
    groups = {"one_object": [i for i, label in enumerate(labels) if not label.get("objects")],
              "two_objects": [i for i, label in enumerate(labels) if label.get("objects")]}
    return {g: idx for g, idx in groups.items() if idx}


def grouped_outcomes(where: str, captions: list[str], truths: list[dict[str, Any]],
                     groups: dict[str, list[int]]) -> Outcomes:
    per_clip = clip_outcomes(captions, truths)
    return {f"{where} {group} {a}": [per_clip[a][i] for i in idx] for group, idx in groups.items() for a in ATTRS}


def figures(outcomes: Outcomes, where: str) -> dict[str, Any]:
    """Percentages per group and attribute, with each group's clip count, of one side's outcomes."""
    out: dict[str, Any] = {}
    for name, ok in outcomes.items():
        w, group, a = name.split(" ")
        if w == where:
            out.setdefault(group, {})[a] = round(100 * float(np.mean(ok)), 3)
            out[group]["n"] = len(ok)
    return out


def synthetic_figures(captions: list[str], truths: list[dict[str, Any]]) -> dict[str, Any]:
    return figures(grouped_outcomes("synthetic", captions, truths, synthetic_groups(truths)), "synthetic")


def outside_outcomes(engine: Any, labels: list[dict[str, Any]], video: np.ndarray) -> tuple[Outcomes, float | None]:
    """The outside set's per-file outcomes (as `slr eval --outside` scores them) and the share flagged unfamiliar."""
    captions, _, flagged = engine_outputs(engine, video)
    outcomes = grouped_outcomes("outside", captions, labels, outside_groups(labels))
    return outcomes, None if flagged is None else round(100 * float(np.mean(flagged)), 2)


def verdict(outcomes: Outcomes, base: Outcomes, times: dict[str, dict[str, float]], name: str,
            alpha: float = ALPHA, min_speedup: float = 1.1) -> dict[str, Any]:
    """The caption figures that fall below fp32's beyond noise (one-sided exact McNemar on the same clips, p < alpha:
    export/variants.py), the figure closest to a fall, and whether the variant is faster: fp32's time over its at
    least min_speedup at every batch size (identical graphs read 0.92-1.03x apart here)."""
    from export.variants import paired_figures

    paired = paired_figures(base, outcomes)
    closest = min(paired, key=lambda f: (f.p_fall, f.delta_points))
    falls = [f.text() for f in paired if f.falls(alpha)]
    faster = all(t[FP32] / t[name] >= min_speedup for t in times.values())
    return {"falls": falls, "closest": closest.text(), "alpha": alpha, "faster_at_every_batch": faster,
            "passes": faster and not falls}


# ---------------------------------------------------------------- report

def table(report: dict[str, Any]) -> str:
    rows = []
    head = ["variant", "enc B=1 ms", "enc B=8 ms/clip", "speed-up B=1 / B=8", "synthetic c / s / m / all",
            "one obj all", "two obj all", "outside c / s / m / all", "outside two all", "same caption",
            "max |d mu|", "flagged syn / out", "closest to a fall (McNemar)", "passes"]
    t1, t8 = report["time_ms"]["batch_1"], report["time_ms"]["batch_8"]
    for name, r in report["variants"].items():
        syn, out = r["synthetic"], r.get("outside", {})
        f = lambda d: " / ".join(f"{d[a]:.1f}" for a in ATTRS) if d else "-"  # noqa: E731
        rows.append([
            name, f"{t1[name]:.3f}", f"{t8[name] / 8:.3f}",
            f"{t1[FP32] / t1[name]:.2f}x / {t8[FP32] / t8[name]:.2f}x",
            f(syn["all_clips"]), f"{syn.get('one_object', {}).get('all', float('nan')):.1f}",
            f"{syn.get('two_objects', {}).get('all', float('nan')):.1f}",
            f(out.get("one_object")), f"{out['two_objects']['all']:.1f}" if out.get("two_objects") else "-",
            f"{100 * r['same_caption_as_fp32']:.1f}%", f"{r['max_abs_diff_mu']:.3f}",
            f"{r.get('flagged_pct', float('nan')):.1f} / {out.get('flagged_pct', float('nan')):.1f}",
            "-" if name == FP32 else r["verdict"]["closest"],
            "-" if name == FP32 else ("yes" if r["verdict"]["passes"] else "no")])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", type=Path, required=True, help="artifacts root (e.g. models/default)")
    p.add_argument("--version", help="source version (default: the root's latest)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated, of export VARIANTS")
    p.add_argument("--data", help="a saved synthetic corpus: train split calibrates, test split is scored")
    p.add_argument("--outside", help="the outside set's folder (slr data outside)")
    p.add_argument("--clips", type=int, help="test clips to score (default: the whole split; 1000 generated)")
    p.add_argument("--calibration-clips", type=int, default=512)
    p.add_argument("--rounds", type=int, default=9, help="timing rounds (each runs every graph in turn)")
    p.add_argument("--alpha", type=float, default=ALPHA,
                   help="a caption figure falls when a one-sided exact McNemar test against fp32 on the same clips "
                        "gives p below this")
    p.add_argument("--min-speedup", type=float, default=1.1,
                   help="fp32 time / variant time a variant must reach at batch 1 and 8 to count as faster")
    p.add_argument("--floor-clip", metavar="FRAMESxHEIGHTxWIDTH",
                   help="also the model's floor per cache-miss /caption (bench/load.py: model_floor) with each "
                        "encoder, on an H.264 mp4 of this shape, alternating over --floor-rounds rounds")
    p.add_argument("--floor-rounds", type=int, default=4)
    p.add_argument("--json", help="write every figure to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from model.familiarity import clip_boxes
    from service.engine import Engine

    args = parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    cfg = Manifest.read(resolve_version_dir(args.artifacts, args.version)).model
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    test = corpus_clips(args.data, "test", args.clips, cfg, GENERATED_SEED)
    calibration = as_video(corpus_clips(args.data, "train", args.calibration_clips, cfg, GENERATED_SEED + 1))
    video, truths = as_video(test), [c.attributes for c in test]
    outside_files: list[tuple[Path, dict]] = []
    outside_video = None
    if args.outside:
        from model.data.outside import decode_clip_file, load_outside_set

        outside_files = load_outside_set(args.outside)
        outside_video = np.stack([decode_clip_file(p, cfg.frames, cfg.height, cfg.width, cfg.frame_fit)
                                  for p, _ in outside_files])
    print(f"{len(test)} test clips, {len(calibration)} calibration clips, {len(outside_files)} outside files; "
          f"load average {load_before[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="slr-variants-") as tmp:
        root, names = build_variants(args.artifacts, args.version, variants, calibration, video[:256], Path(tmp))
        engines = {name: Engine.load(root, version, device="cpu", intra_op_threads=1)
                   for name, version in names.items()}
        report: dict[str, Any] = {
            "started": started, "source_version": names[FP32], "load_average_before": load_before,
            "cpu_count": os.cpu_count(), "test_clips": len(test), "calibration_clips": len(calibration),
            "outside_files": len(outside_files), "data": args.data, "outside": args.outside,
            "time_ms": {f"batch_{b}": encoder_times(engines, video, b, args.rounds) for b in (1, 8)},
            "variants": {}}
        if args.floor_clip:
            report["model_floor"] = model_floors(root, names, args.floor_clip, args.floor_rounds)
        base_captions, base_mu = None, None
        outcomes: dict[str, Outcomes] = {}
        for name, engine in engines.items():
            captions, mu, flagged = engine_outputs(engine, video, clip_boxes(test))
            if base_captions is None:
                base_captions, base_mu = captions, mu
            same = float(np.mean([a == b for a, b in zip(captions, base_captions)]))
            outcomes[name] = grouped_outcomes("synthetic", captions, truths, synthetic_groups(truths))
            r: dict[str, Any] = {"version": names[name], "precision": engine.manifest.precision,
                                 "synthetic": figures(outcomes[name], "synthetic"), "same_caption_as_fp32": same,
                                 "max_abs_diff_mu": float(np.max(np.abs(mu - base_mu)))}
            if flagged is not None:
                r["flagged_pct"] = round(100 * float(np.mean(flagged)), 2)
            if outside_video is not None:
                found, outside_flagged = outside_outcomes(engine, [label for _, label in outside_files], outside_video)
                outcomes[name].update(found)
                r["outside"] = figures(found, "outside")
                if outside_flagged is not None:
                    r["outside"]["flagged_pct"] = outside_flagged
            report["variants"][name] = r
            print(f"  scored {name}", flush=True)
    for name in names:
        if name != FP32:
            report["variants"][name]["verdict"] = verdict(outcomes[name], outcomes[FP32], report["time_ms"], name,
                                                          args.alpha, args.min_speedup)
    report["load_average_after"] = os.getloadavg()
    print(f"\nsource {names[FP32]}; encoder_v with 1 intra-op thread, medians of {args.rounds} alternating rounds; "
          f"captions greedy (percent); load average {load_before[0]:.2f} before, "
          f"{report['load_average_after'][0]:.2f} after\n")
    print(table(report))
    for name, r in report["variants"].items():
        if name != FP32:
            falls = "; ".join(r["verdict"]["falls"]) or "none"
            print(f"{name}: figures below fp32's beyond noise (one-sided exact McNemar, p < {args.alpha:g}): {falls}; "
                  f"closest: {r['verdict']['closest']}")
    if "model_floor" in report:
        print(f"\nthe model's floor per cache-miss /caption, {args.floor_clip} mp4 (ms per clip, medians of "
              f"{args.floor_rounds} alternating rounds; decode + encoder_v + greedy caption, then + familiarity "
              "rebuild):")
        for name, f in report["model_floor"].items():
            print(f"  {name:<12} decode {f['prepare_ms']:.2f}, encoder_v {f['encode_ms_batch_1']:.3f} / "
                  f"{f['encode_ms_batch_8']:.3f}; floor {f['floor_ms_batch_1']:.2f} / {f['floor_ms_batch_8']:.2f}, "
                  f"with familiarity {f['floor_with_familiarity_ms_batch_1']:.2f} / "
                  f"{f['floor_with_familiarity_ms_batch_8']:.2f} (batch 1 / 8)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
