"""Training and evaluating every model of the plan, in this process or in spawned worker processes.

Each model is seeded on its own, so the numbers do not depend on how many processes run at once. Checkpoints and
per-model evaluations (eval.json) stay under the work folder; --resume reuses the finished ones."""
from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.paper.plan import (
    LABELS,
    MODELS,
    SIZES,
    STAR_STAGES,
    TEXT_TASKS,
    VIDEO_TASKS,
    DataSource,
    Job,
    baseline_models,
    load_data,
    make_preset,
)

STAGE_OF_PHASE = {"full": "slr_full", "partial": "slr", "finetune": "slr_ft"}


@dataclass(frozen=True)
class JobSetup:
    """What every worker needs to rebuild the preset and the corpus (plain values: it is pickled to spawned workers)."""

    size: str
    threads: int
    work: str
    tasks: tuple[str, ...]
    meteor: bool
    resume: bool
    progress: bool
    source: DataSource


def summary_line(res: dict[str, Any]) -> str:
    """One line of the headline numbers of an evaluation, printed as each model finishes."""
    parts = []
    for t in TEXT_TASKS:
        if t in res:
            key = "METEOR" if "METEOR" in res[t] else "BLEU@4"
            parts.append(f"{t} {key} {100 * res[t][key]:.1f}")
    parts += [f"{t} MSE {res[t]['MSE']:.1f}" for t in VIDEO_TASKS if t in res]
    return ", ".join(parts)


def evaluate_to(path: Path, checkpoint: Path, clips, tasks: Sequence[str], meteor: bool) -> dict[str, Any]:
    """Evaluate a checkpoint on the test clips and keep the results (with the checkpoint's hash) at `path`."""
    from model.evaluate import evaluate_tasks
    from model.star import load_checkpoint

    ck = load_checkpoint(checkpoint)
    res = evaluate_tasks(ck.model, ck.vocab, clips, meteor=meteor, tasks=list(tasks))
    res["checkpoint_sha256"] = ck.sha256
    path.write_text(json.dumps(res, indent=1))
    return res


def _fresh(run: Path) -> None:
    """Start a model's run folder empty: a half-finished run is not resumed, it is redone."""
    if run.exists():
        shutil.rmtree(run)


def run_star(corpus, p, work: Path, seed: int, tasks: Sequence[str], meteor: bool, resume: bool,
             progress: bool) -> dict[str, dict[str, Any]]:
    """Train the star model once; evaluate the checkpoints after full-model learning, after partial-model learning
    and after task fine-tuning. Returns {stage: evaluate_tasks results}."""
    from model.train import CHECKPOINT, phases_for, train

    run = work / "star"
    evals = {stage: work / stage / "eval.json" for stage in STAR_STAGES}
    if resume and all(e.exists() for e in evals.values()):
        return {stage: json.loads(e.read_text()) for stage, e in evals.items()}
    _fresh(run)
    phases = phases_for(p.train)
    source = {"bench": "paper_tables", "corpus": corpus.name}
    out: dict[str, dict[str, Any]] = {}
    for k, phase in enumerate(phases):
        # One run, resumed after each phase (weights, optimiser, step count): a copy of the checkpoint per phase.
        train(corpus, p, run, seed=seed, progress=progress, resume=k > 0, phases=phases[: k + 1], source=source)
        stage = STAGE_OF_PHASE[phase.name]
        (work / stage).mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / CHECKPOINT, work / stage / CHECKPOINT)
        out[stage] = evaluate_to(evals[stage], work / stage / CHECKPOINT, corpus.splits["test"], tasks, meteor)
        print(f"  seed {seed} {LABELS[stage]}: " + summary_line(out[stage]), flush=True)
    return out


def run_baseline(corpus, p, work: Path, seed: int, kind: str, task: str, meteor: bool, resume: bool,
                 progress: bool) -> dict[str, Any]:
    """Train one baseline on its one task (train_baseline's default budget: full + partial steps) and evaluate it."""
    from model.baselines import train_baseline

    run = work / f"{kind}_{task}"
    ev = run / "eval.json"
    if resume and ev.exists():
        return json.loads(ev.read_text())
    _fresh(run)
    ckpt = train_baseline(corpus, p, task, kind, run, seed=seed, progress=progress)
    res = evaluate_to(ev, ckpt, corpus.splits["test"], [task], meteor)
    print(f"  seed {seed} {LABELS[kind]} / {task}: " + summary_line(res), flush=True)
    return res


_WORKER: dict[str, Any] = {}  # per process: the setup, the preset and the corpus, made once by _init_worker


def _init_worker(setup: JobSetup, corpus=None) -> None:
    """Per process: torch threads, the preset and the corpus (loaded again in a spawned worker: deterministic)."""
    import torch

    torch.set_num_threads(setup.threads)
    p = make_preset(SIZES[setup.size], setup.threads)
    if corpus is None:
        corpus, _ = load_data(setup.source, p)
    _WORKER.update(setup=setup, p=p, corpus=corpus)


def _run_job(job: Job) -> tuple[Job, dict[str, Any]]:
    seed, kind, task = job
    st, p, corpus = _WORKER["setup"], _WORKER["p"], _WORKER["corpus"]
    work = Path(st.work) / f"seed{seed}"
    if kind == "star":
        return job, run_star(corpus, p, work, seed, st.tasks, st.meteor, st.resume, st.progress)
    return job, run_baseline(corpus, p, work, seed, kind, task, st.meteor, st.resume, st.progress)


def run_jobs(setup: JobSetup, corpus, jobs: list[Job], n_procs: int) -> dict[Job, dict[str, Any]]:
    """Train and evaluate every model, in this process or in n_procs spawned processes (one torch thread each by
    default). Each model is seeded on its own, so the numbers do not depend on n_procs."""
    if n_procs <= 1:
        _init_worker(setup, corpus)
        return dict(_run_job(j) for j in jobs)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that has torch's thread pools
    with ProcessPoolExecutor(n_procs, mp_context=ctx, initializer=_init_worker, initargs=(setup,)) as ex:
        return dict(ex.map(_run_job, jobs))


def collect(results: dict[Job, dict[str, Any]], seeds: Sequence[int],
            tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{seed: {model row: {task: results}}}: star stages evaluated on every task, a baseline model per task."""
    per_seed: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        rows: dict[str, dict[str, Any]] = {m: {} for m in MODELS}
        for stage, res in results[(seed, "star", None)].items():
            rows[stage] = {t: res[t] for t in tasks if t in res}
        for kind, task in baseline_models(tasks):
            res = results[(seed, kind, task)]
            if task in res:
                rows[kind][task] = res[task]
        per_seed[str(seed)] = rows
    return per_seed
