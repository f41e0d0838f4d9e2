"""What one run trains: the tables' rows and tasks, the benchmark sizes, the corpus, every (seed, model) job, and
the time estimate printed before anything is trained. Torch-free (model.* is imported inside functions)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

VIDEO_TASKS = ("reconstruct", "sentence_to_video")
TEXT_TASKS = ("caption", "paraphrase")
ALL_TASKS = (*TEXT_TASKS, *VIDEO_TASKS)
TASK_TITLES = {"caption": "video-to-sentence", "paraphrase": "sentence-to-sentence",
               "reconstruct": "video-to-video", "sentence_to_video": "sentence-to-video"}
# Rows of every table, in the paper's order (baselines first, the star model last).
MODELS = ("lstm", "vae", "slr_full", "slr", "slr_noalign", "slr_ft")
LABELS = {"lstm": "LSTM", "vae": "S2S+VAE", "slr_full": "S2S+SLR, full-model learning only",
          "slr": "S2S+SLR", "slr_noalign": "S2S+SLR, no alignment term (lambda_align 0)",
          "slr_ft": "S2S+SLR + task fine-tuning (video-to-sentence)"}
STAR_STAGES = ("slr_full", "slr", "slr_ft")  # checkpoints of the star run after full, partial and fine-tuning phases
STAR_ROWS = (*STAR_STAGES, "slr_noalign")  # every star-model row (the last one its own run, without alignment)
# Star-model runs: {phase: the row whose checkpoint it leaves}; the run without alignment stops after partial.
STAR_RUNS = {"star": {"full": "slr_full", "partial": "slr", "finetune": "slr_ft"},
             "star_noalign": {"full": None, "partial": "slr_noalign"}}
BASELINE_KINDS = ("lstm", "vae")
SKIP_REASON = ("the corpus carries feature inputs and no frames, so the model has no video output channel "
               "(video_output False): the video tasks cannot be trained or scored")
SENTENCES_ONLY_REASON = ("the caption files come without video features (no features folder): only the sentence "
                         "tasks' sentence-to-sentence can be trained and scored; a constant stands in for the video, "
                         "so the star model's video channel carries nothing here")

Job = tuple[int, str, str | None]  # (seed, "star" | "star_noalign" | "lstm" | "vae", task or None for the star model)


@dataclass(frozen=True)
class Size:
    """One benchmark size: a core.config preset's model sizes with some overrides, corpus size, step counts (caps
    where patience is set) and the validation that decides when a model has converged."""

    preset: str
    clips: int  # synthetic corpus size (all splits)
    full_steps: int  # full-model learning: runs all its steps
    partial_steps: int  # partial-model learning: the cap (it stops earlier once converged)
    finetune_steps: int
    batch_size: int
    kl_ramp_steps: int
    timing_steps: int  # steps timed per model for the plan
    eval_every: int = 0  # validate every N steps (0: no validation, no early stopping, no learning curves)
    patience: int = 0  # validations without improvement before a converging phase stops (0: never)
    min_steps: int = 0  # a converging phase's steps before it may stop
    val_clips: int = 256  # validation clips per validation
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides
    figure_examples: int = 3
    description: str = ""

    @property
    def baseline_steps(self) -> int:
        """A baseline's cap on its one task: what the star model gets for all four tasks together."""
        return self.full_steps + self.partial_steps


# The recipe's model: the demo preset's training recipe and frame size (18 x 32, 8 frames, the drawing decoder,
# letterboxing) at narrower widths, so that every model of 3 seeds reaches its cap in about 60-75 minutes on 2
# cores with --jobs 2 (the plan prints the estimate; early stopping usually ends sooner).
RECIPE_MODEL = dict(frames=8, height=18, width=32, embed_dim=48, hidden=128, x_dim=128, latent_dim=64,
                    cnn_channels=16, frame_embed=64, max_words=16, draw_channels=8)

