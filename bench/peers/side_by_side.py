"""star-slr, BentoML and LitServe serving the same caption work, under the same wrk load, in one run.

    python -m bench.peers --artifacts models/default                    # c=1 and c=32, cache miss and hit
    python -m bench.peers --artifacts models/default --duration 4 --rounds 1 --json /tmp/peers.json

What is compared: POST /caption with a multipart `video` upload answering {"caption": ...}. Every server decodes
the upload with `core.media.prepare_upload` and runs the same ONNX graphs (`service.engine.Engine`): the video
encoder, then greedy sentence decoding. star-slr is started as bench/load.py starts it (uvicorn, uvloop +
httptools, no access log, its default settings: batching on, a private redis-server for the SLR cache, or its
in-process LRU when redis-server is missing). All three open the graphs with the same onnxruntime setting
(--intra-op-threads, star-slr's default 1: on 2 busy cores onnxruntime's own default of a thread per core makes the
encoder and greedy decoding several times slower, which would measure the setting, not the server). The peers
(bentoml_service.py, litserve_server.py) run their framework's batching and keep an in-process dict
sha256(upload) -> mu as their cache: `bentoml` and `litserve` with one worker (every run before 2026-12-08),
`litserve-per-core` with an inference worker per core (the better peer on a cache miss since). `litserve-per-core-score`
is a design, not a peer: star-slr's whole miss, the familiarity signals included, in LitServe's per-core workers.

The load is bench/load.py's: wrk -t1 with bench/lua/post.lua, endpoints `caption` (a unique upload per request,
by rewriting bytes the decoder ignores: every request misses the cache) and `caption_hit` (the same upload, primed
once: every request hits). req/s counts answers with a 2xx status only; errors (socket errors, timeouts,
non-2xx answers) are counted apart. All servers run side by side and every cell (endpoint x concurrency) is measured on
each server right after the others, the order rotated each round, so the ratios hold while the machine's other
load drifts; with --rounds > 1 a cell's figures are the median over its rounds. While one server is measured every
other one is stopped (SIGSTOP, continued after; --no-pause-others to leave them running): an idle LitServe polls its
queues, which would tax the one measured. Before the sweep each server captions the benchmark clip once and the
captions must be equal (same work), and each server's idle CPU is measured.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load import Runner, busy_processes, machine_info, private_redis, run_wrk, start_server, to_result, write_json
from bench.load_targets import BOUNDARY, build_targets, multipart
from bench.support import (
    SETTLE_S,
    clip_shape,
    free_port,
    make_clip,
    mib,
    proc_stat,
    process_state,
    process_tree,
    rss_kib,
    settle,
)
from core.tables import md_table

ROOT = Path(__file__).resolve().parents[2]
# LitServe's servers: (inference workers, 0 for one per core; star-slr's familiarity signals too). Plain litserve
# keeps the one worker of every run before 2026-12-08; litserve-per-core-score is not a peer but a design: star-slr's
# whole miss, the familiarity score included, done in LitServe's per-core workers.
LITSERVE = {"litserve": (1, False), "litserve-per-core": (0, False), "litserve-per-core-score": (0, True)}
PEER_PACKAGE = {"bentoml": "bentoml", **{name: "litserve" for name in LITSERVE}}
DESIGNS = ("litserve-per-core-score",)  # measured beside the servers, never "the better peer"
# star-slr as it was before its decode processes (SLR_DECODE_PROCESSES=0: uploads decoded in its media threads), and
# without the familiarity score (which the peers do not compute), measured beside today's default so each difference
# is a ratio from one run; they are not peers.
OWN_VARIANTS = {"star-slr": {}, "star-slr-score-off": {"SLR_FAMILIARITY": "false"},
                "star-slr-threads": {"SLR_DECODE_PROCESSES": "0"}, "star-slr-per-core": {"SLR_DECODE_PROCESSES": "1"}}
# star-slr-per-core: uvicorn's own --workers, a serving process (engine and one decode process) per core, as
# litserve-per-core runs an inference worker per core; each keeps its own LRU in front of the one Redis.
OWN_ARGS = {"star-slr-per-core": ("--workers", str(os.cpu_count() or 1))}
SERVERS = (*OWN_VARIANTS, "bentoml", *LITSERVE)  # the tables' order
ENDPOINTS = ("caption", "caption_hit")
MODE = {"caption": "cache miss", "caption_hit": "cache hit"}
CACHE = {**{name: "Redis (private redis-server)" for name in OWN_VARIANTS}, "star-slr-lru": "in-process LRU",
         **{name: "in-process dict" for name in PEER_PACKAGE}}


# ---------------------------------------------------------------- the servers

@dataclass
class Running:
    name: str
    url: str
    pid: int
    cold_start_s: float
    log: Path


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _wait_ok(url: str, proc: subprocess.Popen, timeout_s: float, log: Path) -> float:
    start = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}; see {log}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError):
            if _get(url, timeout=1) == 200:
                return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"{url} not ready after {timeout_s} s; see {log}")
        time.sleep(0.05)


def _stop_group(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM to the server's own process group (it was started in a new session: the supervisor and its
    workers), then SIGKILL to what is left after the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def peer_command(name: str, port: int) -> tuple[list[str], str]:
    """The command line that serves peer `name` on 127.0.0.1:port, and the path that answers 200 once ready."""
    if name == "bentoml":
        return [sys.executable, "-m", "bentoml", "serve", "bench.peers.bentoml_service:Caption", "--host",
                "127.0.0.1", "--port", str(port)], "/readyz"
    if name in LITSERVE:
        workers, score = LITSERVE[name]
        return [sys.executable, "-m", "bench.peers.litserve_server", "--port", str(port), "--workers",
                str(workers or os.cpu_count() or 1), *(["--score"] if score else [])], "/health"
    raise ValueError(f"unknown peer {name!r}")


@contextlib.contextmanager
def start_peer(name: str, artifacts: Path, log_path: Path, env: dict[str, str] | None = None,
               timeout_s: float = 180.0) -> Iterator[Running]:
    """Peer `name` (bentoml | litserve) on a free port, yielded once its readiness path answers 200."""
    port = free_port()
    cmd, ready = peer_command(name, port)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "SLR_ARTIFACTS": str(Path(artifacts).resolve()),
                "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_ok(url + ready, proc, timeout_s, log_path)
        yield Running(name, url, proc.pid, time.monotonic() - start, log_path)
    finally:
        _stop_group(proc)


@contextlib.contextmanager
def alone(servers: dict[str, Running], name: str, pause: bool = True) -> Iterator[None]:
    """Server `name` alone on the machine: every other server's processes stopped (SIGSTOP) while it is measured,
    continued after. An idle LitServe polls its queues (0.1-0.3 cores here), which would tax whichever server is
    measured beside it."""
    stopped = [p for other, s in servers.items() if other != name for p in process_tree(s.pid)] if pause else []
    for p in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGSTOP)
    deadline = time.monotonic() + 2.0  # a signal is taken when the process next runs: wait until each has stopped
    while any(process_state(p) not in ("T", "") for p in stopped) and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        for p in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGCONT)


# ---------------------------------------------------------------- CPU and memory of a process tree

def cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(ValueError, IndexError):  # utime and stime, in clock ticks
            fields = proc_stat(p)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def idle_cpu(servers: dict[str, Running], seconds: float) -> dict[str, float]:
    """Share of one core each server's process tree uses while nobody sends it anything."""
    before = {n: cpu_seconds(s.pid) for n, s in servers.items()}
    time.sleep(seconds)
    return {n: round((cpu_seconds(s.pid) - before[n]) / seconds, 3) for n, s in servers.items()}


