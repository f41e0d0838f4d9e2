"""bench/paper_tables.py end to end at --size tiny (seconds; the numbers mean nothing, only their shape is
checked): early stopping, the best validation's checkpoint, the learning curves, the run without the alignment term;
its aggregation and reading on hand-made numbers; and the --data msvd / msrvtt paths on fixtures in the real file
formats (with feature files, and caption files alone)."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.paper.plan import SIZES, DataSource, load_data, make_preset
from bench.paper.reading import reading
from bench.paper.report import write_report
from bench.paper.stats import aggregate, aggregate_tree, compare, is_real, mean_curve

ROOT = Path(__file__).resolve().parents[2]
CELL = re.compile(r"(-?\d+\.\d+) ± (\d+\.\d+)")
ROW_LABELS = ("| LSTM |", "| S2S+VAE |", "| S2S+SLR, full-model learning only |", "| S2S+SLR |",
              "| S2S+SLR, no alignment term (lambda_align 0) |", "| S2S+SLR + task fine-tuning (video-to-sentence) |")
TASKS = ("caption", "paraphrase", "reconstruct", "sentence_to_video")


def run_script(args: list[str], timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def section(md: str, heading: str) -> str:
    """The text of one '## ' section."""
    start = md.index(heading)
    end = md.find("\n## ", start + 1)
    return md[start: end if end > 0 else len(md)]


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Model")
            and not line.startswith("| Task")]


# ---------------------------------------------------------------- aggregation, unit level

def test_aggregate_mean_and_sample_std_by_hand():
    a = aggregate([1.0, 2.0, 3.0, 4.0])
    assert a["mean"] == pytest.approx(2.5)
    assert a["std"] == pytest.approx(math.sqrt(((1.5 ** 2) * 2 + (0.5 ** 2) * 2) / 3))  # ddof = 1: 1.2910
    assert a["n"] == 4 and a["values"] == [1.0, 2.0, 3.0, 4.0]
    one = aggregate([7])
    assert one == {"mean": 7.0, "std": 0.0, "n": 1, "values": [7.0]}
    two = aggregate([0.25, 0.75])
    assert two["mean"] == pytest.approx(0.5) and two["std"] == pytest.approx(math.sqrt(0.125))
    with pytest.raises(ValueError):
        aggregate([])


def test_aggregate_tree_walks_nested_results_and_skips_samples():
    runs = [{"caption": {"BLEU@4": 0.2, "attributes": {"all": 0.5}, "samples": [{"x": 1}]}, "clips": 10, "only0": 1.0},
            {"caption": {"BLEU@4": 0.4, "attributes": {"all": 0.7}, "samples": []}, "clips": 10}]
    agg = aggregate_tree(runs)
    assert set(agg) == {"caption"}  # 'clips' skipped, 'only0' missing from run 1
    assert agg["caption"]["BLEU@4"]["mean"] == pytest.approx(0.3)
    assert agg["caption"]["BLEU@4"]["std"] == pytest.approx(math.sqrt(0.02))
    assert agg["caption"]["attributes"]["all"]["mean"] == pytest.approx(0.6)
    assert "samples" not in agg["caption"]


def test_compare_calls_a_difference_real_only_beyond_the_summed_stds():
    a, b = {"mean": 30.0, "std": 1.0}, {"mean": 27.0, "std": 1.5}
    assert is_real(a, b) and compare(a, b, higher_is_better=True) == "better"
    assert compare(a, b, higher_is_better=False) == "worse"
    c = {"mean": 28.0, "std": 1.5}
    assert not is_real(a, c) and compare(a, c, True) == "better, within spread"
    assert compare(c, a, True) == "worse, within spread"
    assert compare({"mean": 1e-9, "std": 0.0}, {"mean": 0.0, "std": 0.0}, True) == "equal"


def _agg(mean: float, std: float) -> dict:
    return {"mean": mean, "std": std, "n": 3, "values": []}


def test_reading_on_hand_made_numbers():
    agg = {
        "slr": {"reconstruct": {"MSE": _agg(400.0, 5.0)}, "caption": {"BLEU@4": _agg(0.30, 0.01)}},
        "vae": {"reconstruct": {"MSE": _agg(450.0, 5.0)}, "caption": {"BLEU@4": _agg(0.29, 0.01)}},
        "lstm": {"reconstruct": {"MSE": _agg(460.0, 4.0)}, "caption": {"BLEU@4": _agg(0.35, 0.01)}},
        "slr_full": {"reconstruct": {"MSE": _agg(500.0, 5.0)}},
    }
    lines, verdicts = reading(agg, ["caption", "reconstruct"], meteor=False, n_seeds=3)
    by = {(v["task"], v["metric"]): v for v in verdicts if "ordering" in v}
    assert by[("reconstruct", "MSE")]["ordering"] == "holds (both steps real)"  # lower MSE is better
    cap = by[("caption", "BLEU@4")]
    assert cap["slr_vs_vae"] == "better, within spread" and cap["vae_vs_lstm"] == "worse"
    assert cap["ordering"].startswith("does not hold") and "S2S+VAE > LSTM" in cap["ordering"]
    ablation = [v for v in verdicts if "partial_vs_full_only" in v]
    assert ablation == [{"task": "reconstruct", "metric": "MSE", "partial_vs_full_only": "better"}]
    assert "holds beyond the spread in 1 of 2" in lines[0]


# ---------------------------------------------------------------- unit level: curves over seeds

def test_mean_curve_averages_the_seeds_still_training():
    def point(step: int, fig: float) -> dict:
        return {"step": step, "phase": "p", "figure": fig, "tasks": {"caption": {"figure": fig}}}

    curve = mean_curve([[point(2, 0.2), point(4, 0.4), point(6, 0.6)], [point(2, 0.4), point(4, 0.8)]])
    assert [(c["step"], c["n"]) for c in curve] == [(2, 2), (4, 2), (6, 1)]  # seed 1 stopped after step 4
    assert [c["tasks"]["caption"] for c in curve] == pytest.approx([0.3, 0.6, 0.6])
    assert [c["figure"] for c in curve] == pytest.approx([0.3, 0.6, 0.6])


# ---------------------------------------------------------------- the script, synthetic, tiny

TINY = SIZES["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """One tiny run of 2 seeds, shared by the checks below: its stdout, results.md, results.json and folders."""
    root = tmp_path_factory.mktemp("paper_tiny")
    out, work = root / "out", root / "work"
    proc = run_script(["-m", "bench.paper_tables", "--size", "tiny", "--seeds", "0", "1", "--no-meteor",
                       "--out", str(out), "--work", str(work)])
    return {"stdout": proc.stdout, "out": out, "work": work, "md": (out / "results.md").read_text(),
            "doc": json.loads((out / "results.json").read_text())}


def test_tiny_run_writes_every_table_row_and_figure(tiny):
    out, work, md, doc = tiny["out"], tiny["work"], tiny["md"], tiny["doc"]
    # the plan comes first, and it is an upper bound (every model at its cap)
    assert "estimated total for 2 seed(s): an upper bound" in tiny["stdout"]
    assert tiny["stdout"].index("estimated total") < tiny["stdout"].index("trained and evaluated")

    # provenance, the recipe, patience and caps
    for needle in ("Command: `python -m bench.paper_tables --size tiny --seeds 0 1 --no-meteor", "Seeds: 0, 1",
                   "Wall time:", "Machine:", "CPUs", "torch ", "splits train", "METEOR: off",
                   "lambda_align 0.1", f"**{TINY.patience} validations**", f"never before {TINY.min_steps} steps",
                   f"at most {TINY.partial_steps} of partial-model learning",
                   f"every baseline at most {TINY.baseline_steps} steps", "an upper bound, every model at its cap"):
        assert needle in md, needle
    assert doc["meta"]["seeds"] == [0, 1] and doc["meta"]["machine"]["cpu_count"] == os.cpu_count()
    assert doc["meta"]["corpus"]["splits"]["test"] == doc["meta"]["test_clips"] > 0

    # every table with every row, and every cell a parseable 'mean ± std'
    caption, unseen = section(md, "## Table 1/2 style").split("held-out attribute combinations")
    tables = [(caption, 8),  # BLEU@1-4 + colour, shape, motion, all three (no METEOR)
              (unseen, 4),  # colour, shape, motion, all three on the held-out combinations
              (section(md, "## Table 3 style"), 4),  # MSE, probe colour, probe motion, contrast
              (section(md, "## Table 4/5 style"), 8),
              (section(md, "## Table 6 style"), 4)]
    for text, cols in tables:
        for label in ROW_LABELS:
            assert label in text, (text[:40], label)
        rows = table_rows(text)
        assert len(rows) >= len(ROW_LABELS)
        for row in rows:
            cells = CELL.findall(row)
            assert len(cells) == (3 if row.startswith("| (the probe on the ground-truth") else cols), row
            assert all(float(m) >= 0 and float(sd) >= 0 for m, sd in cells), row
    ablation = section(md, "## Ablation")
    for task in ("video-to-sentence", "sentence-to-sentence", "video-to-video", "sentence-to-video"):
        assert f"| {task} |" in ablation, task
    assert all(len(CELL.findall(r)) == 4 for r in table_rows(ablation))  # full only, + partial, + ft, no alignment
    reading_text = section(md, "## Honest reading")
    assert "holds beyond the spread in" in reading_text and "Ordering S2S+SLR > S2S+VAE > LSTM" in reading_text

    # the json's aggregate is the mean / sample std of its per-seed numbers, and the table shows it
    for model, task, key in (("slr", "reconstruct", "MSE"), ("lstm", "sentence_to_video", "MSE"),
                             ("vae", "caption", "BLEU@1"), ("slr_full", "paraphrase", "BLEU@1"),
                             ("slr_noalign", "reconstruct", "MSE")):
        vals = [doc["per_seed"][s][model][task][key] for s in ("0", "1")]
        agg = doc["aggregate"][model][task][key]
        assert agg["mean"] == pytest.approx(np.mean(vals)) and agg["std"] == pytest.approx(np.std(vals, ddof=1))
    mse = doc["aggregate"]["slr"]["reconstruct"]["MSE"]
    assert f"| S2S+SLR | {mse['mean']:.1f} ± {mse['std']:.1f} |" in section(md, "## Table 3 style")

    # figures: one per task, real PNGs, linked from results.md
    for task in TASKS:
        png = out / "figures" / f"{task}.png"
        assert png.exists(), png
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 100
        assert f"(figures/{task}.png)" in md
    # checkpoints of every model of every seed are kept under --work
    for seed in (0, 1):
        for d in ("slr_full", "slr", "slr_noalign", "slr_ft", "lstm_caption", "vae_sentence_to_video"):
            assert (work / f"seed{seed}" / d / "checkpoint.pt").exists()


def _phase_points(info: dict) -> list[dict]:
    """The validations of a run's last (converging) phase."""
    return [p for p in info["curve"] if p["phase"] == info["phases"][-1]]