SIZES: dict[str, Size] = {
    # Tests: seconds per seed, learns nothing worth reading; validates every 2 steps so that early stopping runs.
    "tiny": Size("tiny", clips=48, full_steps=6, partial_steps=12, finetune_steps=4, batch_size=8, kl_ramp_steps=4,
                 timing_steps=3, eval_every=2, patience=2, min_steps=4, val_clips=16, figure_examples=2,
                 train=dict(lambda_align=0.1),  # the preset has none: the run without it must differ
                 description="tests only: seconds per seed, learns nothing"),
    # The default: today's recipe (core.config preset "demo": lambda_align 0.1, foreground x3, the drawing decoder,
    # partial-model learning at the full learning rate) trained to convergence. Full : partial = 1 : 4 of the cap,
    # the paper's epochs on YouTube2Text (20 FL, 80 PL); partial-model learning and every baseline stop after
    # `patience` validations without improvement, and keep their best validation's weights.
    # Caps tuned on the plan: 400 + 1,600 estimated 74.6 min for 3 seeds with --jobs 2; 360 + 1,440, 67.9 min.
    "recipe": Size("demo", clips=3000, full_steps=360, partial_steps=1440, finetune_steps=150, batch_size=32,
                   kl_ramp_steps=400, timing_steps=20, eval_every=100, patience=5, min_steps=500, val_clips=128,
                   model=RECIPE_MODEL,
                   description="the default: today's recipe to convergence, 3 seeds in at most about 60-75 minutes "
                               "on 2 cores with --jobs 2"),
    # The demo preset's own model and steps as caps: hours for 3 seeds on 2 cores.
    "demo": Size("demo", clips=6000, full_steps=400, partial_steps=3800, finetune_steps=300, batch_size=32,
                 kl_ramp_steps=400, timing_steps=20, eval_every=200, patience=5, min_steps=1000,
                 description="the demo preset's model and steps as caps: hours on 2 cores"),
}


@dataclass(frozen=True)
class DataSource:
    """Where the corpus comes from: plain values, so that a spawned worker can load the same corpus again."""

    data: str = "synthetic"  # synthetic | msvd | msrvtt
    data_dir: str | None = None
    data_seed: int = 0
    clips: int | None = None  # synthetic corpus size; None: the size's


def make_preset(size: Size, threads: int):
    """The core.config preset of `size`, with its step counts and validation (no wall-time budget)."""
    from core.config import ModelConfig, TrainConfig, preset

    p = preset(size.preset)
    p.model = ModelConfig.from_dict({**p.model.to_dict(), **size.model})
    p.train = TrainConfig.from_dict({**p.train.to_dict(), **size.train})
    p.train.full_steps, p.train.partial_steps = size.full_steps, size.partial_steps
    p.train.finetune_steps = size.finetune_steps
    # The tables' ablation is the paper's three stages (full, partial, caption fine-tuning); the demo preset's
    # video-only fine-tuning is this project's addition, measured in the README, and would be a fourth stage.
    p.train.finetune_video_steps = 0
    p.train.batch_size, p.train.kl_ramp_steps = size.batch_size, size.kl_ramp_steps
    p.train.time_budget_s = None  # step counts: the same work for every seed and model
    p.train.eval_every, p.train.patience = size.eval_every, size.patience
    p.train.min_steps, p.train.val_clips = size.min_steps, size.val_clips
    p.train.threads = threads
    p.corpus_clips = size.clips
    return p


def star_preset(p, tasks: Sequence[str], align: bool):
    """The preset of a star-model run: validated on every task of the corpus; `align` False: lambda_align 0 (and no
    fine-tuning: only its partial-model checkpoint is evaluated)."""
    from dataclasses import replace

    from core.config import TrainConfig

    over: dict[str, Any] = {"val_tasks": tuple(tasks)}
    if not align:
        over.update(lambda_align=0.0, finetune_steps=0)
    return replace(p, train=TrainConfig.from_dict({**p.train.to_dict(), **over}))