# ---------------------------------------------------------------- one caption each

def caption_once(url: str, clip: bytes) -> str:
    body, _ = multipart({}, "video", "clip.mp4", clip)
    req = urllib.request.Request(url + "/caption", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["caption"]


# ---------------------------------------------------------------- the sweep and its table

@dataclass
class Cell:
    endpoint: str
    concurrency: int
    server: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors, timeouts and non-2xx answers (wrk)
    requests: int  # answered, errors included; rps counts the 2xx answers only
    error_kinds: dict[str, int]
    status_503: int


def summarise(cells: list[Cell]) -> list[dict[str, Any]]:
    """Median over rounds per (endpoint, concurrency, server); star-slr's req/s over each server's."""
    groups: dict[tuple[str, int, str], list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.endpoint, c.concurrency, c.server), []).append(c)
    rows = []
    for (endpoint, conc, server), cs in groups.items():
        rows.append({"endpoint": endpoint, "mode": MODE[endpoint], "concurrency": conc, "server": server,
                     "rounds": len(cs), "rps": round(statistics.median(c.rps for c in cs), 1),
                     "p50_ms": round(statistics.median(c.p50_ms for c in cs), 1),
                     "p99_ms": round(statistics.median(c.p99_ms for c in cs), 1),
                     "errors": sum(c.errors for c in cs), "requests": sum(c.requests for c in cs)})
    by = {(r["endpoint"], r["concurrency"], r["server"]): r for r in rows}
    for r in rows:
        star = by.get((r["endpoint"], r["concurrency"], "star-slr"))
        r["star_over_this_rps"] = round(star["rps"] / r["rps"], 2) if star and r["rps"] else None
        r["star_over_this_p99"] = round(star["p99_ms"] / r["p99_ms"], 2) if star and r["p99_ms"] else None
    return rows