def test_the_hand_written_why_is_kept_when_the_report_is_written_again(tiny, tmp_path: Path):
    (tmp_path / "results_why.md").write_text("- The star model captions best because of the alignment term.\n")
    md = write_report(tiny["doc"], tmp_path, "results").read_text()
    why, generated = md.index("### Why"), md.index("### Every comparison (generated)")
    assert why < md.index("because of the alignment term") < generated < md.index("The paper's ordering")
    (tmp_path / "results_why.md").unlink()
    assert "### Why" not in write_report(tiny["doc"], tmp_path, "results").read_text()


def test_tiny_run_stops_early_after_patience_or_at_the_cap(tiny):
    runs = tiny["doc"]["runs_per_seed"]
    converging = {k for k in runs["0"] if "/" in k} | {"slr", "slr_noalign"}
    stopped = capped = 0
    for seed, infos in runs.items():
        assert set(infos) == {"slr_full", "slr", "slr_noalign", "slr_ft"} | {f"{kind}/{t}" for t in TASKS
                                                                              for kind in ("lstm", "vae")}
        for key in converging:
            info = infos[key]
            cap = TINY.baseline_steps if "/" in key else TINY.full_steps + TINY.partial_steps
            first = 0 if "/" in key else TINY.full_steps  # the converging phase starts after full-model learning
            pts = _phase_points(info)
            assert info["steps"] <= cap and pts[-1]["step"] == info["steps"], (seed, key)
            after_best = [p for p in pts if p["step"] > info["best_step"]]
            ran = info["steps"] - first  # steps of the converging phase
            if info["stopped_early"]:
                stopped += 1
                # patience spent (validations without improvement since the best), and never before min_steps:
                # it stops at the first validation where both hold
                assert ran >= TINY.min_steps and info["steps"] < cap, (seed, key)
                assert len(after_best) == TINY.patience or (
                    len(after_best) > TINY.patience and ran - TINY.eval_every < TINY.min_steps), (seed, key, pts)
            else:
                capped += 1  # patience not spent before the cap (it may run out at the cap's own validation)
                assert info["steps"] == cap and (len(after_best) <= TINY.patience or ran <= TINY.min_steps), (seed, key)
            # the kept step is the best validation of the phase (figure; ties broken by the lower MSE)
            best = max(p["figure"] for p in pts)
            assert info["best_figure"] == pytest.approx(best)
            assert [p["figure"] for p in pts if p["step"] == info["best_step"]] == [pytest.approx(best)]
    assert stopped and capped, (stopped, capped)  # both ways out were taken in this run
    # the report's steps table shows the mean steps run
    steps = [runs[s]["lstm/caption"]["steps"] for s in ("0", "1")]
    row = next(r for r in section(tiny["md"], "## Training").splitlines() if r.startswith("| LSTM / caption |"))
    assert row.startswith(f"| LSTM / caption | {np.mean(steps):.0f} ± {np.std(steps, ddof=1):.0f} |"), row


