"""The markdown report (docs/results.md): how the run was made, one table per paper table, the ablation, the
figures, the honest reading and the plan. Reads only the results document (results.json's content)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.paper.plan import LABELS, MODELS, TASK_TITLES
from bench.paper.reading import metrics_of
from bench.paper.stats import mean_std, stat_at

ATTRIBUTES = ("colour", "shape", "motion", "all")  # "all": the three attributes right at once
UNSEEN = ("caption", "attributes_unseen_combos")  # captions of attribute combinations never seen in training
ROWS_TEXT = ("Rows: **LSTM** and **S2S+VAE** are the baselines of `model/baselines.py` (one model per task, the "
             "star model's own encoder and decoder for that task; LSTM decodes from z = mu with no KL term, S2S+VAE "
             "samples z with the KL term). **S2S+SLR** is the star model after full-model and partial-model "
             "learning, one model for all tasks; *full-model learning only* is its checkpoint before partial-model "
             "learning; *+ task fine-tuning* continues the S2S+SLR model on video-to-sentence only. Text metrics "
             "and accuracies are percentages; MSE per pixel on the 0-255 scale.")
READING_TEXT = ("Generated from the numbers above. A difference is called real only if the two means differ by more "
                "than the sum of their standard deviations over seeds; otherwise it is *within the spread*. S2S+SLR "
                "here is the row without task fine-tuning (the same step budget as each baseline, but shared by four "
                "tasks).")


def table(head: Sequence[str], rows: list[list[str]]) -> list[str]:
    """A markdown table: header, rule, rows."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _models_with(agg: dict[str, Any], task: str) -> list[str]:
    return [m for m in MODELS if task in agg.get(m, {})]


def _any_model_has(agg: dict[str, Any], *keys: str) -> bool:
    return any(stat_at(agg, m, *keys) for m in MODELS)


def text_table(agg: dict[str, Any], task: str, meteor: bool) -> list[str]:
    """Tables 1, 2, 4, 5: METEOR (when on), BLEU@1-4 and, on the synthetic corpus, attribute accuracies."""
    metrics = (["METEOR"] if meteor else []) + [f"BLEU@{i}" for i in range(1, 5)]
    attrs = ATTRIBUTES if _any_model_has(agg, task, "attributes", "all") else ()
    head = ["Model", *metrics, *("all three" if a == "all" else a for a in attrs)]
    return table(head, [[LABELS[m], *(mean_std(stat_at(agg, m, task, k)) for k in metrics),
                         *(mean_std(stat_at(agg, m, task, "attributes", a)) for a in attrs)]
                        for m in _models_with(agg, task)])


def unseen_table(agg: dict[str, Any]) -> list[str]:
    """Caption attribute accuracy on the attribute combinations never seen in training."""
    return table(["Model", "colour", "shape", "motion", "all three"],
                 [[LABELS[m], *(mean_std(stat_at(agg, m, *UNSEEN, a)) for a in ATTRIBUTES)]
                  for m in MODELS if stat_at(agg, m, *UNSEEN, "all")])


