"""The paper's six tables (Tables 1-6), reproduced on the synthetic benchmark (or on MSVD / MSR-VTT features).

    python -m bench.paper_tables                          # --size small, seeds 0 1 2, METEOR on: docs/results.md
    python -m bench.paper_tables --size tiny --seeds 0 1 --no-meteor --out /tmp/t --work /tmp/t/runs
    python -m bench.paper_tables --plan-only              # time 20 steps of every model, print the plan, stop
    python -m bench.paper_tables --jobs 2                 # two models at once (one process each): same numbers
    python -m bench.paper_tables --data msvd --data-dir data/msvd   # sentence tasks only (feature inputs)

Per seed, on one corpus (the synthetic one is generated once, with --data-seed, and shared by every seed):

- the star model, trained once (model.train.train): full-model learning, a copy of the checkpoint kept (the
  "full-model learning only" ablation row), partial-model learning (the S2S+SLR row), then the optional task
  fine-tuning (video-to-sentence, lr / 100) as a separate row (S2S+SLR + fine-tuning);
- the baselines of model.baselines, one model per task and kind: LSTM (deterministic mapping) and S2S+VAE
  (single-input VAE), for caption, paraphrase, reconstruct and sentence_to_video.

Step budget: every baseline gets full_steps + partial_steps steps on its own task, the same number of steps the
star model gets for all four tasks together (train_baseline's default); the fine-tuning row adds finetune_steps.
Same batch size, learning rate, data and test split for every model. Everything is evaluated by
model.evaluate.evaluate_tasks on the test split; numbers are reported as mean +- std over seeds (sample standard
deviation, ddof = 1; 0 for a single seed). A difference is called real only if the means differ by more than the
sum of the two standard deviations.

Writes <out>/results.md (results_<data>.md for real corpora), <out>/results.json (every number, per seed and
aggregated) and <out>/figures/*.png (input, ground truth and each model's output per task, seed 0's models),
and keeps checkpoints and per-model evaluations under --work (--resume reuses finished models).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEO_TASKS = ("reconstruct", "sentence_to_video")
TEXT_TASKS = ("caption", "paraphrase")
ALL_TASKS = (*TEXT_TASKS, *VIDEO_TASKS)
TASK_TITLES = {"caption": "video-to-sentence", "paraphrase": "sentence-to-sentence",
               "reconstruct": "video-to-video", "sentence_to_video": "sentence-to-video"}
# Rows of every table, in the paper's order (baselines first, the star model last).
MODELS = ("lstm", "vae", "slr_full", "slr", "slr_ft")
LABELS = {"lstm": "LSTM", "vae": "S2S+VAE", "slr_full": "S2S+SLR, full-model learning only",
          "slr": "S2S+SLR", "slr_ft": "S2S+SLR + task fine-tuning (video-to-sentence)"}
STAR_STAGES = ("slr_full", "slr", "slr_ft")  # checkpoints after full, partial and fine-tuning phases


# ---------------------------------------------------------------- sizes

@dataclass(frozen=True)
class Size:
    """One benchmark size: a core.config preset's model sizes with some overrides, corpus size and step counts."""

    preset: str
    clips: int  # synthetic corpus size (all splits)
    full_steps: int
    partial_steps: int
    finetune_steps: int
    batch_size: int
    kl_ramp_steps: int
    timing_steps: int  # steps timed per model for the plan
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    lr: float | None = None
    figure_examples: int = 3
    description: str = ""

    @property
    def baseline_steps(self) -> int:
        return self.full_steps + self.partial_steps


SIZES: dict[str, Size] = {
    # Tests: seconds per seed, learns nothing worth reading.
    "tiny": Size("tiny", clips=48, full_steps=8, partial_steps=6, finetune_steps=4, batch_size=8, kl_ramp_steps=4,
                 timing_steps=3, figure_examples=2, description="tests only: seconds per seed, learns nothing"),
    # The default. Frames at half the paper's size (18 x 32, 8 frames), a narrower net than the demo preset, so
    # that 9 models x 3 seeds fit 30-45 minutes on 2 quiet cores with one torch thread each (see the plan).
    # Full : partial = 1 : 4, the paper's epochs on YouTube2Text (20 FL, 80 PL).
    "small": Size("demo", clips=3000, full_steps=270, partial_steps=1080, finetune_steps=150, batch_size=32,
                  kl_ramp_steps=300, timing_steps=20,
                  model=dict(frames=8, height=18, width=32, embed_dim=48, hidden=128, x_dim=128, latent_dim=64,
                             cnn_channels=16, frame_embed=64, max_words=16),
                  description="the default: 3 seeds in about 30-45 minutes on 2 quiet cores"),
    # The demo preset's model (36 x 64 frames, hidden 256) at its steps: hours for 3 seeds on 2 cores.
    "demo": Size("demo", clips=6000, full_steps=2200, partial_steps=800, finetune_steps=300, batch_size=32,
                 kl_ramp_steps=400, timing_steps=20, description="the demo preset's model and steps: hours on 2 cores"),
}


def make_preset(size: Size, threads: int):
    from core.config import ModelConfig, preset

    p = preset(size.preset)
    p.model = ModelConfig.from_dict({**p.model.to_dict(), **size.model})
    p.train.full_steps, p.train.partial_steps, p.train.finetune_steps = size.full_steps, size.partial_steps, size.finetune_steps
    p.train.batch_size, p.train.kl_ramp_steps = size.batch_size, size.kl_ramp_steps
    if size.lr is not None:
        p.train.lr = size.lr
    p.train.time_budget_s = None  # fixed step counts: the same work for every seed and model
    p.train.eval_every = 0
    p.train.threads = threads
    p.corpus_clips = size.clips
    return p


# ---------------------------------------------------------------- aggregation

def aggregate(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value) of one number over seeds."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("nothing to aggregate")
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(xs), "values": xs}