def test_tiny_run_evaluates_the_best_validations_checkpoint(tiny):
    """The evaluated checkpoints hold the weights of the kept step: their validation figure, measured again here on
    the same validation clips, is the one logged at that step."""
    from model.checkpoint import load_checkpoint
    from model.evaluate import validation_figures

    p = make_preset(TINY, 1)
    corpus, _ = load_data(DataSource(), p)
    val = corpus.splits["val"][: TINY.val_clips]
    runs = tiny["doc"]["runs_per_seed"]["0"]
    for folder, key, tasks in (("lstm_caption", "lstm/caption", ["caption"]),
                               ("vae_reconstruct", "vae/reconstruct", ["reconstruct"]), ("slr", "slr", list(TASKS))):
        info = runs[key]
        ck = load_checkpoint(tiny["work"] / "seed0" / folder / "checkpoint.pt")
        assert ck.extra["global_step"] == info["steps"]
        assert info["best_step"] in ck.extra["best_steps"].values(), (key, ck.extra)
        logged = next(pt for pt in info["curve"] if pt["step"] == info["best_step"])
        again = validation_figures(ck.model, ck.vocab, val, tasks)
        for t in tasks:
            assert again[t]["figure"] == pytest.approx(logged["tasks"][t]["figure"]), (key, t)
            if "MSE" in again[t]:  # the video probe's tie-break: the same weights, the same frames
                assert again[t]["MSE"] == pytest.approx(logged["tasks"][t]["MSE"], rel=1e-4), (key, t)


