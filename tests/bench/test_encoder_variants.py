"""bench/encoder_variants.py on the tiny model and generated clips: every variant is derived, timed and scored, and
the verdict follows the figures (no timing assertions: this machine is shared)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.encoder_variants import FP32, rotated, verdict


def test_rounds_rotate_which_graph_runs_first() -> None:
    items = {"a": 1, "b": 2, "c": 3}
    assert [[k for k, _ in rotated(items, r)] for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"],
                                                                     ["c", "a", "b"], ["a", "b", "c"]]


def test_encoder_variants_prints_and_writes_every_figure(artifacts_dir: Path, tmp_path: Path, capsys) -> None:
    from bench.encoder_variants import main

    out = tmp_path / "variants.json"
    report = main(["--artifacts", str(artifacts_dir), "--variants", "int8-static,optimized", "--clips", "48",
                   "--calibration-clips", "32", "--rounds", "2", "--floor-clip", "8x36x64", "--floor-rounds", "1",
                   "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["source_version"] == "tiny-test" and report["test_clips"] == 48
    assert set(report["variants"]) == {FP32, "int8-static", "optimized"}
    for b in ("batch_1", "batch_8"):
        assert set(report["time_ms"][b]) == set(report["variants"]) and min(report["time_ms"][b].values()) > 0
    fp32 = report["variants"][FP32]
    assert fp32["same_caption_as_fp32"] == 1.0 and fp32["max_abs_diff_mu"] == 0.0
    assert fp32["precision"] == "fp32"
    assert report["variants"]["int8-static"]["precision"] == "fp32+int8-static:encoder_v"
    for name, r in report["variants"].items():
        syn = r["synthetic"]["all_clips"]
        assert syn["n"] == 48 and all(0 <= syn[a] <= 100 for a in ("colour", "shape", "motion", "all"))
        assert syn["all"] <= min(syn["colour"], syn["shape"], syn["motion"])
        assert 0 <= r["flagged_pct"] <= 100
        if name != FP32:
            assert set(r["verdict"]) == {"falls", "closest", "alpha", "faster_at_every_batch", "passes"}
    floors = report["model_floor"]
    assert set(floors) == set(report["variants"])
    for f in floors.values():
        assert f["prepare_ms"] > 0 and f["encode_ms_batch_1"] > 0
        assert f["floor_with_familiarity_ms_batch_1"] > f["floor_ms_batch_1"] > f["prepare_ms"]  # sums of parts
    # An fp32 rewrite gives the same latent and so the same captions.
    assert report["variants"]["optimized"]["max_abs_diff_mu"] < 1e-4
    assert report["variants"]["optimized"]["synthetic"] == fp32["synthetic"]
    printed = capsys.readouterr().out
    assert "| variant" in printed and "int8-static" in printed and "optimized" in printed


def outcomes(shape_lost: int, shape_won: int = 0, n: int = 596) -> dict[str, list[bool]]:
    """fp32 right on 80% of n clips for shape; the variant loses `shape_lost` of those and wins `shape_won` others."""
    right = [i < int(0.8 * n) for i in range(n)]
    shape = [(ok and i >= shape_lost) or (not ok and i < int(0.8 * n) + shape_won) for i, ok in enumerate(right)]
    return {"synthetic all_clips colour": right, "synthetic all_clips shape": shape}


@pytest.mark.parametrize(("lost", "won", "ms", "passes", "falls"), [
    (0, 0, 1.0, True, 0),
    (3, 0, 1.0, True, 0),  # 3 clips of 596 (0.5 points): p = 1/8, noise
    (9, 3, 1.0, True, 0),  # 1 point net, with flips both ways: p 0.07
    (10, 1, 1.0, False, 1),  # a real loss: p 0.006
    (0, 12, 1.0, True, 0),  # better is no fall
    (0, 0, 2.5, False, 0),  # slower at one batch size
    (0, 0, 1.9, False, 0),  # 1.05x: within what identical graphs read apart
])
def test_verdict_refuses_a_paired_fall_and_a_slower_encoder(lost: int, won: int, ms: float, passes: bool,
                                                             falls: int) -> None:
    times = {"batch_1": {FP32: 2.0, "v": 1.0}, "batch_8": {FP32: 2.0, "v": ms}}
    v = verdict(outcomes(lost, won), outcomes(0), times, "v")
    assert v["passes"] is passes and len(v["falls"]) == falls, v
    assert v["closest"].startswith("synthetic all_clips shape" if lost else "synthetic all_clips ")
    if falls:
        assert "10 clips lost, 1 won of 596" in v["falls"][0]
