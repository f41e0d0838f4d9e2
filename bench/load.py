"""Load benchmark of the HTTP service: requests/s, p50/p95/p99 latency and errors per endpoint and concurrency,
batching on and off in the same run, cache hit vs miss, cold start and memory.

    python -m bench.load --artifacts /tmp/a                      # starts the service itself (twice: batching on, off)
    python -m bench.load --artifacts /tmp/a --quick              # a smoke run of a few seconds per mode
    python -m bench.load --url http://127.0.0.1:8000             # a running service (one mode, no memory/cold start)
    python -m bench.load ... --json out.json                     # also write every figure as JSON ('-': stdout)

The load comes from `wrk` (Debian package `wrk`), a compiled closed-loop generator: -c N connections each send
the next request as soon as the last answer arrives, so N is the concurrency. A Python client would measure
itself, not the server (see DESIGN.md, "Measuring a server on this machine"). bench/lua/post.lua builds the
requests: the same multipart upload or JSON body every time (cache hits after the first), or one made unique
per request (cache misses) by rewriting bytes the decoder ignores. Its done() prints the run as JSON.

Endpoints (name: what each request costs the server):
  encode_miss        POST /encode, a new mp4 each request: multipart, decode, encoder
  encode_hit         POST /encode, the same mp4 each request: multipart, sha256, cache lookup
  caption            POST /caption, a new mp4 each request: decode, encoder, greedy sentence decoding
  caption_hit        POST /caption, the same mp4: cache hit, greedy sentence decoding
  paraphrase         POST /paraphrase JSON, a new sentence each request: sentence encoder, 1 + 3 decoded sentences
  reconstruct        POST /reconstruct, a new mp4 each request: decode, encoder, video decoder, GIF encoding
  sentence_to_video  POST /sentence-to-video JSON, a new sentence: sentence encoder, video decoder, GIF encoding

Beside the results it prints two floors of cache-miss /caption, measured in the same run: PyAV decoding the upload
alone, and the model's own work per clip with the service's engine (decode, sample and scale, encoder_v, greedy
caption, and the familiarity rebuild the service adds to every cache miss), with the measured req/s as a share of
each (with --artifacts only).

wrk and the service share the machine's cores (-t1: one wrk thread); the figures include that cost. With
batching on and off, both services run side by side and each measurement on one is followed by the same on the
other, so the ratios hold while background load drifts.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load_floors import decode_floor, floor_share_line, model_floor, model_floor_lines
from bench.load_targets import Target, build_targets, vocabulary_words
from bench.support import (
    SETTLE_S,
    Server,
    clip_shape,
    http_post,
    make_clip,
    mib,
    redis_installed,
    redis_server,
    rss_kib,
    settle,
    uvicorn_server,
)
from core.manifest import ArtifactError, Manifest, resolve_version_dir
from core.tables import md_table

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lua" / "post.lua"

ENDPOINTS = ("encode_miss", "encode_hit", "caption", "caption_hit", "paraphrase", "reconstruct", "sentence_to_video")
CONCURRENCY = (1, 8, 32, 64)
Log = Callable[[str], None]  # where progress lines and tables go


# ---------------------------------------------------------------- request bodies

# ---------------------------------------------------------------- the service and its machine

def busy_processes(exclude: set[int], min_cpu: float = 20.0) -> list[str]:
    """Other processes using CPU now (ps), so a report can say whether the machine was busy."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True,
                             timeout=5).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out[:15]:
        pid, cpu, comm = line.split(None, 2)
        if int(pid) not in exclude and float(cpu) >= min_cpu and comm not in ("ps", "wrk"):
            busy.append(f"{comm} ({cpu}% cpu)")
    return busy


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        mem_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    wrk_version = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    versions = {}
    for mod in ("onnxruntime", "uvicorn", "fastapi"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "wrk": wrk_version, **versions}


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway redis-server (empty cache, nothing shared); falls back to no Redis (in-process LRU) if missing."""
    if not redis_installed():
        yield ""
        return
    with redis_server() as (_, url):
        yield url


@contextlib.contextmanager
def start_server(artifacts: Path, env: dict[str, str], log_path: Path,
                 extra_args: tuple[str, ...] = ()) -> Iterator[Server]:
    """uvicorn with the app factory (uvloop + httptools, no access log, any `extra_args` of uvicorn's), timed from
    spawn to /readyz 200."""
    args = ("--no-access-log", "--loop", "uvloop", "--http", "httptools", *extra_args)
    with uvicorn_server({"SLR_ARTIFACTS": str(artifacts), **env}, log_path, timeout_s=120, extra_args=args) as server:
        yield server


# ---------------------------------------------------------------- wrk runs

@dataclass
class Result:
    endpoint: str
    batching: str  # on | off | "" (a given URL)
    concurrency: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors, timeouts and non-2xx answers
    status_503: int
    detail: dict[str, Any] = field(default_factory=dict)


def run_wrk(url: str, target: Target, concurrency: int, seconds: float, nonce: str, words_file: Path,
            n_words: int, timeout_s: float) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", f"--timeout={int(timeout_s)}s",
           "-s", str(LUA), url + target.path, "--", *target.lua_args(nonce, words_file, n_words)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    raise RuntimeError(f"wrk printed no WRKJSON line (rc {out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")


def to_result(endpoint: str, batching: str, concurrency: int, raw: dict[str, Any]) -> Result:
    seconds = raw["duration_us"] / 1e6
    errs = raw["errors"]
    errors = errs["connect"] + errs["read"] + errs["write"] + errs["timeout"] + errs["status"]
    lat = raw["latency_us"]
    ms = lambda us: round(us / 1000.0, 2)  # noqa: E731
    return Result(endpoint, batching, concurrency, round(seconds, 2), raw["requests"],
                  round(raw["requests"] / seconds if seconds else 0.0, 1), ms(lat["p50"]), ms(lat["p95"]),
                  ms(lat["p99"]), ms(lat["max"]), errors, raw.get("status_503", 0), raw)


class Runner:
    def __init__(self, targets: dict[str, Target], words_file: Path, n_words: int, timeout_s: float,
                 log: Log) -> None:
        self.targets, self.words_file, self.n_words, self.timeout_s, self.log = targets, words_file, n_words, \
            timeout_s, log
        self.nonce = random.randrange(256)

    def next_nonce(self) -> str:
        self.nonce = (self.nonce + 1) % 256
        return f"{self.nonce:02x}"

    def prime(self, url: str, target: Target) -> None:
        status = http_post(url + target.path, target.body_file.read_bytes(), target.content_type)
        if status != 200:
            raise SystemExit(f"{target.path} answered {status} to the priming request")

    def run(self, url: str, endpoint: str, batching: str, concurrency: int, seconds: float,
            warmup_s: float) -> Result:
        target = self.targets[endpoint]
        if target.prime:
            self.prime(url, target)
        if warmup_s > 0:
            run_wrk(url, target, concurrency, warmup_s, self.next_nonce(), self.words_file, self.n_words,
                    self.timeout_s)
        raw = run_wrk(url, target, concurrency, seconds, self.next_nonce(), self.words_file, self.n_words,
                      self.timeout_s)
        r = to_result(endpoint, batching, concurrency, raw)
        self.log(f"  {endpoint:<18} batching {batching or '-':<3} c={concurrency:<3} {r.rps:8.1f} req/s  "
                 f"p50 {r.p50_ms:7.1f}  p95 {r.p95_ms:7.1f}  p99 {r.p99_ms:7.1f} ms  errors {r.errors}")
        return r


# ---------------------------------------------------------------- tables

def results_table(results: list[Result]) -> str:
    rows = [[r.endpoint, r.batching or "-", r.concurrency, f"{r.rps:.1f}", f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}",
             f"{r.p99_ms:.1f}", r.errors] for r in results]
    return "\n".join(md_table(["endpoint", "batching", "conc.", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], rows,
                              right=True))


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    by = {(r.endpoint, r.concurrency, r.batching): r for r in results}
    out = []
    for (endpoint, conc, mode), on in by.items():
        off = by.get((endpoint, conc, "off"))
        if mode != "on" or off is None:
            continue
        out.append({"endpoint": endpoint, "concurrency": conc,
                    "rps_on_over_off": round(on.rps / off.rps, 2) if off.rps else None,
                    "p50_on_over_off": round(on.p50_ms / off.p50_ms, 2) if off.p50_ms else None,
                    "p99_on_over_off": round(on.p99_ms / off.p99_ms, 2) if off.p99_ms else None})
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(md_table(["endpoint", "conc.", "req/s on/off", "p50 on/off", "p99 on/off"],
                              [[r["endpoint"], r["concurrency"], r["rps_on_over_off"], r["p50_on_over_off"],
                                r["p99_on_over_off"]] for r in rows], right=True))


def cache_summary(results: list[Result]) -> dict[str, Any] | None:
    """/encode of a video: miss vs hit latency at concurrency 1, batching on (or the only mode)."""
    def pick(name: str) -> Result | None:
        cands = [r for r in results if r.endpoint == name and r.concurrency == min(x.concurrency for x in results)]
        cands.sort(key=lambda r: r.batching != "on")
        return cands[0] if cands else None

    miss, hit = pick("encode_miss"), pick("encode_hit")
    if miss is None or hit is None:
        return None
    return {"concurrency": miss.concurrency, "miss_p50_ms": miss.p50_ms, "hit_p50_ms": hit.p50_ms,
            "miss_p99_ms": miss.p99_ms, "hit_p99_ms": hit.p99_ms,
            "speedup_p50": round(miss.p50_ms / hit.p50_ms, 1) if hit.p50_ms else None,
            "miss_rps": miss.rps, "hit_rps": hit.rps}


def floor_shares(results: list[Result], floor: dict[str, float], model: dict[str, Any] | None = None,
                 familiarity: dict[str, bool] | None = None) -> list[dict[str, Any]]:
    """Cache-miss /caption throughput as a share of the decode-only floor, per concurrency and mode; with `model`
    (model_floor), also as a share of the model's own floor at batch 1 and at batch 8, counting the familiarity
    rebuild where that mode's server scores it (familiarity: mode -> on)."""
    rows = []
    for r in results:
        if r.endpoint != "caption":
            continue
        row = {"concurrency": r.concurrency, "batching": r.batching, "rps": r.rps, "p99_ms": r.p99_ms,
               "share_of_floor": round(r.rps / floor["floor_clips_per_s"], 3)}
        if model is not None:
            scored = (familiarity or {}).get(r.batching, True) and model["familiarity_ms"]["batch_1"] is not None
            key = "with_familiarity" if scored else "without_familiarity"
            row["model_floor_counts_familiarity"] = bool(scored)
            for b in ("batch_1", "batch_8"):
                row[f"share_of_model_floor_{b}"] = round(r.rps / model[key][b]["floor_clips_per_s"], 3)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- main: the options, one run, the report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--artifacts", type=Path, help="artifacts root to serve (the service is started here)")
    src.add_argument("--url", help="benchmark a running service instead (batching as it is configured)")
    p.add_argument("--endpoints", default=",".join(ENDPOINTS), help=f"comma-separated subset of {','.join(ENDPOINTS)}")
    p.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    p.add_argument("--duration", type=float, default=8.0, help="seconds of load per endpoint and concurrency")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each run")
    p.add_argument("--batching", default="on,off", help="modes to run when the service is started here: on,off")
    p.add_argument("--memory-repeats", type=int, default=3,
                   help="after the sweep (batching on), repeat a load pass this many times and record RSS after each")
    p.add_argument("--clip", default="16x72x128", help="benchmark upload: FRAMESxHEIGHTxWIDTH of an H.264 mp4")
    p.add_argument("--words", type=int, default=6, help="words per generated sentence")
    p.add_argument("--timeout", type=float, default=10.0, help="wrk request timeout (s); slower answers are errors")
    p.add_argument("--redis-url", default="private",
                   help="'private' (default): a throwaway redis-server; '': no Redis; or a URL")
    p.add_argument("--env", action="append", default=[], metavar="SLR_X=V",
                   help="service settings to override (repeatable), e.g. SLR_MAX_WAIT_MS=2")
    p.add_argument("--switch", default="SLR_BATCHING",
                   help="the setting the two servers ('on', 'off' in --batching) differ in: a boolean "
                        "(SLR_BATCHING, or SLR_FAMILIARITY to measure what the familiarity score costs), or "
                        "NAME=ON,OFF for any other (SLR_MMAP_THRESHOLD_KIB=4096,128)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: concurrency 1,8, 1 s per run, no warm-up, one memory pass")
    p.add_argument("--json", help="write the full results as JSON to this file ('-': stdout, tables go to stderr)")
    args = p.parse_args(argv)
    if args.quick:
        args.concurrency, args.duration, args.warmup, args.memory_repeats = "1,8", 1.0, 0.0, 1
    return args


@dataclass
class Plan:
    """What one run measures, read from the options."""

    endpoints: list[str]
    levels: list[int]  # concurrency levels
    modes: list[str]  # on, off (servers started here, differing in --switch) or "" (a given URL)
    frames: int
    height: int
    width: int
    settings_env: dict[str, str]  # the SLR_* settings of the servers started here


def make_plan(args: argparse.Namespace) -> Plan:
    """The run's endpoints, concurrency levels, modes, clip size and service settings; SystemExit on a bad option."""
    endpoints = [e for e in args.endpoints.split(",") if e]
    unknown = set(endpoints) - set(ENDPOINTS)
    if unknown:
        raise SystemExit(f"unknown endpoints {sorted(unknown)}; choose from {ENDPOINTS}")
    levels = [int(c) for c in args.concurrency.split(",") if c]
    modes = [m for m in args.batching.split(",") if m] if args.artifacts else [""]
    frames, height, width = clip_shape(args.clip)
    settings_env = {"SLR_LOG_LEVEL": "warning"}  # everything else: the service's defaults
    for kv in args.env:
        k, _, v = kv.partition("=")
        settings_env[k] = v
    return Plan(endpoints, levels, modes, frames, height, width, settings_env)


def make_log(json_target: str | None) -> Log:
    """Progress and tables go to stdout, or to stderr when the JSON report takes stdout ('-')."""
    out = sys.stderr if json_target == "-" else sys.stdout
    return lambda msg: print(msg, file=out, flush=True)


def new_report(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    """The report before any load: the machine, how busy it is, and what the run will measure."""
    return {"switch": args.switch, "machine": machine_info(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "loadavg_before": os.getloadavg(), "busy_before": busy_processes({os.getpid()}),
            "config": {"endpoints": plan.endpoints, "concurrency": plan.levels, "duration_s": args.duration,
                       "warmup_s": args.warmup,
                       "clip": {"frames": plan.frames, "height": plan.height, "width": plan.width},
                       "settings": plan.settings_env, "quick": args.quick,
                       "url": args.url, "artifacts": str(args.artifacts) if args.artifacts else None},
            "results": [], "cold_start_s": {}, "rss_mb": {}, "memory_runs_mb": []}


def make_runner(work: Path, clip: bytes, args: argparse.Namespace, log: Log) -> Runner:
    """The request bodies and the words post.lua draws sentences from, written to `work`, and a Runner over them."""
    targets = build_targets(work, clip)
    words_file = work / "words.txt"
    words_file.write_text("\n".join(vocabulary_words(args.artifacts)) + "\n")
    return Runner(targets, words_file, args.words, args.timeout, log)


def measure_floors(clip: bytes, artifacts: Path | None, report: dict[str, Any]) -> None:
    """The decode-only floor always; the model's floor only with the artifacts at hand (not for a given URL)."""
    report["decode_floor"] = decode_floor(clip)
    report["model_floor"] = model_floor(clip, artifacts) if artifacts else None


def sweep(runner: Runner, urls: dict[str, str], plan: Plan, args: argparse.Namespace) -> list[Result]:
    """Every endpoint at every concurrency, on each server (mode -> URL) right after the other: on/off ratios hold
    even while the machine's background load drifts."""
    return [runner.run(url, endpoint, mode, c, args.duration, args.warmup)
            for endpoint in plan.endpoints for c in plan.levels for mode, url in urls.items()]


def open_redis(choice: str, stack: contextlib.ExitStack) -> str:
    """The Redis URL the servers use: a private redis-server ('private'), none (''), or the URL given."""
    return stack.enter_context(private_redis()) if choice == "private" else choice


def served_model(artifacts: Path) -> dict[str, Any] | None:
    """The served version and its sizes, read from its manifest; None when it cannot be read."""
    with contextlib.suppress(ArtifactError):
        m = Manifest.read(resolve_version_dir(artifacts, None))
        return {"version": m.version, **{k: getattr(m.model, k) for k in (
            "frames", "height", "width", "latent_dim", "hidden", "vocab_size", "max_words")}}
    return None


def switch_values(spec: str) -> tuple[str, str, str]:
    """(setting, its value on the 'on' server, on the 'off' one) of --switch: NAME (true / false) or NAME=ON,OFF."""
    name, _, values = spec.partition("=")
    on, _, off = values.partition(",")
    return (name, on, off) if values else (name, "true", "false")


def start_servers(args: argparse.Namespace, plan: Plan, redis_url: str, work: Path, stack: contextlib.ExitStack,
                  report: dict[str, Any], log: Log) -> dict[str, Server]:
    """One service per mode, side by side (an idle one costs nothing), each started alone so that its cold start
    is its own."""
    servers: dict[str, Server] = {}
    for mode in plan.modes:
        name, on, off = switch_values(args.switch)
        env = {**plan.settings_env, "SLR_REDIS_URL": redis_url, name: on if mode == "on" else off}
        servers[mode] = server = stack.enter_context(start_server(args.artifacts, env, work / f"server-{mode}.log"))
        report["cold_start_s"][mode] = round(server.cold_start_s, 3)
        log(f"{args.switch} {mode}: service ready in {server.cold_start_s:.2f} s "
            f"(RSS {mib(rss_kib(server.pid)):.0f} MiB)")
    return servers


def memory_passes(runner: Runner, servers: dict[str, Server], plan: Plan, args: argparse.Namespace,
                  report: dict[str, Any], log: Log) -> None:
    """The same load again and again on the first server, RSS recorded after each pass: it must level off."""
    mode, server = next(iter(servers.items()))
    top = max(plan.levels)
    for i in range(args.memory_repeats):
        for endpoint in plan.endpoints:
            runner.run(server.url, endpoint, mode, top, max(1.0, args.duration / 2), 0)
        settle()
        report["memory_runs_mb"].append(mib(rss_kib(server.pid)))
        log(f"memory pass {i + 1} (batching {mode}, every endpoint at c={top}): "
            f"RSS {report['memory_runs_mb'][-1]:.0f} MiB")


def keep_server_tracebacks(servers: dict[str, Server], work: Path, report: dict[str, Any]) -> None:
    """The end of a server's log into the report when it holds a traceback (the log itself goes with `work`)."""
    for mode in servers:
        with contextlib.suppress(OSError):
            tail = (work / f"server-{mode}.log").read_text()[-3000:]
            if "Traceback" in tail:
                report.setdefault("server_log_tail", {})[mode] = tail


def run_servers(args: argparse.Namespace, plan: Plan, runner: Runner, work: Path, report: dict[str, Any],
                log: Log) -> list[Result]:
    """Start Redis and one service per mode, sweep them, then the memory passes; everything stopped afterwards."""
    with contextlib.ExitStack() as stack:
        redis_url = open_redis(args.redis_url, stack)
        report["config"]["redis"] = "private redis-server" if args.redis_url == "private" and redis_url \
            else (redis_url or "none (in-process LRU)")
        model = served_model(args.artifacts)
        if model is not None:
            report["model"] = model
        servers = start_servers(args, plan, redis_url, work, stack, report, log)
        results = sweep(runner, {mode: server.url for mode, server in servers.items()}, plan, args)
        report["rss_sweep_end_mb"] = {mode: mib(rss_kib(server.pid)) for mode, server in servers.items()}
        settle()
        report["rss_mb"] = {mode: mib(rss_kib(server.pid)) for mode, server in servers.items()}
        log(f"RSS after the sweep, settled: {report['rss_mb']} MiB; straight after its last cell: "
            f"{report['rss_sweep_end_mb']} MiB")
        if args.memory_repeats > 0:
            memory_passes(runner, servers, plan, args, report, log)
        keep_server_tracebacks(servers, work, report)
    return results


def familiarity_scored(plan: Plan, switch: str) -> dict[str, bool]:
    """Whether each mode's server scores familiarity: not when the settings turn it off for both, nor on the 'off'
    server when the two differ in SLR_FAMILIARITY."""
    off_for_all = plan.settings_env.get("SLR_FAMILIARITY", "true").lower() in ("false", "0", "no", "off")
    return {mode: not (off_for_all or (switch == "SLR_FAMILIARITY" and mode == "off")) for mode in plan.modes}


def summarise(report: dict[str, Any], results: list[Result], plan: Plan, switch: str) -> None:
    """The results, on/off ratios, cache hit vs miss and the floor shares into the report, and how busy the
    machine was at the end."""
    report["results"] = [asdict(r) for r in results]
    for r in report["results"]:
        r.pop("detail", None)
    report["ratios"] = ratios(results)
    report["cache"] = cache_summary(results)
    report["caption_miss_vs_floor"] = floor_shares(results, report["decode_floor"], report["model_floor"],
                                                   familiarity_scored(plan, switch))
    report["loadavg_after"] = os.getloadavg()
    report["busy_after"] = busy_processes({os.getpid()})


def print_report(report: dict[str, Any], results: list[Result], switch: str, log: Log) -> None:
    """The tables, the cache and the floors, then what the machine did (cold start, RSS, other busy processes)."""
    log("\n" + results_table(results))
    if report["ratios"]:
        name = "batching" if switch == "SLR_BATCHING" else switch
        log(f"\n{name} on / off\n" + ratio_table(report["ratios"]))
    if report["cache"]:
        c = report["cache"]
        log(f"\n/encode of a video at concurrency {c['concurrency']}: miss p50 {c['miss_p50_ms']} ms, hit p50 "
            f"{c['hit_p50_ms']} ms ({c['speedup_p50']}x)")
    floor = report["decode_floor"]
    log(f"\ndecode-only floor: {floor['decode_only_ms']} ms per clip, "
        f"{floor['clips_per_s_per_core']} clips/s per core, "
        f"{floor['floor_clips_per_s']} on {floor['cores']} cores")
    if report["model_floor"] is not None:
        for line in model_floor_lines(report["model_floor"]):
            log(line)
    for row in report["caption_miss_vs_floor"]:
        log(floor_share_line(row))
    if report["cold_start_s"]:
        log(f"cold start (spawn to /readyz 200): {report['cold_start_s']} s")
    if report["rss_mb"]:
        log(f"RSS after each sweep: {report['rss_mb']} MiB; after each memory pass: {report['memory_runs_mb']} MiB "
            f"(each read {SETTLE_S} s after the last response: the server has trimmed its heaps)")
    if report["busy_before"] or report["busy_after"]:
        log(f"other busy processes: before {report['busy_before']}, after {report['busy_after']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    plan = make_plan(args)
    log = make_log(args.json)
    report = new_report(args, plan)
    with tempfile.TemporaryDirectory(prefix="slr-load-") as tmp:
        work = Path(tmp)
        clip = make_clip(plan.frames, plan.height, plan.width)
        runner = make_runner(work, clip, args, log)
        measure_floors(clip, args.artifacts, report)
        log(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; load average "
            f"{report['loadavg_before'][0]:.2f}; clip {plan.frames}x{plan.height}x{plan.width} mp4 ({len(clip)} bytes)")
        results = (sweep(runner, {"": args.url}, plan, args) if args.url
                   else run_servers(args, plan, runner, work, report, log))
    summarise(report, results, plan, args.switch)
    print_report(report, results, args.switch, log)
    write_json(report, args.json)
    return report


def write_json(report: dict[str, Any], target: str | None) -> None:
    """The whole report as JSON: to a file, to stdout ('-'), or nowhere (None)."""
    if not target:
        return
    text = json.dumps(report, indent=2)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n")


if __name__ == "__main__":
    main()