def _first_stat(agg: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    """The first model's aggregate at keys (the same for every model, e.g. the probe on the ground truth)."""
    return next((a for a in (stat_at(agg, m, *keys) for m in MODELS) if a), None)


def video_table(agg: dict[str, Any], task: str) -> list[str]:
    """Tables 3 and 6: MSE and, for sentence-to-video, the probe's accuracy on the generated clips."""
    probe = ("colour", "motion") if task == "sentence_to_video" and _any_model_has(agg, task, "probe", "colour") else ()
    head = ["Model", "MSE (0-255)", *(f"probe {k}" for k in probe)]
    lines = table(head, [[LABELS[m], mean_std(stat_at(agg, m, task, "MSE"), 1.0),
                          *(mean_std(stat_at(agg, m, task, "probe", k)) for k in probe)]
                         for m in _models_with(agg, task)])
    if probe:
        truth = [mean_std(_first_stat(agg, task, "probe_on_ground_truth", k)) for k in probe]
        lines.append(f"| (the probe on the ground-truth clips) | - | {' | '.join(truth)} |")
    return lines


def ablation_table(agg: dict[str, Any], tasks: Sequence[str], meteor: bool) -> list[str]:
    rows = []
    for task, (name, keys, _, scale) in metrics_of(tasks, meteor):
        full, part = stat_at(agg, "slr_full", task, *keys), stat_at(agg, "slr", task, *keys)
        if full or part:
            rows.append([TASK_TITLES[task], name, mean_std(full, scale), mean_std(part, scale)])
    return table(["Task", "Metric", "full-model learning only", "+ partial-model learning"], rows)


def run_section(meta: dict[str, Any]) -> list[str]:
    """How the run was made: command, seeds, corpus, sizes, steps, time, machine."""
    size, mach, plan = meta["size"], meta["machine"], meta["plan"]
    splits = ", ".join(f"{k} {v}" for k, v in meta["corpus"]["splits"].items())
    return ["## Run", "",
            f"- Command: `{meta['command']}`",
            f"- Seeds: {', '.join(str(s) for s in meta['seeds'])} (training seeds; mean ± sample std over seeds)",
            f"- Corpus: {meta['corpus']['description']}; splits {splits}",
            f"- Size `{meta['size_name']}` ({size['description']}): core.config preset `{size['preset']}` "
            f"model {json.dumps(meta['model_config'])}",
            f"- Steps: star model {size['full_steps']} full-model + {size['partial_steps']} partial-model learning "
            f"(+ {size['finetune_steps']} task fine-tuning for the fine-tuning row); every baseline "
            f"{size['full_steps'] + size['partial_steps']} steps on its own task (one model per task and kind); "
            f"batch {size['batch_size']}, torch threads {meta['threads']} per process, "
            f"{meta['jobs']} process(es) at once",
            f"- Wall time: {meta['wall_s']:.0f} s ({meta['wall_s'] / 60:.1f} min); plan estimate "
            f"{plan['estimated_total_s']:.0f} s at the load of the start ({plan['estimated_total_quiet_s']:.0f} s "
            "on quiet cores, from CPU time per step)",
            f"- Machine: {mach['platform']}, {mach['cpu_count']} CPUs, Python {mach['python']}, torch {mach['torch']}, "
            f"load average at start {mach['load_average']}",
            f"- METEOR: {'on' if meta['meteor'] else 'off (--no-meteor)'}; test split of {meta['test_clips']} clips, "
            "greedy decoding",
            ""]


def tables_section(agg: dict[str, Any], tasks: Sequence[str], meteor: bool) -> list[str]:
    """One section per paper table, for the tasks this corpus has."""
    md: list[str] = []
    if "caption" in tasks:
        md += ["## Table 1/2 style: video-to-sentence (caption)", ""] + text_table(agg, "caption", meteor) + [""]
        if _any_model_has(agg, *UNSEEN, "all"):
            md += ["Caption attribute accuracy on the held-out attribute combinations (test clips whose "
                   "(colour, shape, motion) never occurs in training; `attributes_unseen_combos`):", ""]
            md += unseen_table(agg) + [""]
    if "reconstruct" in tasks:
        md += ["## Table 3 style: video-to-video (reconstruct), MSE", "",
               "The decoder is given the first ground-truth frame, as in the paper.", ""]
        md += video_table(agg, "reconstruct") + [""]
    if "paraphrase" in tasks:
        md += ["## Table 4/5 style: sentence-to-sentence (paraphrase)", "",
               "Input: each test clip's first description; references: its other descriptions.", ""]
        md += text_table(agg, "paraphrase", meteor) + [""]
    if "sentence_to_video" in tasks:
        md += ["## Table 6 style: sentence-to-video, MSE and probe accuracy", "",
               "Input: each test clip's first description; the probe reads the generated clip's colour and motion "
               "(single-object clips only).", ""]
        md += video_table(agg, "sentence_to_video") + [""]
    return md


def figures_section(figures: dict[str, str], out_dir: Path, seed: int) -> list[str]:
    md = [f"## Sample outputs (seed {seed} models)", ""]
    for task, png in figures.items():
        rel = os.path.relpath(png, out_dir)  # links that work where the report is
        md += [f"- {TASK_TITLES[task]}: [{rel}]({rel})", "", f"![{task}]({rel})", ""]
    return md


def plan_section(plan: dict[str, Any]) -> list[str]:
    rows = [f"| {r['model']} | {r['steps']} | {1000 * r['s_per_step']:.1f} | {1000 * r['cpu_s_per_step']:.1f} "
            f"| {r['seconds']:.0f} |" for r in plan["rows"]]
    return (["## Plan (measured step times at the start of the run)", "",
             "| model | steps | wall ms / step | CPU ms / step | seconds |", "|---|---|---|---|---|"] + rows
            + [f"| evaluation per seed | | | | {plan['eval_s_per_seed']:.0f} |", ""])


def write_report(doc: dict[str, Any], out_dir: Path, name: str) -> Path:
    """<out_dir>/<name>.md from the results document."""
    meta, agg = doc["meta"], doc["aggregate"]
    tasks, meteor = meta["tasks"], meta["meteor"]
    md = [f"# The paper's tables on the {meta['corpus']['name']} benchmark", "",
          f"Generated by `bench/paper_tables.py`; every number is in `{name}.json`.", ""] + run_section(meta)
    if meta.get("skipped_tasks"):
        md += [f"**Skipped tasks:** {', '.join(meta['skipped_tasks'])}: {meta['skip_reason']}", ""]
    md += [ROWS_TEXT, ""] + tables_section(agg, tasks, meteor)
    md += ["## Ablation: full-model learning only vs with partial-model learning", "",
           "The same star-model run, evaluated before and after partial-model learning, on the single-input tasks.", ""]
    md += ablation_table(agg, tasks, meteor) + [""]
    if doc.get("figures"):
        md += figures_section(doc["figures"], out_dir, meta["seeds"][0])
    md += ["## Honest reading", "", READING_TEXT, ""] + doc["reading"] + [""] + plan_section(meta["plan"])
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(md))
    return path