def leads(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell: star-slr against the better peer (by req/s)."""
    out = []
    for endpoint in ENDPOINTS:
        for conc in sorted({r["concurrency"] for r in rows}):
            cell = [r for r in rows if r["endpoint"] == endpoint and r["concurrency"] == conc]
            star = next((r for r in cell if r["server"] == "star-slr"), None)
            peers = [r for r in cell if r["server"] not in OWN_VARIANTS and r["server"] not in DESIGNS]
            if star is None or not peers:
                continue
            best = max(peers, key=lambda r: r["rps"])
            out.append({"endpoint": endpoint, "mode": MODE[endpoint], "concurrency": conc, "best_peer": best["server"],
                        "rps_ratio": round(star["rps"] / best["rps"], 2) if best["rps"] else None,
                        "p99_ratio": round(star["p99_ms"] / best["p99_ms"], 2) if best["p99_ms"] else None})
    return out


def markdown(rows: list[dict[str, Any]], cache: dict[str, str]) -> str:
    order = {s: i for i, s in enumerate(SERVERS)}
    rows = sorted(rows, key=lambda r: (ENDPOINTS.index(r["endpoint"]), r["concurrency"], order.get(r["server"], 9)))
    return "\n".join(md_table(
        ["mode", "conc.", "server", "cache", "req/s", "p50 ms", "p99 ms", "errors", "star-slr req/s ÷"],
        [[r["mode"], r["concurrency"], r["server"], cache.get(r["server"], ""), f"{r['rps']:.1f}", f"{r['p50_ms']:.1f}",
          f"{r['p99_ms']:.1f}", r["errors"],
          "" if r["server"] == "star-slr" else f"{r['star_over_this_rps']:.2f}x" if r["star_over_this_rps"] else "-"]
         for r in rows], right=True))


def lead_table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(md_table(["mode", "conc.", "better peer", "star-slr req/s ÷ its", "star-slr p99 ÷ its"],
                              [[r["mode"], r["concurrency"], r["best_peer"], f"{r['rps_ratio']}x", f"{r['p99_ratio']}x"]
                               for r in rows], right=True))


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", type=Path, required=True, help="artifacts root every server loads")
    p.add_argument("--servers", default="star-slr,bentoml,litserve,litserve-per-core",
                   help=f"comma-separated subset of {','.join(SERVERS)}")
    p.add_argument("--endpoints", default=",".join(ENDPOINTS), help="caption (cache miss), caption_hit (cache hit)")
    p.add_argument("--concurrency", default="1,32")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of measured load per cell and server")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each measurement")
    p.add_argument("--rounds", type=int, default=2, help="measurements per cell and server (median; order rotated)")
    p.add_argument("--clip", default="48x240x320",
                   help="benchmark upload: FRAMESxHEIGHTxWIDTH of an H.264 mp4 (default: the 48-frame 320x240 clip of "
                        "issue 35's harness; before 2026-12-06 16x72x128)")
    p.add_argument("--timeout", type=float, default=10.0, help="wrk request timeout (s); slower answers are errors")
    p.add_argument("--idle", type=float, default=3.0, help="seconds over which each server's idle CPU is measured")
    p.add_argument("--no-pause-others", dest="pause_others", action="store_false",
                   help="leave the other servers running while one is measured (before 2026-12-08 they ran: an idle "
                        "LitServe's polling taxed the server measured)")
    p.add_argument("--intra-op-threads", type=int, default=1,
                   help="onnxruntime threads per graph call, the same for all three (SLR_INTRA_OP_THREADS; star-slr's "
                        "default 1; 0: onnxruntime's default, a thread per core)")
    p.add_argument("--json", help="also write every figure as JSON to this file ('-': stdout, tables to stderr)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    names = [s for s in args.servers.split(",") if s]
    for n in names:
        if n not in SERVERS:
            raise SystemExit(f"unknown server {n!r}; choose from {SERVERS}")
        if n not in OWN_VARIANTS:
            with contextlib.suppress(ImportError):
                __import__(PEER_PACKAGE[n])
                continue
            raise SystemExit(f"{n} is not installed: pip install -e '.[peers]'")
    endpoints = [e for e in args.endpoints.split(",") if e]
    levels = [int(c) for c in args.concurrency.split(",") if c]
    out = sys.stderr if args.json == "-" else sys.stdout
    def log(msg):
        print(msg, file=out, flush=True)
    frames, height, width = clip_shape(args.clip)
    versions = {}
    for mod in ("bentoml", "litserve", "onnxruntime", "uvicorn", "fastapi"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    report: dict[str, Any] = {
        "machine": {**machine_info(), **versions}, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": os.getloadavg(), "busy_before": busy_processes({os.getpid()}),
        "config": {"servers": names, "endpoints": endpoints, "concurrency": levels, "duration_s": args.duration,
                   "warmup_s": args.warmup, "rounds": args.rounds, "artifacts": str(args.artifacts),
                   "intra_op_threads": args.intra_op_threads,
                   "clip": {"frames": frames, "height": height, "width": width}},
        "cold_start_s": {}, "idle_cpu_cores": {}, "rss_mb": {}, "captions": {}, "cells": [],
        "others_paused": args.pause_others}
    cells: list[Cell] = []
    cache = dict(CACHE)
    with tempfile.TemporaryDirectory(prefix="slr-peers-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        clip = make_clip(frames, height, width)
        targets = build_targets(work, clip)
        words_file = work / "words.txt"
        words_file.write_text("a\n")
        runner = Runner(targets, words_file, 1, args.timeout, log)
        log(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; load average "
            f"{report['loadavg_before'][0]:.2f}; clip {frames}x{height}x{width} mp4 ({len(clip)} bytes)")
        servers: dict[str, Running] = {}
        engine_env = {"SLR_INTRA_OP_THREADS": str(args.intra_op_threads)}
        for name in names:  # started one after the other: each cold start is its own
            if name in OWN_VARIANTS:
                redis_url = stack.enter_context(private_redis())
                if not redis_url:
                    cache[name] = CACHE["star-slr-lru"]
                env = {"SLR_LOG_LEVEL": "warning", "SLR_REDIS_URL": redis_url, **engine_env, **OWN_VARIANTS[name]}
                srv = stack.enter_context(start_server(args.artifacts, env, work / f"{name}.log",
                                                       OWN_ARGS.get(name, ())))
                servers[name] = Running(name, srv.url, srv.pid, srv.cold_start_s, work / f"{name}.log")
            else:
                servers[name] = stack.enter_context(start_peer(name, args.artifacts, work / f"{name}.log",
                                                                    engine_env))
            report["cold_start_s"][name] = round(servers[name].cold_start_s, 2)
            log(f"{name}: ready in {servers[name].cold_start_s:.1f} s at {servers[name].url} "
                f"(RSS {mib(rss_kib(servers[name].pid, tree=True)):.0f} MiB)")
        for name, s in servers.items():
            report["captions"][name] = caption_once(s.url, clip)
        distinct = set(report["captions"].values())
        log(f"captions of the benchmark clip: {report['captions']}"
            + ("" if len(distinct) == 1 else "  <- NOT EQUAL: the servers do not do the same work"))
        report["captions_equal"] = len(distinct) == 1
        report["idle_cpu_cores"] = idle_cpu(servers, args.idle)
        log(f"idle CPU (cores) over {args.idle:.0f} s: {report['idle_cpu_cores']}")

        order = list(servers)
        turn = 0
        for endpoint in endpoints:
            target = targets[endpoint]
            for c in levels:
                for rnd in range(args.rounds):
                    for name in order[turn % len(order):] + order[:turn % len(order)]:
                        url = servers[name].url
                        with alone(servers, name, args.pause_others):
                            if target.prime:
                                runner.prime(url, target)
                            if args.warmup > 0:
                                run_wrk(url, target, c, args.warmup, runner.next_nonce(), words_file, 1,
                                        args.timeout)
                            raw = run_wrk(url, target, c, args.duration, runner.next_nonce(), words_file, 1,
                                          args.timeout)
                        r = to_result(endpoint, name, c, raw)
                        ok_rps = round((r.requests - r.errors) / r.seconds, 1) if r.seconds else 0.0
                        cells.append(Cell(endpoint, c, name, rnd, ok_rps, r.p50_ms, r.p99_ms, r.max_ms, r.errors,
                                          r.requests, raw["errors"], raw.get("status_503", 0)))
                        log(f"  {MODE[endpoint]:<10} c={c:<3} round {rnd + 1} {name:<9} {ok_rps:8.1f} req/s  "
                            f"p50 {r.p50_ms:7.1f}  p99 {r.p99_ms:7.1f} ms  errors {r.errors}")
                    turn += 1
        report["rss_sweep_end_mb"] = {n: mib(rss_kib(s.pid, tree=True)) for n, s in servers.items()}
        settle()  # every server equally quiet: star-slr has trimmed its heaps (bench.support.SETTLE_S)
        report["rss_mb"] = {n: mib(rss_kib(s.pid, tree=True)) for n, s in servers.items()}
        for name, s in servers.items():
            with contextlib.suppress(OSError):
                tail = s.log.read_text(errors="replace")[-3000:]
                if "Traceback" in tail:
                    report.setdefault("server_log_tail", {})[name] = tail

    report["cells"] = [asdict(c) for c in cells]
    report["rows"] = rows = summarise(cells)
    report["leads"] = leads(rows)
    report["cache"] = {n: cache[n] for n in names}
    report["loadavg_after"] = os.getloadavg()
    report["busy_after"] = busy_processes({os.getpid()})
    report["markdown"] = markdown(rows, cache)
    log("\n" + report["markdown"])
    if report["leads"]:
        log("\nstar-slr against the better peer\n" + lead_table(report["leads"]))
    log(f"\ncold start (spawn to ready): {report['cold_start_s']} s; idle CPU: {report['idle_cpu_cores']} cores; "
        f"RSS after the sweep (process trees, read once quiet {SETTLE_S} s): {report['rss_mb']} MiB; straight after "
        f"its last cell: {report['rss_sweep_end_mb']} MiB")
    log(f"load average before {report['loadavg_before'][0]:.2f}, after {report['loadavg_after'][0]:.2f}; "
        f"other busy processes: before {report['busy_before']}, after {report['busy_after']}")
    write_json(report, args.json)
    return report
