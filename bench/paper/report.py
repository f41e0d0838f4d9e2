"""The markdown report (docs/results.md): how the run was made (recipe, caps, patience), what each row has, how long
each model trained, the learning curves, one table per paper table, the ablation, the figures, the honest reading
and the plan. Reads only the results document (results.json's content)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.paper.plan import LABELS, MODELS, TASK_TITLES, VIDEO_TASKS
from bench.paper.reading import metrics_of
from bench.paper.stats import mean_std, stat_at
from core.tables import md_table

ATTRIBUTES = ("colour", "shape", "motion", "all")  # "all": the three attributes right at once
UNSEEN = ("caption", "attributes_unseen_combos")  # captions of attribute combinations never seen in training
# The training flags of today's recipe that the report states (core.config TrainConfig / ModelConfig).
RECIPE_TRAIN = ("lr", "batch_size", "partial_lr_scale", "partial_mix", "lambda_kl", "kl_ramp_steps", "lambda_align",
                "lambda_foreground", "word_dropout", "augment_strength", "grad_clip")
RECIPE_MODEL = ("video_decoder", "draw_channels", "frame_fit", "attention_heads")
ROWS_TEXT = ("Rows: **LSTM** and **S2S+VAE** are the baselines of `model/baselines.py` (one model per task, the "
             "star model's own encoder and decoder for that task; LSTM decodes from z = mu with no KL term, S2S+VAE "
             "samples z with the KL term). **S2S+SLR** is the star model after full-model and partial-model "
             "learning, one model for all tasks; *full-model learning only* is its checkpoint before partial-model "
             "learning; *no alignment term* is a second star-model run with lambda_align 0 (its partial-model "
             "checkpoint); *+ task fine-tuning* continues the S2S+SLR model on video-to-sentence only. Text metrics "
             "and accuracies are percentages; MSE per pixel on the 0-255 scale; the probe's contrast is a ratio "
             "(about 1 for real clips, 0.2 for a grey blur).")
FIXES_TEXT = ("Every row is the same `StarModel` class (`model/star.py`), so the architectural changes reach every "
              "row alike: the frame CNN with batch norm (`FrameEncoder`), z at every step of both decoders "
              "(`SentenceDecoder`, `VideoDecoder`), the per-sentence loss (`sentence_loss`), the drawing video "
              "decoder with its foreground-weighted loss and the centred targets of sentence-only rows "
              "(`video_target`). What differs per row:")
READING_TEXT = ("Generated from the numbers above. A difference is called real only if the two means differ by more "
                "than the sum of their standard deviations over seeds; otherwise it is *within the spread*. S2S+SLR "
                "here is the row with the alignment term and without task fine-tuning; every model is compared at "
                "its own convergence (the weights of its best validation), not at a shared step budget.")


def _models_with(agg: dict[str, Any], task: str) -> list[str]:
    return [m for m in MODELS if task in agg.get(m, {})]


def _any_model_has(agg: dict[str, Any], *keys: str) -> bool:
    return any(stat_at(agg, m, *keys) for m in MODELS)


def text_table(agg: dict[str, Any], task: str, meteor: bool) -> list[str]:
    """Tables 1, 2, 4, 5: METEOR (when on), BLEU@1-4 and, on the synthetic corpus, attribute accuracies."""
    metrics = (["METEOR"] if meteor else []) + [f"BLEU@{i}" for i in range(1, 5)]
    attrs = ATTRIBUTES if _any_model_has(agg, task, "attributes", "all") else ()
    head = ["Model", *metrics, *("all three" if a == "all" else a for a in attrs)]
    return md_table(head, [[LABELS[m], *(mean_std(stat_at(agg, m, task, k)) for k in metrics),
                         *(mean_std(stat_at(agg, m, task, "attributes", a)) for a in attrs)]
                        for m in _models_with(agg, task)])


def unseen_table(agg: dict[str, Any]) -> list[str]:
    """Caption attribute accuracy on the attribute combinations never seen in training."""
    return md_table(["Model", "colour", "shape", "motion", "all three"],
                 [[LABELS[m], *(mean_std(stat_at(agg, m, *UNSEEN, a)) for a in ATTRIBUTES)]
                  for m in MODELS if stat_at(agg, m, *UNSEEN, "all")])


def _first_stat(agg: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    """The first model's aggregate at keys (the same for every model, e.g. the probe on the ground truth)."""
    return next((a for a in (stat_at(agg, m, *keys) for m in MODELS) if a), None)


