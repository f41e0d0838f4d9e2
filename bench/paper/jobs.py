"""Training and evaluating every model of the plan, in this process or in spawned worker processes.

Each model is seeded on its own, so the numbers do not depend on how many processes run at once. Checkpoints,
per-model evaluations (eval.json) and what each training did (run_info.json: steps, the step whose weights were
kept, the validation curve) stay under the work folder; --resume reuses the finished ones."""
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
    STAR_RUNS,
    TEXT_TASKS,
    VIDEO_TASKS,
    DataSource,
    Job,
    load_data,
    make_preset,
    star_preset,
)

RUN_INFO = "run_info.json"  # beside each row's eval.json: its steps and validation curve


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
    from model.checkpoint import load_checkpoint
    from model.evaluate import evaluate_tasks

    ck = load_checkpoint(checkpoint)
    res = evaluate_tasks(ck.model, ck.vocab, clips, meteor=meteor, tasks=list(tasks))
    res["checkpoint_sha256"] = ck.sha256
    path.write_text(json.dumps(res, indent=1))
    return res


def read_log(run: Path) -> list[dict[str, Any]]:
    """The records of a run's train_log.jsonl (model.train.Trainer.log)."""
    path = run / "train_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def run_info(records: list[dict[str, Any]], phases: Sequence[str]) -> dict[str, Any]:
    """What a row's training did, from its run's log: the validation curve over `phases` (every task's figures per
    validation), the steps run to the end of the last of them, the step whose weights it kept (a converging phase)
    and whether it stopped before its cap."""
    summaries = {r["summary"]["phase"]: r["summary"] for r in records if "summary" in r}
    last = summaries[phases[-1]]
    curve = [{"step": r["step"], "phase": r["phase"], "figure": r["val_figure"], "tasks": r["val"]}
             for r in records if "val" in r and r["phase"] in phases]
    info = {"phases": list(phases), "steps": last.get("global_step", last["steps"]), "curve": curve,
            "train_seconds": sum(summaries[ph]["seconds"] for ph in phases if ph in summaries)}
    if "best_step" in last:
        info.update(best_step=last["best_step"], best_figure=last["best_figure"], stopped_early=last["stopped_early"])
    return info


def _fresh(run: Path) -> None:
    """Start a model's run folder empty: a half-finished run is not resumed, it is redone."""
    if run.exists():
        shutil.rmtree(run)


def _finished(work: Path, rows: Sequence[str]) -> dict[str, dict[str, Any]] | None:
    """{row: {"eval", "run"}} of rows whose evaluation and run info are both kept (--resume), else None."""
    files = [(row, work / row / "eval.json", work / row / RUN_INFO) for row in rows]
    if not all(e.exists() and i.exists() for _, e, i in files):
        return None
    return {row: {"eval": json.loads(e.read_text()), "run": json.loads(i.read_text())} for row, e, i in files}


def _keep(work: Path, row: str, checkpoint: Path, info: dict[str, Any], clips, tasks: Sequence[str],
          meteor: bool) -> dict[str, Any]:
    """A row's checkpoint copied to its own folder, evaluated, and its run info written beside."""
    folder = work / row
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(checkpoint, folder / checkpoint.name)
    (folder / RUN_INFO).write_text(json.dumps(info, indent=1))
    return {"eval": evaluate_to(folder / "eval.json", folder / checkpoint.name, clips, tasks, meteor), "run": info}