def test_tiny_run_records_learning_curves_and_draws_them(tiny):
    doc, out, md = tiny["doc"], tiny["out"], tiny["md"]
    for seed, infos in doc["runs_per_seed"].items():
        for key, info in infos.items():
            assert info["curve"], (seed, key)
            for pt in info["curve"]:
                assert pt["step"] % TINY.eval_every == 0 or pt["step"] == info["steps"], (seed, key, pt["step"])
                tasks = [key.split("/")[1]] if "/" in key else list(TASKS)
                assert set(pt["tasks"]) == set(tasks) and 0 <= pt["figure"] <= 1, (seed, key, pt)
            steps = [pt["step"] for pt in info["curve"]]
            assert steps == sorted(set(steps)), (seed, key)
    # the mean curves in results.json are the per-seed figures averaged at each step
    for key in ("slr", "lstm/caption", "vae/sentence_to_video"):
        for pt in doc["curves"][key]:
            at_step = [q for s in ("0", "1") for q in doc["runs_per_seed"][s][key]["curve"] if q["step"] == pt["step"]]
            assert pt["n"] == len(at_step) > 0
            for t, mean in pt["tasks"].items():
                assert mean == pytest.approx(np.mean([q["tasks"][t]["figure"] for q in at_step])), (key, t)
    png = out / "figures" / "learning_curves.png"
    assert doc["learning_curves"] == str(png) and "(figures/learning_curves.png)" in md
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width >= 1200 and im.height >= 600  # 2 x 2 panels


