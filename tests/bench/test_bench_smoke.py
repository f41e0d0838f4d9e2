"""bench/load.py and bench/roofline.py end to end on the tiny model, a few seconds each: the JSON shape only
(no timing assertions: this machine is shared). Needs Debian's `wrk`; missing, the load test is skipped here
and CI must install it (.ci/system-deps)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service_fixtures import uvicorn_server

ROOT = Path(__file__).resolve().parents[2]
RESULT_KEYS = {"endpoint", "batching", "concurrency", "seconds", "requests", "rps", "p50_ms", "p95_ms", "p99_ms",
               "max_ms", "errors", "status_503"}


def run_bench(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(shutil.which("wrk") is None and not os.environ.get("CI"), reason="wrk is not installed")
def test_load_quick_json_shape(artifacts_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    endpoints = "encode_miss,encode_hit,caption,paraphrase"
    proc = run_bench(["-m", "bench.load", "--artifacts", str(artifacts_dir), "--quick", "--endpoints", endpoints,
                      "--json", str(out)], timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"machine", "config", "results", "ratios", "cache", "cold_start_s", "rss_mb",
            "memory_runs_mb"} <= set(report)
    rows = report["results"]
    assert {(r["endpoint"], r["batching"], r["concurrency"]) for r in rows} == {
        (e, m, c) for e in endpoints.split(",") for m in ("on", "off") for c in (1, 8)}
    for r in rows:
        assert RESULT_KEYS <= set(r), r
        assert r["requests"] > 0 and r["errors"] == 0, r
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"], r
    assert {(r["endpoint"], r["concurrency"]) for r in report["ratios"]} == {
        (e, c) for e in endpoints.split(",") for c in (1, 8)}
    assert set(report["cache"]) >= {"miss_p50_ms", "hit_p50_ms", "speedup_p50"}
    assert set(report["cold_start_s"]) == {"on", "off"} and all(v > 0 for v in report["cold_start_s"].values())
    assert set(report["rss_mb"]) == {"on", "off"} and len(report["memory_runs_mb"]) == 1
    assert "req/s" in proc.stdout and "batching on / off" in proc.stdout  # the tables
    check_floors(report)
    assert "model floor (tiny-test" in proc.stdout and "of the model floor at batch 1 / 8" in proc.stdout


def check_floors(report: dict) -> None:
    """The decode-only floor and the model's floor (decode + encoder_v + greedy caption, and the familiarity rebuild
    the service adds), and cache-miss /caption as a share of each: present, positive, and adding up."""
    decode = report["decode_floor"]
    assert decode["decode_only_ms"] > 0 and decode["cores"] >= 1
    model = report["model_floor"]
    assert model["version"] == "tiny-test" and model["precision"] == "fp32" and model["cores"] == decode["cores"]
    assert model["prepare_ms"] > 0
    for b in ("batch_1", "batch_8"):
        parts = [model["prepare_ms"], model["encode_ms"][b], model["caption_ms"][b]]
        assert all(x > 0 for x in parts), model
        fam = model["familiarity_ms"][b]  # the tiny model is calibrated and draws video: the service scores it
        assert fam is not None and fam > 0, model
        for key, total in (("without_familiarity", sum(parts)), ("with_familiarity", sum(parts) + fam)):
            floor = model[key][b]
            assert floor["ms"] == pytest.approx(total, abs=0.01), (key, b, model)
            assert floor["floor_clips_per_s"] == pytest.approx(model["cores"] * 1000 / floor["ms"], abs=0.1)
    rows = report["caption_miss_vs_floor"]
    assert {(r["batching"], r["concurrency"]) for r in rows} == {(m, c) for m in ("on", "off") for c in (1, 8)}
    for r in rows:
        assert r["model_floor_counts_familiarity"] is True  # both servers run the default SLR_FAMILIARITY=true
        assert r["share_of_floor"] == pytest.approx(r["rps"] / decode["floor_clips_per_s"], abs=1e-3)
        for b in ("batch_1", "batch_8"):
            share = r[f"share_of_model_floor_{b}"]
            assert share == pytest.approx(r["rps"] / model["with_familiarity"][b]["floor_clips_per_s"], abs=1e-3)
            assert share > 0


def test_roofline_json_shape(artifacts_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "roofline.json"
    proc = run_bench(["-m", "bench.roofline", "--artifacts", str(artifacts_dir), "--batch", "4", "--threads", "1",
                      "--repeats", "2", "--json", str(out)], timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    flops = report["flops"]
    assert flops["encoder_v"] > 0 and flops["sentence_step"] > 0 and flops["one_caption"] > flops["encoder_v"]
    (run,) = report["runs"]
    assert run["threads"] == 1 and run["batch"] == 4
    assert run["achieved_gflops"] > 0 and run["peak_gflops"] > 0 and 0 < run["share_of_peak"]


def test_http_captions_of_the_shipped_model_name_what_real_files_show(redis_url: str, tmp_path: Path) -> None:
    """bench/http_captions.py through a real uvicorn on the shipped model: files by real encoders, 5 formats."""
    env = {"SLR_ARTIFACTS": str(ROOT / "models" / "default"), "SLR_REDIS_URL": redis_url}
    with uvicorn_server(env, tmp_path / "server.log") as base:
        proc = run_bench(["-m", "bench.http_captions", "--url", base, "--per-format", "3", "--size", "120x160"],
                         timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2:7] for line in proc.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| format")}
    assert set(rows) == {"mp4", "webm", "avi", "mov", "gif", "all"}
    clips, colour, shape, motion, _ = (float(x) for x in rows["all"])
    assert clips == 15 and colour >= 70 and shape >= 60 and motion >= 70, proc.stdout


def test_rebuild_compares_the_rebuild_graph_with_the_whole_decoder(sprite_heads_root: Path, artifacts_dir: Path,
                                                                    capsys) -> None:
    from bench import rebuild

    assert rebuild.main(["--artifacts", str(sprite_heads_root), "--rounds", "2", "--calls", "4"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in out.splitlines()
            if line.startswith("| rebuild")}
    assert set(rows) == {"rebuild, video_decoder", "rebuild, video_rebuild"}, out
    assert all(float(v.replace(",", "")) > 0 for cells in rows.values() for v in cells)
    assert "rebuild graph / whole decoder:" in out
    assert rebuild.main(["--artifacts", str(artifacts_dir)]) == 2  # the session's tiny model draws linearly: no graph
    assert "no video_rebuild graph" in capsys.readouterr().err
    assert rebuild.main(["--artifacts", str(sprite_heads_root), "--against", "heads", "--rounds", "1",
                         "--calls", "2"]) == 0
    assert "video_rebuild: heads / heads" in capsys.readouterr().out


def test_stain_compares_versions_on_sentence_to_video(sprite_heads_root: Path, tiny_corpus, tmp_path: Path,
                                                      capsys) -> None:
    from bench import stain

    tiny_corpus.save(tmp_path / "corpus")
    assert stain.main(["--artifacts", str(sprite_heads_root), "--versions", "heads,heads", "--data",
                       str(tmp_path / "corpus"), "--clips", "4"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| heads")]
    assert len(rows) == 2 and rows[0] == rows[1] and 0.0 <= float(rows[0][1]) <= 100.0, rows


def test_redis_parse_measures_both_parsers_through_the_redis_tier() -> None:
    from bench import redis_parse

    figures = redis_parse.measure(ops=20, rounds=2)  # one_round asserts its gets came back from Redis, not the LRU
    assert set(figures) == {"get", "put", "miss"}
    assert all(set(by) == set(redis_parse.PARSERS) and min(by.values()) > 0 for by in figures.values())


def test_hit_cost_measures_both_modes_on_cache_hits(artifacts_dir: Path) -> None:
    from bench import hit_cost

    report = hit_cost.main(["--artifacts", str(artifacts_dir), "--requests", "8", "--rounds", "2",
                            "--concurrency", "4", "--clip", "8x48x64", "--profile", "3"])
    assert len(report["rounds_on"]) == len(report["rounds_off"]) == 2
    assert report["rps_on"] > 0 and set(report["calls_per_request"]) == {"on", "off"}
    for m in ("on", "off"):
        # The kernel accounts the thread and process clocks apart: they may differ by a tick's share.
        assert 0 < report[f"loop_us_{m}"] <= 1.05 * report[f"cpu_us_{m}"] and report[f"verdict_us_{m}"] > 0


def test_hit_cost_over_http_reads_each_servers_cpu(artifacts_dir: Path) -> None:
    from bench import hit_cost

    report = hit_cost.main(["--artifacts", str(artifacts_dir), "--requests", "4", "--rounds", "2",
                            "--concurrency", "2", "--clip", "8x48x64", "--http", "8"])
    http = report["http"]
    assert len(http["cpu_rounds_on"]) == len(http["cpu_rounds_off"]) == 2
    assert http["rps_on"] > 0 and http["rps_off"] > 0 and http["cpu_us_on"] >= 0


def test_decode_files_checks_todays_frames_against_the_in_order_decode(tmp_path: Path, capsys,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench.decode --files`: real files of every container, each one's frames compared with the in-order decode's;
    exit 1 when any differs (checked by making today's path drop a frame's worth of brightness)."""
    import numpy as np

    from bench import decode
    from core import media
    from tests.service_fixtures import encode_clip, moving_square_clip

    for i, fmt in enumerate(media.VIDEO_FORMATS):
        (tmp_path / f"clip{i}.{fmt}").write_bytes(encode_clip(moving_square_clip(40, 48, 64, seed=i), fmt))
    assert decode.main(["--files", str(tmp_path), "--files-repeat", "1"]) == 0
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    assert [int(v) for v in rows["all"]] == [5, 5] and set(rows) >= {f"{fmt}" for fmt in media.VIDEO_FORMATS}
    real = media.decode_video
    monkeypatch.setattr(media, "decode_video", lambda *a: np.maximum(real(*a), 1) - 1)
    assert decode.main(["--files", str(tmp_path), "--files-repeat", "1"]) == 1


def test_preprocess_compares_a_setting_on_the_gates_outside_figures(artifacts_dir: Path, tmp_path: Path,
                                                                    capsys) -> None:
    """`bench.preprocess`: the gate's outside-set figures and the two-object files' under each value of a
    preprocessing setting, on the same files; a setting core does not have is refused."""
    from bench import preprocess
    from model.data.outside_writers import build_outside_set

    build_outside_set(tmp_path, seed=0, n_per_kind=1, quick=True, containers=("mp4", "gif"), two_per_kind=1)
    args = ["--artifacts", str(artifacts_dir), "--files", str(tmp_path), "--setting", "frames.PICTURE_FLOOR=0,1"]
    sheet = tmp_path / "sheet.png"
    # The tiny model learns little: no figure falls by a paired test on 4 files.
    assert preprocess.main([*args, "--sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "| outside.colour |" in out and "| PICTURE_FLOOR=1 |" in out
    assert sheet.exists() or "no sheet" in out
    with pytest.raises(SystemExit):
        preprocess.main([*args[:4], "--setting", "frames.NO_SUCH_SETTING=0,1"])