def aggregate_tree(runs: Sequence[dict[str, Any]], skip: frozenset[str] = frozenset({"samples", "clips"})) -> dict[str, Any]:
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
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[key] = aggregate(vals)
    return out


def is_real(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """A difference is real only if the means differ by more than the sum of the standard deviations."""
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


EQUAL_TOL = 1e-6  # BLEU of a corpus with no n-gram match is ~1e-9, not 0: such means count as equal


def compare(a: dict[str, Any], b: dict[str, Any], higher_is_better: bool) -> str:
    """'better' / 'worse' (real), 'better, within spread' / 'worse, within spread', or 'equal': a versus b."""
    if abs(a["mean"] - b["mean"]) <= EQUAL_TOL * max(1.0, abs(a["mean"]), abs(b["mean"])):
        return "equal"
    better = (a["mean"] > b["mean"]) == higher_is_better
    word = "better" if better else "worse"
    return word if is_real(a, b) else f"{word}, within spread"


# ---------------------------------------------------------------- machine and timing

def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def model_jobs(tasks: Sequence[str]) -> list[tuple[str, str | None]]:
    """(kind, task) of every model trained per seed: the star model once, two baselines per task."""
    return [("star", None)] + [(kind, t) for t in tasks for kind in ("lstm", "vae")]


def time_steps(corpus, p, tasks: Sequence[str], n: int) -> dict[str, dict[str, float]]:
    """Seconds per training step of every model kind, from n timed steps (after 2 warm-up steps) each: wall time
    ("wall") and this process's CPU time ("cpu": with one torch thread, about the wall time on a quiet machine)."""
    import torch

    from core.vocab import Vocab
    from model.data.dataset import BatchStream, tensorize
    from model.star import StarModel
    from model.train import Trainer, model_config_for, phases_for

    vocab = Vocab.build(corpus.all_captions("train"))
    cfg = model_config_for(corpus, p.model, vocab)
    data = tensorize(corpus.splits["train"], vocab, cfg)
    star_phases = {ph.name: ph for ph in phases_for(p.train)}
    timed: dict[str, tuple[Any, Any, bool]] = {f"star/{k}": (ph, p.train, True) for k, ph in star_phases.items()}
    for kind, task in model_jobs(tasks)[1:]:
        phase, q, _ = baseline_setup(p, task, n)
        timed[f"{kind}/{task}"] = (phase, q.train, kind == "vae")
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (phase, tc, vae) in timed.items():
            torch.manual_seed(0)
            gen = torch.Generator().manual_seed(0)
            trainer = Trainer(StarModel(cfg), vocab, tc, Path(tmp), progress=False, vae=vae)
            stream = BatchStream(data, p.train.batch_size, 0)
            for _ in range(2):
                trainer.train_step(stream.next(), phase, gen)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                trainer.train_step(stream.next(), phase, gen)
            out[name] = {"wall": (time.perf_counter() - start) / n, "cpu": (time.process_time() - cpu) / n}
    return out


def time_eval(corpus, p, tasks: Sequence[str], meteor: bool) -> dict[str, float]:
    """Seconds to evaluate an untrained star model on every task over 32 test clips (an upper bound: untrained
    decoders write maximum-length sentences), and one METEOR call (Java start and its tables) when on."""
    from core.vocab import Vocab
    from model.evaluate import caption_scores, evaluate_tasks
    from model.star import StarModel
    from model.train import model_config_for

    vocab = Vocab.build(corpus.all_captions("train"))
    model = StarModel(model_config_for(corpus, p.model, vocab))
    clips = corpus.splits["test"][:32]
    start = time.perf_counter()
    evaluate_tasks(model, vocab, clips, meteor=False, tasks=list(tasks))
    per_clip = (time.perf_counter() - start) / max(1, len(clips))
    out = {"eval_per_clip_s": per_clip, "meteor_call_s": 0.0}
    if meteor:
        start = time.perf_counter()
        caption_scores({"a": ["a red circle moves left"]}, {"a": "a red circle moves left"}, meteor=True)
        out["meteor_call_s"] = time.perf_counter() - start
    return out


def make_plan(size: Size, tasks: Sequence[str], seeds: Sequence[int], n_test: int, steps_s: dict[str, dict[str, float]],
              eval_s: dict[str, float], jobs: int = 1) -> dict[str, Any]:
    """Steps and estimated seconds of every model of one seed, and the total over seeds: from the wall time per
    step measured now, and from the CPU time per step (the estimate for a quiet machine)."""
    rows = [{"model": "star (full-model learning)", "steps": size.full_steps, "timing": steps_s["star/full"]},
            {"model": "star (partial-model learning)", "steps": size.partial_steps, "timing": steps_s["star/partial"]}]
    if size.finetune_steps:
        rows.append({"model": "star (task fine-tuning, caption)", "steps": size.finetune_steps,
                     "timing": steps_s["star/finetune"]})
    for kind, task in model_jobs(tasks)[1:]:
        rows.append({"model": f"{kind} / {task}", "steps": size.baseline_steps, "timing": steps_s[f"{kind}/{task}"]})
    for r in rows:
        t = r.pop("timing")
        r["s_per_step"], r["cpu_s_per_step"] = t["wall"], t["cpu"]
        r["seconds"], r["cpu_seconds"] = r["steps"] * t["wall"], r["steps"] * t["cpu"]
    train_s = sum(r["seconds"] for r in rows)
    train_cpu_s = sum(r["cpu_seconds"] for r in rows)
    # Evaluations per seed: 3 star checkpoints on every task, plus one task per baseline model (2 per task).
    task_evals = len(STAR_STAGES) * len(tasks) + 2 * len(tasks)
    meteor_calls = (len(STAR_STAGES) + 2) * len([t for t in tasks if t in TEXT_TASKS]) if eval_s["meteor_call_s"] else 0
    eval_seed_s = eval_s["eval_per_clip_s"] * n_test * task_evals / max(1, len(tasks)) + meteor_calls * eval_s["meteor_call_s"]
    setup_s = 30.0  # figures, reports, process start
    return {"rows": rows, "train_s_per_seed": train_s, "train_cpu_s_per_seed": train_cpu_s,
            "eval_s_per_seed": eval_seed_s, "seconds_per_seed": train_s + eval_seed_s, "seeds": list(seeds),
            "jobs": jobs,  # processes at once: the sum over models divided by jobs (about; longest first)
            "estimated_total_s": (train_s + eval_seed_s) * len(seeds) / jobs + setup_s,
            "estimated_total_quiet_s": (train_cpu_s + eval_seed_s) * len(seeds) / jobs + setup_s,
            "meteor_calls_per_seed": meteor_calls, "test_clips": n_test, "eval_timing": eval_s}


def print_plan(plan: dict[str, Any], size_name: str) -> None:
    print(f"plan (--size {size_name}), per seed (wall ms per step now; CPU ms per step = a quiet machine's wall):")
    for r in plan["rows"]:
        print(f"  {r['model']:<34} {r['steps']:>6} steps x {1000 * r['s_per_step']:6.1f} ms "
              f"(cpu {1000 * r['cpu_s_per_step']:6.1f} ms) = {r['seconds']:7.1f} s")
    print(f"  {'evaluation (' + str(plan['test_clips']) + ' test clips)':<34} {'':>42} {plan['eval_s_per_seed']:7.1f} s"
          + (f" (incl. {plan['meteor_calls_per_seed']} METEOR calls)" if plan["meteor_calls_per_seed"] else ""))
    total, quiet = plan["estimated_total_s"], plan["estimated_total_quiet_s"]
    jobs = f" with {plan['jobs']} processes at once" if plan["jobs"] > 1 else ""
    print(f"estimated total for {len(plan['seeds'])} seed(s){jobs}: {total:.0f} s = {total / 60:.1f} min at this machine's "
          f"current load; {quiet:.0f} s = {quiet / 60:.1f} min on quiet cores (from CPU time per step)", flush=True)


# ---------------------------------------------------------------- training and evaluation

def _eval_to(path: Path, checkpoint: Path, clips, tasks: Sequence[str], meteor: bool) -> dict[str, Any]:
    from model.evaluate import evaluate_tasks
    from model.star import load_checkpoint

    ck = load_checkpoint(checkpoint)
    res = evaluate_tasks(ck.model, ck.vocab, clips, meteor=meteor, tasks=list(tasks))
    res["checkpoint_sha256"] = ck.sha256
    path.write_text(json.dumps(res, indent=1))
    return res


def run_star(corpus, p, work: Path, seed: int, tasks: Sequence[str], meteor: bool, resume: bool,
             progress: bool) -> dict[str, dict[str, Any]]:
    """Train the star model once; evaluate the checkpoints after full-model learning, after partial-model learning
    and after task fine-tuning. Returns {stage: evaluate_tasks results}."""
    from model.train import CHECKPOINT, phases_for, train

    run = work / "star"
    evals = {stage: work / stage / "eval.json" for stage in STAR_STAGES}
    if resume and all(e.exists() for e in evals.values()):
        return {stage: json.loads(e.read_text()) for stage, e in evals.items()}
    if run.exists():
        shutil.rmtree(run)
    phases = phases_for(p.train)
    source = {"bench": "paper_tables", "corpus": corpus.name}
    stage_of = {"full": "slr_full", "partial": "slr", "finetune": "slr_ft"}
    test = corpus.splits["test"]
    out: dict[str, dict[str, Any]] = {}
    for k, phase in enumerate(phases):
        # One run, resumed after each phase (weights, optimiser, step count): a copy of the checkpoint per phase.
        train(corpus, p, run, seed=seed, progress=progress, resume=k > 0, phases=phases[: k + 1], source=source)
        stage = stage_of[phase.name]
        (work / stage).mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / CHECKPOINT, work / stage / CHECKPOINT)
        out[stage] = _eval_to(evals[stage], work / stage / CHECKPOINT, test, tasks, meteor)
        print(f"  seed {seed} {LABELS[stage]}: " + summary_line(out[stage]), flush=True)
    return out