def load_data(source: DataSource, p) -> tuple[Any, str]:
    """(corpus, one-line description). A synthetic corpus is generated at the preset's frame size."""
    from model.data.load import load_corpus

    if source.data == "synthetic":
        if source.data_dir:
            return load_corpus("synthetic", source.data_dir), f"synthetic corpus from {source.data_dir}"
        clips = source.clips or p.corpus_clips
        corpus = load_corpus("synthetic", None, n_clips=clips, seed=source.data_seed, frames=p.model.frames,
                             height=p.model.height, width=p.model.width)
        return corpus, (f"synthetic, {clips} clips generated with data seed {source.data_seed}, "
                        f"{p.model.frames} frames of {p.model.height} x {p.model.width}")
    if not source.data_dir:
        raise SystemExit(f"--data {source.data} needs --data-dir")
    corpus = load_corpus(source.data, source.data_dir)
    if corpus.meta.get("sentences_only"):
        return corpus, f"{source.data} captions only from {source.data_dir} (no features folder)"
    return corpus, f"{source.data} features from {source.data_dir} (feature dim {corpus.meta.get('feature_dim')})"


def tasks_for(corpus) -> list[str]:
    """Every task if the corpus has frames; the sentence tasks for a feature corpus (no video output);
    sentence-to-sentence alone for caption files without features."""
    if corpus.meta.get("sentences_only"):
        return ["paraphrase"]
    train = corpus.splits["train"]
    video = corpus.video_input == "frames" and bool(train) and train[0].frames is not None
    return list(ALL_TASKS if video else TEXT_TASKS)


def skip_reason(corpus) -> str:
    return SENTENCES_ONLY_REASON if corpus.meta.get("sentences_only") else SKIP_REASON


def baseline_models(tasks: Sequence[str]) -> list[tuple[str, str]]:
    """(kind, task) of every baseline model trained per seed: two per task."""
    return [(kind, t) for t in tasks for kind in BASELINE_KINDS]


def all_jobs(seeds: Sequence[int], tasks: Sequence[str]) -> list[Job]:
    """Every model to train, longest first (the star runs: three phases and three evaluations; then without the
    alignment term), so that the processes finish together."""
    stars = [(s, run, None) for s in seeds for run in STAR_RUNS]
    return stars + [(s, kind, t) for s in seeds for kind, t in baseline_models(tasks)]


def validations(steps: int, eval_every: int, converge: bool) -> int:
    """Validations in a phase of `steps` (a converging phase also validates its last step)."""
    if not eval_every:
        return 0
    return steps // eval_every + (1 if converge and steps % eval_every else 0)


def timed_rows(size: Size, tasks: Sequence[str]) -> list[tuple[str, int, str, int, str]]:
    """(row, steps at the cap, step timing key, validations, validation timing key) of every model of one seed."""
    e, f, pa, ft, b = size.eval_every, size.full_steps, size.partial_steps, size.finetune_steps, size.baseline_steps
    rows = [("star (full-model learning)", f, "star/full", validations(f, e, False), "star"),
            ("star (partial-model learning, cap)", pa, "star/partial", validations(pa, e, True), "star")]
    if ft:  # phases_for drops a phase of 0 steps, and time_steps then has no timing for it
        rows.append(("star (task fine-tuning, caption)", ft, "star/finetune", validations(ft, e, False), "star"))
    rows += [("star, no alignment (full-model)", f, "star/full", validations(f, e, False), "star"),
             ("star, no alignment (partial, cap)", pa, "star/partial", validations(pa, e, True), "star")]
    rows += [(f"{kind} / {task} (cap)", b, f"{kind}/{task}", validations(b, e, True), task)
             for kind, task in baseline_models(tasks)]
    return rows


