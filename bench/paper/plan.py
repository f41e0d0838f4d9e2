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
MODELS = ("lstm", "vae", "slr_full", "slr", "slr_ft")
LABELS = {"lstm": "LSTM", "vae": "S2S+VAE", "slr_full": "S2S+SLR, full-model learning only",
          "slr": "S2S+SLR", "slr_ft": "S2S+SLR + task fine-tuning (video-to-sentence)"}
STAR_STAGES = ("slr_full", "slr", "slr_ft")  # checkpoints after full, partial and fine-tuning phases
BASELINE_KINDS = ("lstm", "vae")
SKIP_REASON = ("the corpus carries feature inputs and no frames, so the model has no video output channel "
               "(video_output False): the video tasks cannot be trained or scored")

Job = tuple[int, str, str | None]  # (seed, "star" | "lstm" | "vae", task or None for the star model)


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
    figure_examples: int = 3
    description: str = ""

    @property
    def baseline_steps(self) -> int:
        """A baseline's budget on its one task: what the star model gets for all four tasks together."""
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


@dataclass(frozen=True)
class DataSource:
    """Where the corpus comes from: plain values, so that a spawned worker can load the same corpus again."""

    data: str = "synthetic"  # synthetic | msvd | msrvtt
    data_dir: str | None = None
    data_seed: int = 0
    clips: int | None = None  # synthetic corpus size; None: the size's


def make_preset(size: Size, threads: int):
    """The core.config preset of `size`, with fixed step counts (no wall-time budget, no evaluation while training)."""
    from core.config import ModelConfig, preset

    p = preset(size.preset)
    p.model = ModelConfig.from_dict({**p.model.to_dict(), **size.model})
    p.train.full_steps, p.train.partial_steps = size.full_steps, size.partial_steps
    p.train.finetune_steps = size.finetune_steps
    # The tables' ablation is the paper's three stages (full, partial, caption fine-tuning); the demo preset's
    # video-only fine-tuning is this project's addition, measured in the README, and would be a fourth stage.
    p.train.finetune_video_steps = 0
    p.train.batch_size, p.train.kl_ramp_steps = size.batch_size, size.kl_ramp_steps
    p.train.time_budget_s = None  # fixed step counts: the same work for every seed and model
    p.train.eval_every = 0
    p.train.threads = threads
    p.corpus_clips = size.clips
    return p


def load_data(source: DataSource, p) -> tuple[Any, str]:
    """(corpus, one-line description). A synthetic corpus is generated at the preset's frame size."""
    from model.data.corpus import load_corpus

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
    return corpus, f"{source.data} features from {source.data_dir} (feature dim {corpus.meta.get('feature_dim')})"


def tasks_for(corpus) -> list[str]:
    """Every task if the corpus has frames; the sentence tasks only for a feature corpus (no video output)."""
    train = corpus.splits["train"]
    video = corpus.video_input == "frames" and bool(train) and train[0].frames is not None
    return list(ALL_TASKS if video else TEXT_TASKS)


def baseline_models(tasks: Sequence[str]) -> list[tuple[str, str]]:
    """(kind, task) of every baseline model trained per seed: two per task."""
    return [(kind, t) for t in tasks for kind in BASELINE_KINDS]


def all_jobs(seeds: Sequence[int], tasks: Sequence[str]) -> list[Job]:
    """Every model to train, longest first (the star models: three phases and three evaluations each)."""
    return [(s, "star", None) for s in seeds] + [(s, kind, t) for s in seeds for kind, t in baseline_models(tasks)]


def make_plan(size: Size, tasks: Sequence[str], seeds: Sequence[int], n_test: int, steps_s: dict[str, dict[str, float]],
              eval_s: dict[str, float], jobs: int = 1) -> dict[str, Any]:
    """Steps and estimated seconds of every model of one seed, and the total over seeds: from the wall time per
    step measured now, and from the CPU time per step (the estimate for a quiet machine)."""
    timed = [("star (full-model learning)", size.full_steps, "star/full"),
             ("star (partial-model learning)", size.partial_steps, "star/partial")]
    if size.finetune_steps:  # phases_for drops a phase of 0 steps, and time_steps then has no timing for it
        timed.append(("star (task fine-tuning, caption)", size.finetune_steps, "star/finetune"))
    timed += [(f"{kind} / {task}", size.baseline_steps, f"{kind}/{task}") for kind, task in baseline_models(tasks)]
    rows = [{"model": model, "steps": steps, "s_per_step": steps_s[key]["wall"], "cpu_s_per_step": steps_s[key]["cpu"],
             "seconds": steps * steps_s[key]["wall"], "cpu_seconds": steps * steps_s[key]["cpu"]}
            for model, steps, key in timed]
    train_s = sum(r["seconds"] for r in rows)
    train_cpu_s = sum(r["cpu_seconds"] for r in rows)
    # Evaluations per seed: 3 star checkpoints on every task, plus one task per baseline model (2 per task).
    task_evals = len(STAR_STAGES) * len(tasks) + 2 * len(tasks)
    meteor_calls = (len(STAR_STAGES) + 2) * len([t for t in tasks if t in TEXT_TASKS]) if eval_s["meteor_call_s"] else 0
    eval_seed_s = (eval_s["eval_per_clip_s"] * n_test * task_evals / max(1, len(tasks))
                   + meteor_calls * eval_s["meteor_call_s"])
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
    print(f"estimated total for {len(plan['seeds'])} seed(s){jobs}: {total:.0f} s = {total / 60:.1f} min at this "
          f"machine's current load; {quiet:.0f} s = {quiet / 60:.1f} min on quiet cores (from CPU time per step)",
          flush=True)