def _probe_cells(agg: dict[str, Any], model: str | None, task: str, key: str) -> list[str]:
    """Probe colour, motion (%) and contrast (a ratio) of one model, or of the ground truth (model None)."""
    get = (lambda k: _first_stat(agg, task, key, k)) if model is None else (lambda k: stat_at(agg, model, task, key, k))
    return [mean_std(get("colour")), mean_std(get("motion")), mean_std(get("contrast"), 1.0, 2)]


def video_table(agg: dict[str, Any], task: str) -> list[str]:
    """Tables 3 and 6: MSE and, on the synthetic corpus, the video probe (colour, motion, contrast) on one-object
    clips."""
    probe = _any_model_has(agg, task, "probe", "colour")
    head = ["Model", "MSE (0-255)", *(("probe colour", "probe motion", "contrast") if probe else ())]
    lines = md_table(head, [[LABELS[m], mean_std(stat_at(agg, m, task, "MSE"), 1.0),
                          *(_probe_cells(agg, m, task, "probe") if probe else ())]
                         for m in _models_with(agg, task)])
    if probe:
        lines.append(f"| (the probe on the ground-truth clips) | - | "
                     f"{' | '.join(_probe_cells(agg, None, task, 'probe_on_ground_truth'))} |")
    return lines


def ablation_table(agg: dict[str, Any], tasks: Sequence[str], meteor: bool) -> list[str]:
    """The paper's ablation (full-model only, + partial, + task fine-tuning) beside the run without alignment."""
    rows = []
    for task, (name, keys, _, scale) in metrics_of(tasks, meteor):
        cells = [stat_at(agg, m, task, *keys) for m in ("slr_full", "slr", "slr_ft", "slr_noalign")]
        if any(cells):
            rows.append([TASK_TITLES[task], name, *(mean_std(c, scale) for c in cells)])
    return md_table(["Task", "Metric", "full-model learning only", "+ partial-model learning (S2S+SLR)",
                  "+ task fine-tuning", "S2S+SLR without alignment"], rows)


def recipe_lines(meta: dict[str, Any]) -> list[str]:
    """The recipe every row trains with, and the validation that decides when each has converged."""
    tc, mc, size = meta["train_config"], meta["model_config"], meta["size"]
    flags = ", ".join(f"{k} {json.dumps(tc[k])}" for k in RECIPE_TRAIN if k in tc)
    model = ", ".join(f"{k} {json.dumps(mc[k])}" for k in RECIPE_MODEL if k in mc)
    lines = [f"- Recipe (core.config preset `{size['preset']}`'s training flags): {flags}; model {model}"]
    if size.get("eval_every"):
        lines.append(
            f"- Convergence: every model is validated every {size['eval_every']} steps on the first "
            f"{size['val_clips']} validation clips; partial-model learning and every baseline stop when the "
            f"validation figure has not improved for **{size['patience']} validations** (never before "
            f"{size['min_steps']} steps of the phase), or at the cap, and the weights of the best validation are "
            "the ones evaluated. The figure: caption and paraphrase attribute accuracy (mean of colour, shape, "
            "motion); for the video tasks the video probe (mean of colour and motion, one-object clips), ties broken "
            "by the lower MSE; the star model's figure is the mean over its tasks (one model, four tasks); on "
            "corpora without attributes, minus the validation loss.")
    lines.append(
        f"- Caps: the star model {size['full_steps']} steps of full-model learning (always run), then at most "
        f"{size['partial_steps']} of partial-model learning (full : partial = 1 : 4 of the cap) and "
        f"{size['finetune_steps']} of task fine-tuning for the fine-tuning row; the run without the alignment term "
        f"the same without fine-tuning; every baseline at most {size['full_steps'] + size['partial_steps']} steps on "
        "its own task (what the star model may spend on all four)")
    return lines