def test_tiny_run_trains_the_star_model_without_the_alignment_term(tiny):
    from model.checkpoint import load_checkpoint

    doc, md, work = tiny["doc"], tiny["md"], tiny["work"] / "seed0"
    lam = {d: load_checkpoint(work / d / "checkpoint.pt").train_config.lambda_align
           for d in ("slr", "slr_ft", "slr_noalign", "lstm_caption", "vae_caption", "vae_reconstruct")}
    assert lam == {"slr": 0.1, "slr_ft": 0.1, "slr_noalign": 0.0, "lstm_caption": 0.0, "vae_caption": 0.0,
                   "vae_reconstruct": 0.0}
    # its own run, full- and partial-model learning, no fine-tuning
    assert load_checkpoint(work / "slr_noalign" / "checkpoint.pt").extra["done_phases"] == ["full", "partial"]
    assert doc["runs_per_seed"]["0"]["slr_noalign"]["phases"] == ["full", "partial"]
    # a different run, not a copy of the S2S+SLR row
    differ = [t for t in TASKS for s in ("0", "1")
              if doc["per_seed"][s]["slr"][t] != doc["per_seed"][s]["slr_noalign"][t]]
    assert differ
    reading_text = section(md, "## Honest reading")
    assert "The alignment term on and off" in reading_text and "Without the alignment term" in reading_text
    assert "Ordering S2S+SLR without alignment > S2S+VAE > LSTM" in reading_text
    verdicts = [v for v in doc["verdicts"] if "align_vs_noalign" in v]
    assert {v["task"] for v in verdicts} == set(TASKS)
    assert "| S2S+SLR, no alignment term (lambda_align 0) | sampled z, KL | 0 |" in md


# ---------------------------------------------------------------- the script, MSVD fixture, tiny

MSVD_COLUMNS = ["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"]
WORDS = [("a man", "plays a guitar"), ("a woman", "slices an onion"), ("a dog", "runs on the grass"),
         ("a cat", "drinks some milk"), ("two boys", "ride bicycles"), ("a girl", "sings a song")]