def make_plan(size: Size, tasks: Sequence[str], seeds: Sequence[int], n_test: int, steps_s: dict[str, dict[str, float]],
              eval_s: dict[str, float], val_s: dict[str, float], jobs: int = 1) -> dict[str, Any]:
    """Steps, validations and estimated seconds of every model of one seed at its cap, and the total over seeds: an
    upper bound (early stopping ends sooner), from the wall time per step measured now and from the CPU time per
    step (the estimate for a quiet machine)."""
    rows = []
    for model, steps, key, n_val, val_key in timed_rows(size, tasks):
        val = n_val * val_s[val_key]
        rows.append({"model": model, "steps": steps, "s_per_step": steps_s[key]["wall"],
                     "cpu_s_per_step": steps_s[key]["cpu"], "validations": n_val, "validation_s": val,
                     "seconds": steps * steps_s[key]["wall"] + val, "cpu_seconds": steps * steps_s[key]["cpu"] + val})
    train_s = sum(r["seconds"] for r in rows)
    train_cpu_s = sum(r["cpu_seconds"] for r in rows)
    # Evaluations per seed: 4 star checkpoints on every task, plus one task per baseline model (2 per task).
    task_evals = len(STAR_ROWS) * len(tasks) + 2 * len(tasks)
    text = len([t for t in tasks if t in TEXT_TASKS])
    meteor_calls = (len(STAR_ROWS) + 2) * text if eval_s["meteor_call_s"] else 0
    eval_seed_s = (eval_s["eval_per_clip_s"] * n_test * task_evals / max(1, len(tasks))
                   + meteor_calls * eval_s["meteor_call_s"])
    setup_s = 60.0  # the corpus made again in each worker, figures, reports, process start
    return {"rows": rows, "train_s_per_seed": train_s, "train_cpu_s_per_seed": train_cpu_s,
            "eval_s_per_seed": eval_seed_s, "seconds_per_seed": train_s + eval_seed_s, "seeds": list(seeds),
            "jobs": jobs,  # processes at once: the sum over models divided by jobs (about; longest first)
            "estimated_total_s": (train_s + eval_seed_s) * len(seeds) / jobs + setup_s,
            "estimated_total_quiet_s": (train_cpu_s + eval_seed_s) * len(seeds) / jobs + setup_s,
            "meteor_calls_per_seed": meteor_calls, "test_clips": n_test, "eval_timing": eval_s,
            "validation_timing": val_s, "upper_bound": bool(size.patience and size.eval_every)}


def print_plan(plan: dict[str, Any], size_name: str) -> None:
    print(f"plan (--size {size_name}), per seed, every model at its cap (wall ms per step now; CPU ms per step = a "
          "quiet machine's wall; validations at the wall time measured now):")
    for r in plan["rows"]:
        print(f"  {r['model']:<36} {r['steps']:>6} steps x {1000 * r['s_per_step']:6.1f} ms "
              f"(cpu {1000 * r['cpu_s_per_step']:6.1f} ms) + {r['validations']:>3} validations "
              f"{r['validation_s']:6.1f} s = {r['seconds']:7.1f} s")
    print(f"  {'evaluation (' + str(plan['test_clips']) + ' test clips)':<36} {'':>62} {plan['eval_s_per_seed']:7.1f} s"
          + (f" (incl. {plan['meteor_calls_per_seed']} METEOR calls)" if plan["meteor_calls_per_seed"] else ""))
    total, quiet = plan["estimated_total_s"], plan["estimated_total_quiet_s"]
    jobs = f" with {plan['jobs']} processes at once" if plan["jobs"] > 1 else ""
    bound = "an upper bound: every model at its cap (early stopping ends sooner); " if plan["upper_bound"] else ""
    print(f"estimated total for {len(plan['seeds'])} seed(s){jobs}: {bound}{total:.0f} s = {total / 60:.1f} min at "
          f"this machine's current load; {quiet:.0f} s = {quiet / 60:.1f} min on quiet cores (from CPU time per step)",
          flush=True)