def run_section(meta: dict[str, Any]) -> list[str]:
    """How the run was made: command, seeds, corpus, sizes, recipe, caps, time, machine."""
    size, mach, plan = meta["size"], meta["machine"], meta["plan"]
    splits = ", ".join(f"{k} {v}" for k, v in meta["corpus"]["splits"].items())
    bound = "an upper bound, every model at its cap" if plan.get("upper_bound") else "every model at its steps"
    return ["## Run", "",
            f"- Command: `{meta['command']}`",
            f"- Seeds: {', '.join(str(s) for s in meta['seeds'])} (training seeds; mean ± sample std over seeds)",
            f"- Corpus: {meta['corpus']['description']}; splits {splits}",
            f"- Size `{meta['size_name']}` ({size['description']}): model {json.dumps(meta['model_config'])}",
            *recipe_lines(meta),
            f"- Batch {size['batch_size']}, torch threads {meta['threads']} per process, {meta['jobs']} process(es) "
            "at once",
            f"- Wall time: {meta['wall_s']:.0f} s ({meta['wall_s'] / 60:.1f} min); plan estimate ({bound}) "
            f"{plan['estimated_total_s']:.0f} s at the load of the start ({plan['estimated_total_quiet_s']:.0f} s "
            "on quiet cores, from CPU time per step)",
            f"- Machine: {mach['platform']}, {mach['cpu_count']} CPUs, Python {mach['python']}, torch {mach['torch']}, "
            f"load average at start {mach['load_average']}",
            f"- METEOR: {'on' if meta['meteor'] else 'off (--no-meteor)'}; test split of {meta['test_clips']} clips, "
            "greedy decoding",
            ""]


def fixes_table(meta: dict[str, Any]) -> list[str]:
    """What each row has beyond the shared architecture: its latent, the alignment term, the video loss, training."""
    tc, mc, size = meta["train_config"], meta["model_config"], meta["size"]
    video = (f"{mc.get('video_decoder', 'linear')} decoder, foreground x{tc.get('lambda_foreground', 0)}"
             if meta["tasks"] and set(meta["tasks"]) & set(VIDEO_TASKS) else "-")
    cap = size["full_steps"] + size["partial_steps"]
    conv = "to convergence" if size.get("patience") and size.get("eval_every") else "all steps"
    star = f"{size['full_steps']} full + partial {conv} (cap {size['partial_steps']})"
    rows = {"lstm": ["z = mu, no KL", "0 (one input)", video, f"its task {conv} (cap {cap})"],
            "vae": ["sampled z, KL", "0 (one input)", video, f"its task {conv} (cap {cap})"],
            "slr_full": ["sampled z, KL", str(tc["lambda_align"]), video, f"{size['full_steps']} full"],
            "slr": ["sampled z, KL", str(tc["lambda_align"]), video, star],
            "slr_noalign": ["sampled z, KL", "0", video, star],
            "slr_ft": ["sampled z, KL", str(tc["lambda_align"]), video,
                       f"S2S+SLR + {size['finetune_steps']} caption steps at lr / 100"]}
    return md_table(["Row", "latent", "alignment term (lambda_align)", "video output", "training"],
                 [[LABELS[m], *rows[m]] for m in MODELS])


def steps_table(runs: dict[str, Any], tasks: Sequence[str]) -> list[str]:
    """Steps each model ran (mean ± std over seeds), the step whose weights it kept, early stops, training time."""
    keys = [(k, LABELS[k]) for k in ("slr_full", "slr", "slr_noalign", "slr_ft")]
    keys += [(f"{kind}/{t}", f"{LABELS[kind]} / {t}") for t in tasks for kind in ("lstm", "vae")]
    rows = []
    for key, label in keys:
        r = runs.get(key)
        if not r:
            continue
        kept = mean_std(r.get("best_step"), 1.0, 0) if "best_step" in r else "(last step)"
        early = f"{r['stopped_early']} of {r['n']}" if "stopped_early" in r else "-"
        rows.append([label, mean_std(r["steps"], 1.0, 0), kept, early, f"{r['train_seconds']['mean'] / 60:.1f}"])
    return md_table(["Model", "steps run", "step kept (best validation)", "stopped before the cap",
                  "training min (mean)"], rows)


def tables_section(agg: dict[str, Any], tasks: Sequence[str], meteor: bool) -> list[str]:
    """One section per paper table, for the tasks this corpus has."""
    md: list[str] = []
    if "caption" in tasks:
        md += ["## Table 1/2 style: video-to-sentence (caption)", ""] + text_table(agg, "caption", meteor) + [""]
        if _any_model_has(agg, *UNSEEN, "all"):
            md += ["Caption attribute accuracy on the held-out attribute combinations (test clips whose "
                   "(colour, shape, motion) never occurs in training; `attributes_unseen_combos`), the paper's "
                   "generalisation reading:", ""]
            md += unseen_table(agg) + [""]
    if "reconstruct" in tasks:
        md += ["## Table 3 style: video-to-video (reconstruct), MSE and the video probe", "",
               "The decoder is given the first ground-truth frame, as in the paper; the probe reads the "
               "reconstruction's colour and motion (one-object clips).", ""]
        md += video_table(agg, "reconstruct") + [""]
    if "paraphrase" in tasks:
        md += ["## Table 4/5 style: sentence-to-sentence (paraphrase)", "",
               "Input: each test clip's first description; references: its other descriptions.", ""]
        md += text_table(agg, "paraphrase", meteor) + [""]
    if "sentence_to_video" in tasks:
        md += ["## Table 6 style: sentence-to-video, MSE and the video probe", "",
               "Input: each test clip's first description; the probe reads the generated clip's colour and motion "
               "(one-object clips only).", ""]
        md += video_table(agg, "sentence_to_video") + [""]
    return md