def total_loss_needs_sentence() -> bool:
    """model.star.total_loss reads losses["sentence"] unconditionally, so model.baselines.train_baseline fails
    (KeyError) for the video-output tasks, whose phase keeps only the video and KL losses. Probed, not assumed,
    so that the workaround below switches itself off once total_loss is fixed."""
    import torch

    from core.config import TrainConfig
    from model.star import total_loss

    try:
        total_loss({"kl": torch.zeros(()), "video": torch.zeros(())}, TrainConfig(), 0.0)
    except KeyError:
        return True
    return False


def baseline_setup(p, task_name: str, steps: int):
    """(phase, preset, workaround?) of one baseline. The workaround, only for video-output tasks while
    total_loss needs a sentence loss: keep the sentence loss in the phase but weigh it 0 (lambda_sentence = 0),
    so the loss and its gradients are exactly those of the video-only baseline."""
    import copy

    from core import channels
    from model.baselines import baseline_phase
    from model.train import Phase

    task = channels.get(task_name)
    phase = baseline_phase(task, steps)
    if "sentence" in task.outputs or not total_loss_needs_sentence():
        return phase, p, False
    q = copy.deepcopy(p)
    q.train.lambda_sentence = 0.0
    return Phase(phase.name, phase.steps, phase.lr_scale, phase.masks, frozenset(task.outputs | {"sentence"})), q, True