def write_msvd_fixture(root: Path, n_clips: int = 12, dim: int = 8) -> list[str]:
    """video_corpus.csv (English and one German row per clip) + features/<clip>.npy, as tests/model/test_data.py
    does."""
    rng = np.random.default_rng(0)
    (root / "features").mkdir(parents=True)
    ids = []
    with open(root / "video_corpus.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(MSVD_COLUMNS)
        for k in range(n_clips):
            vid, start, end = f"vid{k:02d}xYz", 3 * k, 3 * k + 5
            who, what = WORDS[k % len(WORDS)]
            for j, text in enumerate((f"{who} {what}", f"{who} is {what.split()[0]}ing", f"someone {what}")):
                w.writerow([vid, start, end, 100 * j + k, "clean", 20, "English", text])
            w.writerow([vid, start, end, 900 + k, "clean", 30, "German", "ein Mann spielt"])
            clip_id = f"{vid}_{start}_{end}"
            shape = (dim,) if k % 2 else (3, dim)  # both (D,) and (Tf, D)
            np.save(root / "features" / f"{clip_id}.npy", rng.normal(size=shape).astype(np.float32))
            ids.append(clip_id)
    return ids


def test_msvd_fixture_runs_the_sentence_tasks_only(tmp_path: Path):
    data = tmp_path / "msvd"
    write_msvd_fixture(data)
    out = tmp_path / "out"
    proc = run_script(["-m", "bench.paper_tables", "--data", "msvd", "--data-dir", str(data), "--size", "tiny",
                       "--seeds", "0", "--no-meteor", "--jobs", "2", "--out", str(out),
                       "--work", str(tmp_path / "work")])
    assert "skipping reconstruct, sentence_to_video" in proc.stdout
    md = (out / "results_msvd.md").read_text()
    doc = json.loads((out / "results_msvd.json").read_text())
    assert doc["meta"]["tasks"] == ["caption", "paraphrase"]
    assert doc["meta"]["skipped_tasks"] == ["reconstruct", "sentence_to_video"]
    assert "**Skipped tasks:** reconstruct, sentence_to_video" in md and "video_output False" in md
    assert "# The paper's tables on the msvd benchmark" in md
    for heading in ("## Table 1/2 style", "## Table 4/5 style", "## Ablation", "## Honest reading"):
        assert heading in md, heading
    assert "## Table 3 style" not in md and "## Table 6 style" not in md
    for heading in ("## Table 1/2 style", "## Table 4/5 style"):
        sec = section(md, heading)
        for label in ROW_LABELS:
            assert label in sec, (heading, label)
        for row in table_rows(sec):
            assert len(CELL.findall(row)) == 4, row  # BLEU@1-4, no attributes on real corpora
    assert "held-out attribute combinations" not in md
    for task in ("caption", "paraphrase"):
        assert (out / "figures" / f"msvd_{task}.png").exists()
    assert not (out / "figures" / "msvd_reconstruct.png").exists()
    assert set(doc["aggregate"]["lstm"]) == {"caption", "paraphrase"}


# ---------------------------------------------------------------- real caption files alone, in the real formats

def write_msvd_captions(root: Path, n_clips: int = 14) -> None:
    """video_corpus.csv as the Microsoft Research Video Description Corpus ships it: one row per description (many
    languages, quoted when a description holds a comma, a few rows without one), YouTube ids with '-' and '_';
    no features folder."""
    root.mkdir(parents=True)
    with open(root / "video_corpus.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(MSVD_COLUMNS)
        for k in range(n_clips):
            vid, start, end = f"-4w_uPCj{k:03d}", 10 * k + 2, 10 * k + 9
            who, what = WORDS[k % len(WORDS)]
            texts = [f"{who.capitalize()} {what}.", f"{who} {what}, slowly", f"Someone {what}",
                     f"{who} {what} outside."]
            for j, text in enumerate(texts):
                source = ("clean", "unverified")[j % 2]
                w.writerow([vid, start, end, 1000 + 10 * k + j, source, 10 + j, "English", text])
            w.writerow([vid, start, end, 2000 + k, "clean", 31, "German", "ein Mann spielt Gitarre"])
            w.writerow([vid, start, end, 3000 + k, "unverified", 5, "English", ""])


def write_msrvtt_captions(root: Path) -> None:
    """train_val_videodatainfo.json and test_videodatainfo.json as MSR-VTT ships them: info, videos (category,
    url, video_id, start time, end time, split train / validate / test, id) and sentences (caption, video_id,
    sen_id, numbered over the whole file and not grouped by video); no features folder."""
    root.mkdir(parents=True)
    info = {"contributor": "Microsoft MSM group", "data_created": "2016-04-14 14:30:20", "version": "1.0",
            "description": "This is 1.0 version of the 2016 MSR-VTT dataset.", "year": "2016"}

    def videos(ids: range, split) -> list[dict]:
        return [{"category": i % 20, "url": f"https://www.youtube.com/watch?v=fixture{i:04d}", "video_id": f"video{i}",
                 "start time": 137.72 + i, "end time": 149.44 + i, "split": split(i), "id": i} for i in ids]

    def sentences(ids: range, first_sen: int) -> list[dict]:
        rows = []
        for n in range(4):  # round-robin over the videos, as the real files interleave them
            for i in ids:
                who, what = WORDS[i % len(WORDS)]
                text = [f"{who} {what}", f"{who} is shown as it {what.split()[0]}", f"there is {who} who {what}",
                        f"{who} {what} in a video"][n]
                rows.append({"caption": text, "video_id": f"video{i}", "sen_id": first_sen + len(rows)})
        return rows

    train_val = {"info": info, "videos": videos(range(12), lambda i: "validate" if i >= 10 else "train"),
                 "sentences": sentences(range(12), 0)}
    test = {"info": info, "videos": videos(range(12, 16), lambda i: "test"), "sentences": sentences(range(12, 16), 48)}
    (root / "train_val_videodatainfo.json").write_text(json.dumps(train_val))
    (root / "test_videodatainfo.json").write_text(json.dumps(test))


@pytest.mark.parametrize("data, splits", [("msvd", {"train": 9, "val": 1, "test": 4}),
                                          ("msrvtt", {"train": 10, "val": 2, "test": 4})])
def test_real_caption_files_alone_give_the_paraphrase_table(tmp_path: Path, data: str, splits: dict):
    root = tmp_path / data
    (write_msvd_captions if data == "msvd" else write_msrvtt_captions)(root)
    out = tmp_path / "out"
    proc = run_script(["-m", "bench.paper_tables", "--data", data, "--data-dir", str(root), "--size", "tiny",
                       "--seeds", "0", "--no-meteor", "--out", str(out), "--work", str(tmp_path / "work")])
    assert "skipping caption, reconstruct, sentence_to_video" in proc.stdout
    md = (out / f"results_{data}.md").read_text()
    doc = json.loads((out / f"results_{data}.json").read_text())
    corpus = doc["meta"]["corpus"]
    assert doc["meta"]["tasks"] == ["paraphrase"] and corpus["meta"]["sentences_only"] is True
    assert corpus["splits"] == splits and "captions only" in corpus["description"]
    assert "no features folder" in md and f"# The paper's tables on the {data} benchmark" in md

    # the paraphrase table, every row with BLEU@1-4 numbers, and they are the json's
    sec = section(md, "## Table 4/5 style")
    rows = table_rows(sec)
    assert [r.split(" |")[0] + " |" for r in rows] == list(ROW_LABELS)
    for row in rows:
        cells = CELL.findall(row)
        assert len(cells) == 4 and all(0 <= float(m) <= 100 for m, _ in cells), row
    bleu1 = doc["aggregate"]["slr"]["paraphrase"]["BLEU@1"]["mean"]
    assert f"| S2S+SLR | {100 * bleu1:.1f} ± 0.0 |" in sec
    for heading in ("## Table 1/2 style", "## Table 3 style", "## Table 6 style"):
        assert heading not in md, heading
    # references are each clip's other English descriptions: no German row, no empty one
    samples = doc["per_seed"]["0"]["lstm"]["paraphrase"]["samples"]
    assert samples and all(s["input"] and "ein Mann" not in s["input"] for s in samples)

    # validated on minus the validation loss (no attributes to read), curves drawn
    curve = doc["runs_per_seed"]["0"]["lstm/paraphrase"]["curve"]
    assert curve and all(p["figure"] == -p["tasks"]["paraphrase"]["loss"] < 0 for p in curve)
    for png in (f"{data}_paraphrase.png", f"{data}_learning_curves.png"):
        assert (out / "figures" / png).exists(), png