def _link(png: str, out_dir: Path) -> str:
    return os.path.relpath(png, out_dir)  # links that work where the report is


def figures_section(figures: dict[str, str], out_dir: Path, seed: int) -> list[str]:
    md = [f"## Sample outputs (seed {seed} models)", ""]
    for task, png in figures.items():
        rel = _link(png, out_dir)
        md += [f"- {TASK_TITLES[task]}: [{rel}]({rel})", "", f"![{task}]({rel})", ""]
    return md


def curves_section(doc: dict[str, Any], out_dir: Path) -> list[str]:
    """How each model trained: the steps it ran and kept, and the learning-curves figure."""
    md = ["## Training: steps to convergence and learning curves", "", FIXES_TEXT, ""] + fixes_table(doc["meta"])
    md += ["", "Steps each model ran (mean ± std over seeds; a star-model row counts the run's steps up to its "
               "checkpoint, full-model learning included):", ""]
    md += steps_table(doc.get("runs", {}), doc["meta"]["tasks"])
    png = doc.get("learning_curves")
    if png:
        rel = _link(png, out_dir)
        md += ["", f"Learning curves, [{rel}]({rel}): each model's validation figure against its training steps, "
                   "mean over the seeds still training at that step. They answer the budget question (which model "
                   "is ahead after a given number of steps); the tables answer the paper's (which is better once "
                   "each has converged).", "", f"![learning curves]({rel})"]
    return md + [""]


def plan_section(plan: dict[str, Any]) -> list[str]:
    rows = [[r["model"], r["steps"], f"{1000 * r['s_per_step']:.1f}", f"{1000 * r['cpu_s_per_step']:.1f}",
             r.get("validations", 0), f"{r['seconds']:.0f}"] for r in plan["rows"]]
    rows.append(["evaluation per seed", "", "", "", "", f"{plan['eval_s_per_seed']:.0f}"])
    bound = " (every model at its cap: an upper bound)" if plan.get("upper_bound") else ""
    return ([f"## Plan (measured step times at the start of the run){bound}", ""]
            + md_table(["model", "steps", "wall ms / step", "CPU ms / step", "validations", "seconds"], rows) + [""])


def why_section(out_dir: Path, name: str) -> list[str]:
    """<name>_why.md beside the report, verbatim: the "why" a person writes after reading a run (the generated
    reading says where the ordering holds, not why), kept when the report is generated again."""
    why = out_dir / f"{name}_why.md"
    if not why.exists():
        return []
    return [f"### Why (written after reading the run: [{why.name}]({why.name}))", "", why.read_text().strip(), "",
            "### Every comparison (generated)", ""]


def write_report(doc: dict[str, Any], out_dir: Path, name: str) -> Path:
    """<out_dir>/<name>.md from the results document."""
    meta, agg = doc["meta"], doc["aggregate"]
    tasks, meteor = meta["tasks"], meta["meteor"]
    md = [f"# The paper's tables on the {meta['corpus']['name']} benchmark", "",
          f"Generated by `bench/paper_tables.py`; every number is in `{name}.json`.", ""] + run_section(meta)
    if meta.get("skipped_tasks"):
        md += [f"**Skipped tasks:** {', '.join(meta['skipped_tasks'])}: {meta['skip_reason']}", ""]
    md += [ROWS_TEXT, ""] + curves_section(doc, out_dir) + tables_section(agg, tasks, meteor)
    md += ["## Ablation: full-model learning only, + partial-model learning, + task fine-tuning", "",
           "The same star-model run, evaluated after each phase, beside the run without the alignment term.", ""]
    md += ablation_table(agg, tasks, meteor) + [""]
    if doc.get("figures"):
        md += figures_section(doc["figures"], out_dir, meta["seeds"][0])
    md += ["## Honest reading", ""] + why_section(out_dir, name) + [READING_TEXT, ""] + doc["reading"] + [""]
    md += plan_section(meta["plan"])
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(md))
    return path