def run_baseline(corpus, p, work: Path, seed: int, kind: str, task: str, meteor: bool, resume: bool,
                 progress: bool) -> dict[str, Any]:
    from model.baselines import train_baseline
    from model.train import train

    run = work / f"{kind}_{task}"
    ev = run / "eval.json"
    if resume and ev.exists():
        return json.loads(ev.read_text())
    if run.exists():
        shutil.rmtree(run)
    steps = p.train.full_steps + p.train.partial_steps  # train_baseline's default budget
    phase, q, workaround = baseline_setup(p, task, steps)
    if workaround:
        ckpt = train(corpus, q, run, seed=seed, progress=progress, phases=[phase], vae=(kind == "vae"),
                     source={"baseline": kind, "task": task, "workaround": "lambda_sentence=0"})
    else:
        ckpt = train_baseline(corpus, p, task, kind, run, seed=seed, steps=steps, progress=progress)
    res = _eval_to(ev, ckpt, corpus.splits["test"], [task], meteor)
    res["workaround_lambda_sentence_0"] = workaround
    ev.write_text(json.dumps(res, indent=1))
    print(f"  seed {seed} {LABELS[kind]} / {task}: " + summary_line(res), flush=True)
    return res


def summary_line(res: dict[str, Any]) -> str:
    parts = []
    for t in TEXT_TASKS:
        if t in res:
            key = "METEOR" if "METEOR" in res[t] else "BLEU@4"
            parts.append(f"{t} {key} {100 * res[t][key]:.1f}")
    for t in VIDEO_TASKS:
        if t in res:
            parts.append(f"{t} MSE {res[t]['MSE']:.1f}")
    return ", ".join(parts)


Job = tuple[int, str, str | None]  # (seed, "star" | "lstm" | "vae", task or None for the star model)


def all_jobs(seeds: Sequence[int], tasks: Sequence[str]) -> list[Job]:
    """Every model to train, longest first (the star models: three phases and three evaluations each)."""
    return [(s, "star", None) for s in seeds] + [(s, kind, t) for s in seeds for kind, t in model_jobs(tasks)[1:]]


_WORKER: dict[str, Any] = {}


def _init_worker(setup: dict[str, Any], corpus=None) -> None:
    """Per process: torch threads, the preset and the corpus (loaded again in a spawned worker: deterministic)."""
    import torch

    torch.set_num_threads(setup["threads"])
    p = make_preset(SIZES[setup["size"]], setup["threads"])
    if corpus is None:
        corpus, _ = load_data(argparse.Namespace(**setup["data_args"]), p)
    _WORKER.update(setup=setup, p=p, corpus=corpus)


def _run_job(job: Job) -> tuple[Job, dict[str, Any]]:
    seed, kind, task = job
    st, p, corpus = _WORKER["setup"], _WORKER["p"], _WORKER["corpus"]
    work = Path(st["work"]) / f"seed{seed}"
    if kind == "star":
        res = run_star(corpus, p, work, seed, st["tasks"], st["meteor"], st["resume"], st["progress"])
    else:
        res = run_baseline(corpus, p, work, seed, kind, task, st["meteor"], st["resume"], st["progress"])
    return job, res


def run_jobs(setup: dict[str, Any], corpus, jobs: list[Job], n_procs: int) -> dict[Job, dict[str, Any]]:
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