def run_star(corpus, p, work: Path, seed: int, name: str, st: JobSetup) -> dict[str, dict[str, Any]]:
    """One star-model run ("star": full-model learning, partial-model learning to convergence, task fine-tuning;
    "star_noalign": the same without the alignment term, stopping after partial-model learning). The checkpoint
    after each phase of STAR_RUNS[name] is copied and evaluated. Returns {row: {"eval", "run"}}."""
    from model.phases import phases_for
    from model.train import CHECKPOINT, train

    stages = STAR_RUNS[name]
    rows = [r for r in stages.values() if r]
    if st.resume and (done := _finished(work, rows)):
        return done
    run = work / name
    _fresh(run)
    phases = [ph for ph in phases_for(star_preset(p, st.tasks, name == "star").train) if ph.name in stages]
    source = {"bench": "paper_tables", "corpus": corpus.name, "run": name}
    out: dict[str, dict[str, Any]] = {}
    for k, phase in enumerate(phases):
        # One run, resumed after each phase (weights, optimiser, step count): a copy of the checkpoint per phase.
        train(corpus, star_preset(p, st.tasks, name == "star"), run, seed=seed, progress=st.progress, resume=k > 0,
              phases=phases[: k + 1], source=source)
        row = stages[phase.name]
        if row is None:
            continue
        info = run_info(read_log(run), [ph.name for ph in phases[: k + 1]])
        out[row] = _keep(work, row, run / CHECKPOINT, info, corpus.splits["test"], st.tasks, st.meteor)
        print(f"  seed {seed} {LABELS[row]} ({info['steps']} steps): " + summary_line(out[row]["eval"]), flush=True)
    return out


def run_baseline(corpus, p, work: Path, seed: int, kind: str, task: str, st: JobSetup) -> dict[str, dict[str, Any]]:
    """Train one baseline on its one task (to convergence, or train_baseline's cap: full + partial steps) and
    evaluate it. Returns {"<kind>/<task>": {"eval", "run"}}."""
    from model.baselines import train_baseline

    key, name = f"{kind}/{task}", f"{kind}_{task}"
    run = work / name
    if st.resume and (done := _finished_baseline(run)):
        return {key: done}
    _fresh(run)
    ckpt = train_baseline(corpus, p, task, kind, run, seed=seed, progress=st.progress)
    info = run_info(read_log(run), [task])
    (run / RUN_INFO).write_text(json.dumps(info, indent=1))
    res = evaluate_to(run / "eval.json", ckpt, corpus.splits["test"], [task], st.meteor)
    print(f"  seed {seed} {LABELS[kind]} / {task} ({info['steps']} steps): " + summary_line(res), flush=True)
    return {key: {"eval": res, "run": info}}


def _finished_baseline(run: Path) -> dict[str, Any] | None:
    ev, info = run / "eval.json", run / RUN_INFO
    if ev.exists() and info.exists():
        return {"eval": json.loads(ev.read_text()), "run": json.loads(info.read_text())}
    return None


_WORKER: dict[str, Any] = {}  # per process: the setup, the preset and the corpus, made once by _init_worker


def _init_worker(setup: JobSetup, corpus=None) -> None:
    """Per process: torch threads, the preset and the corpus (loaded again in a spawned worker: deterministic)."""
    import torch

    torch.set_num_threads(setup.threads)
    p = make_preset(SIZES[setup.size], setup.threads)
    if corpus is None:
        corpus, _ = load_data(setup.source, p)
    _WORKER.update(setup=setup, p=p, corpus=corpus)


def _run_job(job: Job) -> tuple[Job, dict[str, dict[str, Any]]]:
    seed, kind, task = job
    st, p, corpus = _WORKER["setup"], _WORKER["p"], _WORKER["corpus"]
    work = Path(st.work) / f"seed{seed}"
    if kind in STAR_RUNS:
        return job, run_star(corpus, p, work, seed, kind, st)
    return job, run_baseline(corpus, p, work, seed, kind, task, st)


def run_jobs(setup: JobSetup, corpus, jobs: list[Job], n_procs: int) -> dict[Job, dict[str, dict[str, Any]]]:
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


def collect(results: dict[Job, dict[str, dict[str, Any]]], seeds: Sequence[int],
            tasks: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """({seed: {model row: {task: results}}}, {seed: {run key: run info}}): star rows evaluated on every task, a
    baseline model per task; run keys are the star rows and "<kind>/<task>"."""
    per_seed: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        rows: dict[str, dict[str, Any]] = {m: {} for m in MODELS}
        seed_runs: dict[str, Any] = {}
        for (s, kind, task), out in results.items():
            if s != seed:
                continue
            for key, got in out.items():
                seed_runs[key] = got["run"]
                if kind in STAR_RUNS:
                    rows[key] = {t: got["eval"][t] for t in tasks if t in got["eval"]}
                elif task in got["eval"]:
                    rows[kind][task] = got["eval"][task]
        per_seed[str(seed)], runs[str(seed)] = rows, seed_runs
    return per_seed, runs
