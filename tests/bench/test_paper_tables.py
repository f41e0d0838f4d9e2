"""bench/paper_tables.py end to end at --size tiny (seconds; the numbers mean nothing, only their shape is
checked), its aggregation and reading on hand-made numbers, and the --data msvd path on fixture files."""
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

from bench.paper.reading import reading
from bench.paper.stats import aggregate, aggregate_tree, compare, is_real

ROOT = Path(__file__).resolve().parents[2]
CELL = re.compile(r"(-?\d+\.\d) ± (\d+\.\d)")
ROW_LABELS = ("| LSTM |", "| S2S+VAE |", "| S2S+SLR, full-model learning only |", "| S2S+SLR |",
              "| S2S+SLR + task fine-tuning (video-to-sentence) |")


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


# ---------------------------------------------------------------- the script, synthetic, tiny

def test_tiny_run_writes_every_table_row_and_figure(tmp_path: Path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = run_script(["-m", "bench.paper_tables", "--size", "tiny", "--seeds", "0", "1", "--no-meteor",
                       "--out", str(out), "--work", str(work)])
    assert "estimated total for 2 seed(s)" in proc.stdout  # the plan comes first
    md = (out / "results.md").read_text()
    doc = json.loads((out / "results.json").read_text())

    # provenance
    for needle in ("Command: `python -m bench.paper_tables --size tiny --seeds 0 1 --no-meteor", "Seeds: 0, 1",
                   "Wall time:", "Machine:", "CPUs", "torch ", "splits train", "METEOR: off"):
        assert needle in md, needle
    assert doc["meta"]["seeds"] == [0, 1] and doc["meta"]["machine"]["cpu_count"] == os.cpu_count()
    assert doc["meta"]["corpus"]["splits"]["test"] == doc["meta"]["test_clips"] > 0

    # every table with every row, and every cell a parseable 'mean ± std'
    caption, unseen = section(md, "## Table 1/2 style").split("held-out attribute combinations")
    tables = [(caption, 8),  # BLEU@1-4 + colour, shape, motion, all three (no METEOR)
              (unseen, 4),  # colour, shape, motion, all three on the held-out combinations
              (section(md, "## Table 3 style"), 1),  # MSE
              (section(md, "## Table 4/5 style"), 8),
              (section(md, "## Table 6 style"), 3)]  # MSE, probe colour, probe motion
    for text, cols in tables:
        for label in ROW_LABELS:
            assert label in text, (text[:40], label)
        rows = table_rows(text)
        assert len(rows) >= len(ROW_LABELS)
        for row in rows:
            cells = CELL.findall(row)
            assert len(cells) == (2 if row.startswith("| (the probe on the ground-truth") else cols), row
            assert all(float(m) >= 0 and float(sd) >= 0 for m, sd in cells), row
    ablation = section(md, "## Ablation")
    for task in ("video-to-sentence", "sentence-to-sentence", "video-to-video", "sentence-to-video"):
        assert f"| {task} |" in ablation, task
    assert all(len(CELL.findall(r)) == 2 for r in table_rows(ablation))
    # model.star.total_loss takes a video-only phase: no lambda_sentence = 0 workaround, no note, no flag
    assert "lambda_sentence = 0" not in md and "video_baseline_workaround" not in doc["meta"]
    reading_text = section(md, "## Honest reading")
    assert "holds beyond the spread in" in reading_text and "Ordering S2S+SLR > S2S+VAE > LSTM" in reading_text

    # the json's aggregate is the mean / sample std of its per-seed numbers, and the table shows it
    for model, task, key in (("slr", "reconstruct", "MSE"), ("lstm", "sentence_to_video", "MSE"),
                             ("vae", "caption", "BLEU@1"), ("slr_full", "paraphrase", "BLEU@1")):
        vals = [doc["per_seed"][s][model][task][key] for s in ("0", "1")]
        agg = doc["aggregate"][model][task][key]
        assert agg["mean"] == pytest.approx(np.mean(vals)) and agg["std"] == pytest.approx(np.std(vals, ddof=1))
    mse = doc["aggregate"]["slr"]["reconstruct"]["MSE"]
    assert f"| S2S+SLR | {mse['mean']:.1f} ± {mse['std']:.1f} |" in section(md, "## Table 3 style")

    # figures: one per task, real PNGs, linked from results.md
    for task in ("caption", "paraphrase", "reconstruct", "sentence_to_video"):
        png = out / "figures" / f"{task}.png"
        assert png.exists(), png
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 100
        assert f"(figures/{task}.png)" in md
    # checkpoints of every model of every seed are kept under --work
    for seed in (0, 1):
        for d in ("slr_full", "slr", "slr_ft", "lstm_caption", "vae_sentence_to_video"):
            assert (work / f"seed{seed}" / d / "checkpoint.pt").exists()


# ---------------------------------------------------------------- the script, MSVD fixture, tiny

MSVD_COLUMNS = ["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"]
WORDS = [("a man", "plays a guitar"), ("a woman", "slices an onion"), ("a dog", "runs on the grass"),
         ("a cat", "drinks some milk"), ("two boys", "ride bicycles"), ("a girl", "sings a song")]


def write_msvd_fixture(root: Path, n_clips: int = 12, dim: int = 8) -> list[str]:
    """video_corpus.csv (English and one German row per clip) + features/<clip>.npy, as tests/model/test_data.py does."""
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
    proc = run_script(["bench/paper_tables.py", "--data", "msvd", "--data-dir", str(data), "--size", "tiny",
                       "--seeds", "0", "--no-meteor", "--jobs", "2", "--out", str(out), "--work", str(tmp_path / "work")])
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