def collect(results: dict[Job, dict[str, Any]], seeds: Sequence[int], tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{seed: {model row: {task: results}}}: star stages evaluated on every task, a baseline model per task."""
    per_seed: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        rows: dict[str, dict[str, Any]] = {m: {} for m in MODELS}
        for stage, res in results[(seed, "star", None)].items():
            rows[stage] = {t: res[t] for t in tasks if t in res}
        for kind, task in model_jobs(tasks)[1:]:
            res = results[(seed, kind, task)]
            if task in res:
                rows[kind][task] = res[task]
        per_seed[str(seed)] = rows
    return per_seed


# ---------------------------------------------------------------- figures (Pillow only)

FIG_BG, FIG_FG, FIG_LABEL = (255, 255, 255), (20, 20, 20), (90, 90, 90)
LABEL_W, FRAME_H, TEXT_W = 240, 54, 74


def _font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font only
        return ImageFont.load_default()


def _strip(frames: np.ndarray, height: int = FRAME_H):
    """(T, H, W, 3) in [0, 1] or uint8 -> one image of the frames side by side, 2 px apart."""
    from PIL import Image

    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    t, h, w = arr.shape[:3]
    scale = max(1, round(height / h))
    tiles = [Image.fromarray(f).resize((w * scale, h * scale), Image.NEAREST) for f in arr]
    out = Image.new("RGB", (t * (w * scale + 2) - 2, h * scale), (200, 200, 200))
    for i, tile in enumerate(tiles):
        out.paste(tile, (i * (w * scale + 2), 0))
    return out


def compose_figure(title: str, examples: list[list[tuple[str, Any]]], path: Path) -> Path:
    """One PNG: a title, then per example rows of (label, content); content is a frame array or a string."""
    from PIL import Image, ImageDraw

    font, bold = _font(14), _font(16)
    line_h = 18
    blocks = []
    for rows in examples:
        laid = []
        for label, content in rows:
            if isinstance(content, np.ndarray):
                img = _strip(content)
                laid.append((label, img, img.height + 8))
            else:
                lines = textwrap.wrap(str(content), TEXT_W) or ["(empty)"]
                laid.append((label, lines, line_h * len(lines) + 6))
        blocks.append(laid)
    content_w = max([900] + [LABEL_W + r[1].width + 10 for b in blocks for r in b if not isinstance(r[1], list)])
    height = 40 + sum(sum(r[2] for r in b) + 24 for b in blocks)
    canvas = Image.new("RGB", (content_w, height), FIG_BG)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 10), title, fill=FIG_FG, font=bold)
    y = 40
    for k, block in enumerate(blocks):
        draw.line([(0, y), (content_w, y)], fill=(180, 180, 180), width=1)
        y += 8
        for label, content, h in block:
            draw.text((10, y + 2), label, fill=FIG_LABEL, font=font)
            if isinstance(content, list):
                for i, line in enumerate(content):
                    draw.text((LABEL_W, y + 2 + i * line_h), line, fill=FIG_FG, font=font)
            else:
                canvas.paste(content, (LABEL_W, y))
            y += h
        y += 16
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _feature_text(clip) -> str:
    f = np.asarray(clip.features)
    return f"[{clip.clip_id}: feature input, shape {tuple(f.shape)}; no frames in this corpus]"


def make_figures(corpus, work: Path, tasks: Sequence[str], n: int, out_dir: Path, prefix: str) -> dict[str, str]:
    """Figures 3-5 style: for a few test clips, the input, the ground truth and every model's output (seed's models
    under `work`). Returns {task: png path}."""
    from model.evaluate import caption_clips, paraphrase_sentences, reconstruct_clips, sentences_to_video
    from model.star import load_checkpoint
    from model.train import CHECKPOINT

    test = corpus.splits["test"]
    single = [c for c in test if len(c.attributes.get("objects", [None])) == 1]
    clips = (single or test)[:n]
    models: dict[tuple[str, str], Any] = {}

    def ck(row: str, task: str):
        path = work / (row if row in STAR_STAGES else f"{row}_{task}") / CHECKPOINT
        if (row, task) not in models:
            models[(row, task)] = load_checkpoint(path) if path.exists() else None
        return models[(row, task)]

    figures: dict[str, str] = {}
    for task in tasks:
        outputs: dict[str, Any] = {}
        for row in MODELS:
            c = ck(row, task)
            if c is None:
                continue
            if task == "caption":
                outputs[row] = caption_clips(c.model, c.vocab, clips)
            elif task == "paraphrase":
                outputs[row] = paraphrase_sentences(c.model, c.vocab, [x.captions[0] for x in clips])
            elif task == "reconstruct":
                outputs[row] = reconstruct_clips(c.model, clips)
            else:
                outputs[row] = sentences_to_video(c.model, c.vocab, [x.captions[0] for x in clips])
        examples = []
        for i, clip in enumerate(clips):
            video_in = clip.frames if clip.frames is not None else _feature_text(clip)
            if task == "caption":
                rows = [("input video", video_in), ("ground truth", " | ".join(clip.captions[:2]))]
            elif task == "paraphrase":
                rows = [("input sentence", clip.captions[0]), ("ground truth", " | ".join(clip.captions[1:3]) or clip.captions[0])]
            elif task == "reconstruct":
                rows = [("input video", video_in), ("ground truth", clip.frames)]
            else:
                rows = [("input sentence", clip.captions[0]), ("ground truth", clip.frames)]
            rows += [(LABELS[row].replace(" (video-to-sentence)", ""), out[i]) for row, out in outputs.items()]
            examples.append(rows)
        title = f"{TASK_TITLES[task]} ({task}) on {corpus.name} test clips: input, ground truth, each model's output"
        png = compose_figure(title, examples, out_dir / "figures" / f"{prefix}{task}.png")
        figures[task] = str(png)
    return figures


# ---------------------------------------------------------------- report

def cell(agg: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if agg is None:
        return "-"
    return f"{agg['mean'] * scale:.{digits}f} ± {agg['std'] * scale:.{digits}f}"


def get(agg: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    node: Any = agg
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node if isinstance(node, dict) and "mean" in node else None


def text_table(agg: dict[str, Any], task: str, meteor: bool) -> list[str]:
    metrics = (["METEOR"] if meteor else []) + [f"BLEU@{i}" for i in range(1, 5)]
    attrs = [("colour", "colour"), ("shape", "shape"), ("motion", "motion"), ("all three", "all")]
    has_attrs = any(get(agg, m, task, "attributes", "all") for m in MODELS)
    head = ["Model", *metrics] + ([a for a, _ in attrs] if has_attrs else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in MODELS:
        if task not in agg.get(m, {}):
            continue
        cells = [cell(get(agg, m, task, k)) for k in metrics]
        if has_attrs:
            cells += [cell(get(agg, m, task, "attributes", k)) for _, k in attrs]
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    return lines


def unseen_table(agg: dict[str, Any]) -> list[str]:
    lines = ["| Model | colour | shape | motion | all three |", "|---|---|---|---|---|"]
    for m in MODELS:
        if get(agg, m, "caption", "attributes_unseen_combos", "all"):
            lines.append(f"| {LABELS[m]} | " + " | ".join(
                cell(get(agg, m, "caption", "attributes_unseen_combos", k)) for k in ("colour", "shape", "motion", "all")) + " |")
    return lines


def video_table(agg: dict[str, Any], task: str) -> list[str]:
    probe = task == "sentence_to_video" and any(get(agg, m, task, "probe", "colour") for m in MODELS)
    head = ["Model", "MSE (0-255)"] + (["probe colour", "probe motion"] if probe else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in MODELS:
        if task not in agg.get(m, {}):
            continue
        cells = [cell(get(agg, m, task, "MSE"), 1.0)]
        if probe:
            cells += [cell(get(agg, m, task, "probe", k)) for k in ("colour", "motion")]
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    if probe:
        gt = next((get(agg, m, task, "probe_on_ground_truth", "colour") for m in MODELS
                   if get(agg, m, task, "probe_on_ground_truth", "colour")), None)
        gm = next((get(agg, m, task, "probe_on_ground_truth", "motion") for m in MODELS
                   if get(agg, m, task, "probe_on_ground_truth", "motion")), None)
        lines.append(f"| (the probe on the ground-truth clips) | - | {cell(gt)} | {cell(gm)} |")
    return lines


def primary_metrics(task: str, meteor: bool) -> list[tuple[str, tuple[str, ...], bool, float]]:
    """(name, keys, higher is better, display scale) of the numbers the reading compares."""
    if task in TEXT_TASKS:
        out = ([("METEOR", ("METEOR",), True, 100.0)] if meteor else []) + [("BLEU@4", ("BLEU@4",), True, 100.0),
                                                                             ("attributes all three", ("attributes", "all"), True, 100.0)]
        if task == "caption":
            out.append(("attributes all three, unseen combinations", ("attributes_unseen_combos", "all"), True, 100.0))
        return out
    out = [("MSE", ("MSE",), False, 1.0)]
    if task == "sentence_to_video":
        out += [("probe colour", ("probe", "colour"), True, 100.0), ("probe motion", ("probe", "motion"), True, 100.0)]
    return out


def reading(agg: dict[str, Any], tasks: Sequence[str], meteor: bool, n_seeds: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The honest reading: per task and metric, does S2S+SLR > S2S+VAE > LSTM hold beyond the spread?"""
    lines: list[str] = []
    verdicts: list[dict[str, Any]] = []
    if n_seeds < 2:
        lines.append("- One seed only: no spread is known, so every difference below counts as real; read nothing into it.")

    def fmt(a: dict[str, Any], scale: float) -> str:
        return f"{a['mean'] * scale:.1f} ± {a['std'] * scale:.1f}"

    for task in tasks:
        for name, keys, higher, scale in primary_metrics(task, meteor):
            slr, vae, lstm = (get(agg, m, task, *keys) for m in ("slr", "vae", "lstm"))
            if not (slr and vae and lstm):
                continue
            c1, c2, c3 = compare(slr, vae, higher), compare(vae, lstm, higher), compare(slr, lstm, higher)
            if c1 == "better" and c2 == "better":
                verdict = "holds (both steps real)"
            elif c1.startswith("better") and c2.startswith("better"):
                verdict = "holds in the means only (a step is within the spread)"
            else:
                broken = [s for s, c in (("S2S+SLR > S2S+VAE", c1), ("S2S+VAE > LSTM", c2)) if not c.startswith("better")]
                verdict = "does not hold: " + ", ".join(broken) + " fails"
            direction = "higher is better" if higher else "lower is better"
            lines.append(f"- **{task}, {name}** ({direction}): S2S+SLR {fmt(slr, scale)}, S2S+VAE {fmt(vae, scale)}, "
                         f"LSTM {fmt(lstm, scale)}. S2S+SLR vs S2S+VAE: {c1}; S2S+VAE vs LSTM: {c2}; "
                         f"S2S+SLR vs LSTM: {c3}. Ordering S2S+SLR > S2S+VAE > LSTM: **{verdict}**.")
            verdicts.append({"task": task, "metric": name, "slr_vs_vae": c1, "vae_vs_lstm": c2, "slr_vs_lstm": c3,
                             "ordering": verdict})
    ab_lines = []
    for task in tasks:
        for name, keys, higher, scale in primary_metrics(task, meteor):
            full, part = get(agg, "slr_full", task, *keys), get(agg, "slr", task, *keys)
            if full and part:
                c = compare(part, full, higher)
                ab_lines.append(f"- {task}, {name}: with partial-model learning {fmt(part, scale)} vs full-model learning "
                                f"only {fmt(full, scale)}: partial-model learning is **{c}**.")
                verdicts.append({"task": task, "metric": name, "partial_vs_full_only": c})
    ft_lines = []
    for name, keys, higher, scale in primary_metrics("caption", meteor) if "caption" in tasks else []:
        ft, slr = get(agg, "slr_ft", "caption", *keys), get(agg, "slr", "caption", *keys)
        if ft and slr:
            c = compare(ft, slr, higher)
            ft_lines.append(f"- caption, {name}: after fine-tuning {fmt(ft, scale)} vs before {fmt(slr, scale)}: **{c}**.")
            verdicts.append({"task": "caption", "metric": name, "finetune_vs_slr": c})
    held = sum(1 for v in verdicts if v.get("ordering", "").startswith("holds (both"))
    total = sum(1 for v in verdicts if "ordering" in v)
    summary = [f"The paper's ordering S2S+SLR > S2S+VAE > LSTM holds beyond the spread in {held} of {total} "
               "task/metric comparisons below; the rest are listed with the step that fails."]
    out = summary + [""] + lines
    if ab_lines:
        out += ["", "Ablation (the star model after full-model learning only vs after partial-model learning, "
                    "single-input tasks):", ""] + ab_lines
    if ft_lines:
        out += ["", "Task fine-tuning (video-to-sentence, extra steps at lr / 100) vs the S2S+SLR row:", ""] + ft_lines
    return out, verdicts


