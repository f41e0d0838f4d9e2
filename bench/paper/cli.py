"""The paper's six tables (Tables 1-6), reproduced on the synthetic benchmark (or on MSVD / MSR-VTT features).

    python -m bench.paper_tables --jobs 2                 # --size recipe, seeds 0 1 2, METEOR on: docs/results.md
    python -m bench.paper_tables --size tiny --seeds 0 1 --no-meteor --out /tmp/t --work /tmp/t/runs
    python -m bench.paper_tables --plan-only              # time 20 steps of every model, print the plan, stop
    python -m bench.paper_tables --data msvd --data-dir data/msvd   # sentence tasks only (features or captions)

Per seed, on one corpus (the synthetic one is generated once, with --data-seed, and shared by every seed), with
today's recipe (the size's core.config preset: the alignment term, the foreground loss, the drawing decoder):

- the star model, trained once (model.train.train): full-model learning, a copy of the checkpoint kept (the
  "full-model learning only" ablation row), partial-model learning to convergence (the S2S+SLR row), then the
  optional task fine-tuning (video-to-sentence, lr / 100) as a separate row (S2S+SLR + fine-tuning);
- the star model again without the alignment term (lambda_align 0), full- and partial-model learning: the
  "no alignment term" row;
- the baselines of model.baselines, one model per task and kind: LSTM (deterministic mapping) and S2S+VAE
  (single-input VAE), for caption, paraphrase, reconstruct and sentence_to_video, each to convergence.

Convergence: every model is validated every eval_every steps (model.train: the figures of
model.evaluate.validation_figures); partial-model learning and every baseline stop when the figure has not
improved for `patience` validations (after min_steps), or at the cap, and keep their best validation's weights.
Caps: every baseline full_steps + partial_steps on its own task, what the star model may spend on all four tasks.
Same batch size, learning rate, data and test split for every model. Everything is evaluated by
model.evaluate.evaluate_tasks on the test split; numbers are reported as mean +- std over seeds (sample standard
deviation, ddof = 1; 0 for a single seed). A difference is called real only if the means differ by more than the
sum of the two standard deviations.

Writes <out>/results.md (results_<data>.md for real corpora), <out>/results.json (every number, per seed and
aggregated; every model's steps and validation curve), <out>/figures/*.png (input, ground truth and each model's
output per task, seed 0's models) and <out>/figures/learning_curves.png, and keeps checkpoints, per-model
evaluations and run info under --work (--resume reuses finished models).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.paper.figures import learning_curves_figure, make_figures
from bench.paper.jobs import JobSetup, collect, run_jobs
from bench.paper.plan import (
    ALL_TASKS,
    MODELS,
    SIZES,
    DataSource,
    all_jobs,
    load_data,
    make_plan,
    make_preset,
    print_plan,
    skip_reason,
    tasks_for,
)
from bench.paper.reading import reading
from bench.paper.report import write_report
from bench.paper.stats import aggregate_runs, aggregate_tree, mean_curves
from bench.paper.timing import machine, time_eval, time_steps, time_validation

ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="recipe",
                    help="tiny: tests (seconds); recipe: the default, today's recipe to convergence, 3 seeds in at "
                         "most about 60-75 min on 2 cores with --jobs 2; demo: the demo preset's model and steps as "
                         "caps (hours)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    ap.add_argument("--no-meteor", action="store_true", help="skip METEOR (Java; about 10 s per evaluation)")
    ap.add_argument("--data", choices=("synthetic", "msvd", "msrvtt"), default="synthetic")
    ap.add_argument("--data-dir", help="MSVD / MSR-VTT folder (annotations + features/<clip>.npy), or a saved corpus")
    ap.add_argument("--data-seed", type=int, default=0,
                    help="seed of the generated synthetic corpus (shared by all seeds)")
    ap.add_argument("--clips", type=int, help="synthetic corpus size (default: the size's)")
    ap.add_argument("--out", default=str(ROOT / "docs"),
                    help="where results(.md|.json) and figures/ go (default docs/)")
    ap.add_argument("--work", help="checkpoints and per-model evaluations (default runs/paper_tables/<data>-<size>)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="models trained at once, one process each (default 1; 2 uses both of 2 cores and about "
                         "halves the wall time; the numbers do not change)")
    ap.add_argument("--resume", action="store_true", help="reuse models whose eval.json already exists under --work")
    ap.add_argument("--plan-only", action="store_true", help="time the steps, print the plan and its estimate, stop")
    ap.add_argument("--progress", action="store_true", help="tqdm bars while training")
    return ap


def aggregate_models(per_seed: dict[str, dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """{model row: mean ± std tree over seeds}, rows without any number left out."""
    agg = {m: aggregate_tree([per_seed[str(s)][m] for s in seeds]) for m in MODELS}
    return {m: v for m, v in agg.items() if v}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.monotonic()
    import torch

    torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    p = make_preset(size, args.threads)
    meteor = not args.no_meteor
    mach = machine()  # before training: the load average at the start
    source = DataSource(args.data, args.data_dir, args.data_seed, args.clips)
    corpus, description = load_data(source, p)
    tasks = tasks_for(corpus)
    skipped = [t for t in ALL_TASKS if t not in tasks]
    if skipped:
        print(f"skipping {', '.join(skipped)}: {skip_reason(corpus)}", flush=True)
    n_test = len(corpus.splits["test"])
    print(f"corpus: {description}; " + ", ".join(f"{k} {len(v)}" for k, v in corpus.splits.items()), flush=True)
    from core.vocab import Vocab
    from model.train import model_config_for

    model_cfg = model_config_for(corpus, p.model, Vocab.build(corpus.all_captions("train"))).to_dict()
    steps_s = time_steps(corpus, p, tasks, size.timing_steps)
    eval_s = time_eval(corpus, p, tasks, meteor)
    val_s = time_validation(corpus, p, tasks)
    plan = make_plan(size, tasks, args.seeds, n_test, steps_s, eval_s, val_s, args.jobs)
    print_plan(plan, args.size)
    if args.plan_only:
        return 0
    work = Path(args.work) if args.work else ROOT / "runs" / "paper_tables" / f"{args.data}-{args.size}"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = JobSetup(args.size, args.threads, str(work), tuple(tasks), meteor, args.resume, args.progress, source)
    t0 = time.monotonic()
    results = run_jobs(setup, corpus, all_jobs(args.seeds, tasks), args.jobs)
    print(f"trained and evaluated {len(results)} models in {time.monotonic() - t0:.0f} s", flush=True)
    per_seed, runs_per_seed = collect(results, args.seeds, tasks)
    agg = aggregate_models(per_seed, args.seeds)
    runs, curves = aggregate_runs(runs_per_seed, args.seeds), mean_curves(runs_per_seed, args.seeds)
    name = "results" if args.data == "synthetic" else f"results_{args.data}"
    prefix = "" if args.data == "synthetic" else f"{args.data}_"
    figures = make_figures(corpus, work / f"seed{args.seeds[0]}", tasks, size.figure_examples, out_dir, prefix)
    attributes = bool(corpus.splits["val"] and corpus.splits["val"][0].attributes)
    curves_png = learning_curves_figure(curves, tasks, size.full_steps,
                                        out_dir / "figures" / f"{prefix}learning_curves.png", not attributes)
    read_lines, verdicts = reading(agg, tasks, meteor, len(args.seeds), runs)
    meta = {
        "command": "python -m bench.paper_tables " + shlex.join(list(argv) if argv is not None else sys.argv[1:]),
        "seeds": list(args.seeds), "size_name": args.size, "size": asdict(size),
        "model_config": model_cfg, "train_config": p.train.to_dict(), "threads": args.threads, "jobs": args.jobs,
        "corpus": {"name": corpus.name, "description": description,
                   "splits": {k: len(v) for k, v in corpus.splits.items()}, "meta": corpus.meta},
        "tasks": tasks, "skipped_tasks": skipped, "skip_reason": skip_reason(corpus) if skipped else "",
        "meteor": meteor,
        "test_clips": n_test, "machine": mach, "plan": plan, "wall_s": time.monotonic() - start,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - (time.monotonic() - start))),
    }
    doc = {"meta": meta, "aggregate": agg, "per_seed": per_seed, "runs": runs, "curves": curves,
           "runs_per_seed": runs_per_seed, "reading": read_lines, "verdicts": verdicts, "figures": figures,
           "learning_curves": str(curves_png) if curves_png else None}
    md = write_report(doc, out_dir, name)
    js = out_dir / f"{name}.json"
    js.write_text(json.dumps(doc, indent=1, default=str))
    n_fig = len(figures) + bool(curves_png)
    print(f"wrote {md}, {js} and {n_fig} figures in {out_dir / 'figures'} ({meta['wall_s']:.0f} s)")
    return 0