def ablation_table(agg: dict[str, Any], tasks: Sequence[str], meteor: bool) -> list[str]:
    lines = ["| Task | Metric | full-model learning only | + partial-model learning |", "|---|---|---|---|"]
    for task in tasks:
        for name, keys, _, scale in primary_metrics(task, meteor):
            full, part = get(agg, "slr_full", task, *keys), get(agg, "slr", task, *keys)
            if full or part:
                lines.append(f"| {TASK_TITLES[task]} | {name} | {cell(full, scale)} | {cell(part, scale)} |")
    return lines


def write_report(doc: dict[str, Any], out_dir: Path, name: str) -> Path:
    meta, agg = doc["meta"], doc["aggregate"]
    tasks, meteor = meta["tasks"], meta["meteor"]
    size = meta["size"]
    md: list[str] = [f"# The paper's tables on the {meta['corpus']['name']} benchmark", "",
                     f"Generated by `bench/paper_tables.py`; every number is in `{name}.json`.", "",
                     "## Run", "",
                     f"- Command: `{meta['command']}`",
                     f"- Seeds: {', '.join(str(s) for s in meta['seeds'])} (training seeds; mean ± sample std over seeds)",
                     f"- Corpus: {meta['corpus']['description']}; splits " + ", ".join(
                         f"{k} {v}" for k, v in meta["corpus"]["splits"].items()),
                     f"- Size `{meta['size_name']}` ({size['description']}): core.config preset `{size['preset']}` "
                     f"model {json.dumps(meta['model_config'])}",
                     f"- Steps: star model {size['full_steps']} full-model + {size['partial_steps']} partial-model learning "
                     f"(+ {size['finetune_steps']} task fine-tuning for the fine-tuning row); every baseline "
                     f"{size['full_steps'] + size['partial_steps']} steps on its own task (one model per task and kind); "
                     f"batch {size['batch_size']}, torch threads {meta['threads']} per process, {meta['jobs']} process(es) at once",
                     f"- Wall time: {meta['wall_s']:.0f} s ({meta['wall_s'] / 60:.1f} min); plan estimate "
                     f"{meta['plan']['estimated_total_s']:.0f} s at the load of the start ({meta['plan']['estimated_total_quiet_s']:.0f} s "
                     "on quiet cores, from CPU time per step)",
                     f"- Machine: {meta['machine']['platform']}, {meta['machine']['cpu_count']} CPUs, "
                     f"Python {meta['machine']['python']}, torch {meta['machine']['torch']}, load average at start "
                     f"{meta['machine']['load_average']}",
                     f"- METEOR: {'on' if meteor else 'off (--no-meteor)'}; test split of {meta['test_clips']} clips, greedy decoding",
                     ""]
    if meta.get("video_baseline_workaround"):
        md += ["**Note:** `model.star.total_loss` reads the sentence loss unconditionally, so "
               "`model.baselines.train_baseline` fails for the video-output tasks; their baselines were trained by "
               "`model.train.train` with the same single-task phase plus the sentence loss at weight 0 "
               "(`lambda_sentence = 0`): the same loss and gradients as the video-only baseline.", ""]
    if meta.get("skipped_tasks"):
        md += [f"**Skipped tasks:** {', '.join(meta['skipped_tasks'])}: {meta['skip_reason']}", ""]
    md += ["Rows: **LSTM** and **S2S+VAE** are the baselines of `model/baselines.py` (one model per task, the star "
           "model's own encoder and decoder for that task; LSTM decodes from z = mu with no KL term, S2S+VAE samples z "
           "with the KL term). **S2S+SLR** is the star model after full-model and partial-model learning, one model "
           "for all tasks; *full-model learning only* is its checkpoint before partial-model learning; *+ task "
           "fine-tuning* continues the S2S+SLR model on video-to-sentence only. Text metrics and accuracies are "
           "percentages; MSE per pixel on the 0-255 scale.", ""]
    n = 1
    if "caption" in tasks:
        md += [f"## Table {n}/2 style: video-to-sentence (caption)", ""] + text_table(agg, "caption", meteor) + [""]
        n = 3
        if any(get(agg, m, "caption", "attributes_unseen_combos", "all") for m in MODELS):
            md += ["Caption attribute accuracy on the held-out attribute combinations (test clips whose "
                   "(colour, shape, motion) never occurs in training; `attributes_unseen_combos`):", ""] + unseen_table(agg) + [""]
    if "reconstruct" in tasks:
        md += ["## Table 3 style: video-to-video (reconstruct), MSE", "",
               "The decoder is given the first ground-truth frame, as in the paper.", ""] + video_table(agg, "reconstruct") + [""]
    if "paraphrase" in tasks:
        md += ["## Table 4/5 style: sentence-to-sentence (paraphrase)", "",
               "Input: each test clip's first description; references: its other descriptions.", ""] + text_table(agg, "paraphrase", meteor) + [""]
    if "sentence_to_video" in tasks:
        md += ["## Table 6 style: sentence-to-video, MSE and probe accuracy", "",
               "Input: each test clip's first description; the probe reads the generated clip's colour and motion "
               "(single-object clips only).", ""] + video_table(agg, "sentence_to_video") + [""]
    md += ["## Ablation: full-model learning only vs with partial-model learning", "",
           "The same star-model run, evaluated before and after partial-model learning, on the single-input tasks.", ""]
    md += ablation_table(agg, tasks, meteor) + [""]
    if doc.get("figures"):
        md += ["## Sample outputs (seed %d models)" % meta["seeds"][0], ""]
        for task, png in doc["figures"].items():
            rel = os.path.relpath(png, out_dir)
            md += [f"- {TASK_TITLES[task]}: [{rel}]({rel})", "", f"![{task}]({rel})", ""]
    md += ["## Honest reading", "",
           "Generated from the numbers above. A difference is called real only if the two means differ by more than "
           "the sum of their standard deviations over seeds; otherwise it is *within the spread*. S2S+SLR here is the "
           "row without task fine-tuning (the same step budget as each baseline, but shared by four tasks).", ""]
    md += doc["reading"] + [""]
    md += ["## Plan (measured step times at the start of the run)", "",
           "| model | steps | wall ms / step | CPU ms / step | seconds |", "|---|---|---|---|---|"]
    for r in meta["plan"]["rows"]:
        md.append(f"| {r['model']} | {r['steps']} | {1000 * r['s_per_step']:.1f} | {1000 * r['cpu_s_per_step']:.1f} "
                  f"| {r['seconds']:.0f} |")
    md.append(f"| evaluation per seed | | | | {meta['plan']['eval_s_per_seed']:.0f} |")
    md.append("")
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(md))
    return path


# ---------------------------------------------------------------- main

def load_data(args: argparse.Namespace, p) -> tuple[Any, str]:
    from model.data.corpus import load_corpus

    if args.data == "synthetic":
        if args.data_dir:
            corpus = load_corpus("synthetic", args.data_dir)
            return corpus, f"synthetic corpus from {args.data_dir}"
        clips = args.clips or p.corpus_clips
        corpus = load_corpus("synthetic", None, n_clips=clips, seed=args.data_seed, frames=p.core.frames,
                             height=p.model.height, width=p.model.width)
        return corpus, (f"synthetic, {clips} clips generated with data seed {args.data_seed}, "
                        f"{p.core.frames} frames of {p.model.height} x {p.model.width}")
    if not args.data_dir:
        raise SystemExit(f"--data {args.data} needs --data-dir")
    corpus = load_corpus(args.data, args.data_dir)
    return corpus, f"{args.data} features from {args.data_dir} (feature dim {corpus.meta.get('feature_dim')})"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small",
                    help="tiny: tests (seconds); small: the default, 3 seeds in about 30-45 min on 2 quiet cores; "
                         "demo: the demo preset's model and steps (hours)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    ap.add_argument("--no-meteor", action="store_true", help="skip METEOR (Java; about 10 s per evaluation)")
    ap.add_argument("--data", choices=("synthetic", "msvd", "msrvtt"), default="synthetic")
    ap.add_argument("--data-dir", help="MSVD / MSR-VTT folder (annotations + features/<clip>.npy), or a saved corpus")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the generated synthetic corpus (shared by all seeds)")
    ap.add_argument("--clips", type=int, help="synthetic corpus size (default: the size's)")
    ap.add_argument("--out", default=str(ROOT / "docs"), help="where results(.md|.json) and figures/ go (default docs/)")
    ap.add_argument("--work", help="checkpoints and per-model evaluations (default runs/paper_tables/<data>-<size>)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="models trained at once, one process each (default 1; 2 uses both of 2 cores and about "
                         "halves the wall time; the numbers do not change)")
    ap.add_argument("--resume", action="store_true", help="reuse models whose eval.json already exists under --work")
    ap.add_argument("--plan-only", action="store_true", help="time the steps, print the plan and its estimate, stop")
    ap.add_argument("--progress", action="store_true", help="tqdm bars while training")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.monotonic()
    import torch

    torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    p = make_preset(size, args.threads)
    meteor = not args.no_meteor
    mach = machine()
    corpus, description = load_data(args, p)
    video = corpus.video_input == "frames" and bool(corpus.splits["train"]) and corpus.splits["train"][0].frames is not None
    tasks = list(ALL_TASKS if video else TEXT_TASKS)
    skipped = [t for t in ALL_TASKS if t not in tasks]
    skip_reason = ("the corpus carries feature inputs and no frames, so the model has no video output channel "
                   "(video_output False): the video tasks cannot be trained or scored") if skipped else ""
    if skipped:
        print(f"skipping {', '.join(skipped)}: {skip_reason}", flush=True)
    n_test = len(corpus.splits["test"])
    print(f"corpus: {description}; " + ", ".join(f"{k} {len(v)}" for k, v in corpus.splits.items()), flush=True)
    from core.vocab import Vocab
    from model.train import model_config_for

    model_cfg = model_config_for(corpus, p.model, Vocab.build(corpus.all_captions("train"))).to_dict()
    steps_s = time_steps(corpus, p, tasks, size.timing_steps)
    eval_s = time_eval(corpus, p, tasks, meteor)
    plan = make_plan(size, tasks, args.seeds, n_test, steps_s, eval_s, args.jobs)
    print_plan(plan, args.size)
    if args.plan_only:
        return 0
    work = Path(args.work) if args.work else ROOT / "runs" / "paper_tables" / f"{args.data}-{args.size}"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = {"size": args.size, "threads": args.threads, "work": str(work), "tasks": tasks, "meteor": meteor,
             "resume": args.resume, "progress": args.progress,
             "data_args": {k: getattr(args, k) for k in ("data", "data_dir", "data_seed", "clips")}}
    t0 = time.monotonic()
    results = run_jobs(setup, corpus, all_jobs(args.seeds, tasks), args.jobs)
    print(f"trained and evaluated {len(results)} models in {time.monotonic() - t0:.0f} s", flush=True)
    per_seed = collect(results, args.seeds, tasks)
    agg = {m: aggregate_tree([per_seed[str(s)][m] for s in args.seeds]) for m in MODELS}
    agg = {m: v for m, v in agg.items() if v}
    name = "results" if args.data == "synthetic" else f"results_{args.data}"
    prefix = "" if args.data == "synthetic" else f"{args.data}_"
    figures = make_figures(corpus, work / f"seed{args.seeds[0]}", tasks, size.figure_examples, out_dir, prefix)
    read_lines, verdicts = reading(agg, tasks, meteor, len(args.seeds))
    meta = {
        "command": "python -m bench.paper_tables " + shlex.join(list(argv) if argv is not None else sys.argv[1:]),
        "seeds": list(args.seeds), "size_name": args.size, "size": {**asdict(size), "description": size.description},
        "model_config": model_cfg, "train_config": p.train.to_dict(), "threads": args.threads, "jobs": args.jobs,
        "corpus": {"name": corpus.name, "description": description, "splits": {k: len(v) for k, v in corpus.splits.items()},
                   "meta": corpus.meta},
        "video_baseline_workaround": bool(set(tasks) & set(VIDEO_TASKS)) and total_loss_needs_sentence(),
        "tasks": tasks, "skipped_tasks": skipped, "skip_reason": skip_reason, "meteor": meteor, "test_clips": n_test,
        "machine": mach, "plan": plan, "wall_s": time.monotonic() - start,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - (time.monotonic() - start))),
    }
    doc = {"meta": meta, "aggregate": agg, "per_seed": per_seed, "reading": read_lines, "verdicts": verdicts,
           "figures": figures}
    md = write_report(doc, out_dir, name)
    meta["wall_s"] = time.monotonic() - start
    md = write_report(doc, out_dir, name)
    js = out_dir / f"{name}.json"
    js.write_text(json.dumps(doc, indent=1, default=str))
    print(f"wrote {md}, {js} and {len(figures)} figures in {out_dir / 'figures'} ({meta['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
