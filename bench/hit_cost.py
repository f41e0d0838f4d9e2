"""What the familiarity score costs a cache hit on /caption: two apps on one loaded engine, the score on and off, the
same cached clip, measured in alternating rounds so that drifting background load hits both.

    python -m bench.hit_cost --artifacts models/default               # whatever `latest` names
    python -m bench.hit_cost --artifacts models/default --profile 15  # also each mode's top functions (cProfile)
    python -m bench.hit_cost --artifacts models/default --version quality-v17  # another version of the root
    python -m bench.hit_cost --artifacts models/default --http 2000   # also two uvicorn servers, over real HTTP
    python -m bench.hit_cost --artifacts models/default --http 2000 --control   # A/A: both with the score off

In process, requests go straight into the ASGI app (no client, no socket, no HTTP parser): what is measured is the
server's own work, per hit, as CPU time: the event loop's thread (multipart parsing, the cache lookup, the verdict,
the answer) and the whole process (plus the greedy caption in the engine threads). CPU time is what a busy shared
machine distorts least; req/s are printed too, but they swing with the machine. The verdict alone (the one step
whose work depends on the score) is timed on its own, and --profile lists the functions called a different number
of times per hit in the two modes.

--http N starts two servers as bench.load does (uvicorn, uvloop, httptools) and sends N hits per round to each in
turn over keep-alive connections, reading each server's CPU time from /proc: per hit, the whole server (process tree).
Two server processes differ by a few percent even when identical (hash seeds, memory layout, which started first):
--control runs both modes with the score off, and the ratio it prints is that spread.
`bench.load --switch SLR_FAMILIARITY` measures req/s over real HTTP with wrk (run it on quiet cores).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import time
import timeit
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from bench.peers.side_by_side import cpu_seconds
from bench.support import make_clip
from service.app import create_app, load_engine
from service.predictor import Predictor, Upload
from service.settings import Settings

MODES = ("on", "off")


def scored(mode: str, control: bool) -> bool:
    """Whether a mode's app scores familiarity: 'on' does, unless this is the A/A control (both off)."""
    return mode == "on" and not control


Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class CaptionPost:
    """POST /caption of one clip, encoded once: every hit sends the same bytes."""

    headers: Headers
    body: bytes

    @classmethod
    def of(cls, clip: bytes) -> CaptionPost:
        request = httpx.Request("POST", "http://bench/caption", files={"video": ("clip.mp4", clip, "video/mp4")})
        return cls([(k.lower(), v) for k, v in request.headers.raw], request.read())

    def http(self) -> bytes:
        """The same request as HTTP/1.1 bytes, for a keep-alive connection."""
        head = b"".join(k + b": " + v + b"\r\n" for k, v in self.headers if k != b"host")
        return b"POST /caption HTTP/1.1\r\nhost: bench\r\n" + head + b"\r\n" + self.body


@dataclass(frozen=True)
class Cost:
    """One round of hits: wall seconds, CPU seconds of the event loop's thread and of the whole process."""

    wall_s: float
    loop_s: float
    process_s: float


@contextlib.asynccontextmanager
async def served(settings: Settings, engine: Any) -> AsyncIterator[FastAPI]:
    """An app on an already loaded engine, its lifespan run."""
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        yield app


async def asgi_post(app: FastAPI, post: CaptionPost) -> tuple[int, bytes]:
    """(status, body) of POST /caption called straight into the app, as a server would call it."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/caption", "raw_path": b"/caption", "query_string": b"", "root_path": "",
             "headers": post.headers, "client": ("127.0.0.1", 1), "server": ("bench", 80)}
    answered = asyncio.Event()
    body_sent = False
    status, parts = 0, list[bytes]()

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": post.body, "more_body": False}
        await answered.wait()  # the client stays until its answer is complete (service/disconnect.py listens)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    return status, b"".join(parts)


def check_hit(status: int, body: bytes) -> None:
    if status != 200 or b'"cached":true' not in body:
        raise SystemExit(f"expected a cache hit, got {status}: {body[:200]!r}")


async def hits(app: FastAPI, post: CaptionPost, n: int, concurrency: int) -> Cost:
    """n /caption requests of the same clip, `concurrency` at a time; every answer must be a hit."""
    async def one() -> None:
        check_hit(*await asgi_post(app, post))

    # The process clock is read outside the thread clock so that its interval holds the loop's.
    wall, process, loop = time.perf_counter(), time.process_time(), time.thread_time()
    for i in range(0, n, concurrency):
        await asyncio.gather(*(one() for _ in range(min(concurrency, n - i))))
    return Cost(time.perf_counter() - wall, time.thread_time() - loop, time.process_time() - process)


async def verdict_us(predictor: Predictor, clip: bytes, calls: int) -> float:
    """CPU microseconds of the predictor's verdict on the cached clip (a hit's entry: nothing to wait for), the least
    of 5 runs of `calls` calls."""
    latent = await predictor.resolve(video=Upload(clip, "clip.mp4"))
    assert latent.cached, "the clip was cached by the requests before"
    runs = timeit.repeat(lambda: predictor.entry_verdict(latent.entry), number=calls, repeat=5, timer=time.thread_time)
    return 1e6 * min(runs) / calls


def top_functions(prof: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def calls_by_function(prof: cProfile.Profile, requests: int) -> dict[str, float]:
    """Calls per request of every function the profile saw, named file:line(function)."""
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    return {f"{file.rsplit('site-packages/', 1)[-1]}:{line}({name})": row[1] / requests
            for (file, line, name), row in stats.items()}


def calls_differing(profiles: dict[str, cProfile.Profile], requests: int) -> list[tuple[float, str]]:
    """(calls per request on minus off, function) of every function called a different number of times per hit: at
    least once more or less every other hit (how hits fall into batches moves the event loop's counts by a few
    hundredths)."""
    on, off = (calls_by_function(profiles[m], requests) for m in MODES)
    deltas = ((on.get(f, 0.0) - off.get(f, 0.0), f) for f in on.keys() | off.keys())
    return sorted(((round(d, 2), f) for d, f in deltas if abs(d) >= 0.5), key=lambda r: (-abs(r[0]), r[1]))


def per_hit_figures(costs: dict[str, list[Cost]], requests: int) -> dict[str, Any]:
    """Medians over rounds per mode (req/s; CPU microseconds per hit), and on/off ratios of the medians."""
    report: dict[str, Any] = {}
    for m in MODES:
        report[f"rounds_{m}"] = [round(requests / c.wall_s, 1) for c in costs[m]]
        report[f"rps_{m}"] = round(statistics.median(report[f"rounds_{m}"]), 1)
        report[f"loop_us_{m}"] = round(statistics.median(1e6 * c.loop_s / requests for c in costs[m]), 1)
        report[f"cpu_us_{m}"] = round(statistics.median(1e6 * c.process_s / requests for c in costs[m]), 1)
    report["on_over_off"] = round(report["rps_on"] / report["rps_off"], 3)
    report["loop_on_over_off"] = round(report["loop_us_on"] / report["loop_us_off"], 3)
    report["cpu_on_over_off"] = round(report["cpu_us_on"] / report["cpu_us_off"], 3)
    return report


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings(artifacts=str(args.artifacts), model_version=args.version, log_level="warning",
                    decode_processes=0, redis_url=args.redis_url)
    engine = load_engine(base)
    clip = make_clip(args.frames, args.height, args.width)
    post = CaptionPost.of(clip)
    costs: dict[str, list[Cost]] = {m: [] for m in MODES}
    profiles: dict[str, cProfile.Profile] = {m: cProfile.Profile() for m in MODES}
    async with contextlib.AsyncExitStack() as stack:
        apps = {m: await stack.enter_async_context(served(
            base.model_copy(update={"familiarity": scored(m, args.control)}), engine)) for m in MODES}
        for m in MODES:  # the first request misses (and scores, with the score on); then warm up
            await asgi_post(apps[m], post)
            await hits(apps[m], post, args.requests // 4, args.concurrency)
        for r in range(args.rounds):
            for m in MODES if r % 2 == 0 else MODES[::-1]:  # each mode goes first in every other round
                costs[m].append(await hits(apps[m], post, args.requests, args.concurrency))
        verdicts = {m: await verdict_us(apps[m].state.predictor, clip, args.requests * 10) for m in MODES}
        if args.profile:
            for m in MODES:
                profiles[m].enable()
                await hits(apps[m], post, args.requests, args.concurrency)
                profiles[m].disable()
    report: dict[str, Any] = {"version": engine.version, "concurrency": args.concurrency, "control": args.control,
                              "rounds": args.rounds, "requests_per_round": args.requests,
                              **per_hit_figures(costs, args.requests)}
    for m in MODES:
        report[f"verdict_us_{m}"] = round(verdicts[m], 3)
    if args.profile:
        report["calls_per_request"] = {m: round(sum(calls_by_function(profiles[m], args.requests).values()))
                                       for m in MODES}
        report["calls_differing"] = calls_differing(profiles, args.requests)
        report["profiles"] = {m: top_functions(profiles[m], args.profile) for m in MODES}
    return report


# ---------------------------------------------------------------- over real HTTP (--http)

async def keep_alive_hits(port: int, request: bytes, n: int, concurrency: int, first: bool = False) -> None:
    """n hits over `concurrency` keep-alive connections; every answer must be a 200 cache hit (but the first
    request's, `first`, which misses)."""
    left = [n]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left[0] > 0:
                left[0] -= 1
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                status, body = int(head.split(b" ", 2)[1]), await reader.readexactly(length)
                if not first:
                    check_hit(status, body)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


@contextlib.contextmanager
def http_servers(args: argparse.Namespace) -> Iterator[dict[str, tuple[int, int]]]:
    """mode -> (port, pid) of two servers started as bench.load starts them, differing only in SLR_FAMILIARITY."""
    from bench.load import start_server  # bench.load imports wrk's helpers: only when --http asks for it

    env = {"SLR_LOG_LEVEL": "warning", "SLR_REDIS_URL": args.redis_url,
           **({"SLR_MODEL_VERSION": args.version} if args.version else {})}
    with contextlib.ExitStack() as stack:
        servers = {m: stack.enter_context(start_server(args.artifacts.resolve(),
                                                       {**env, "SLR_FAMILIARITY": str(scored(m, args.control)).lower()},
                                                       Path(os.devnull))) for m in MODES}
        yield {m: (int(s.url.rsplit(":", 1)[1]), s.pid) for m, s in servers.items() if s.pid is not None}


def measure_http(args: argparse.Namespace) -> dict[str, Any]:
    """Server CPU per hit (microseconds, from /proc) and req/s over HTTP, alternating rounds on the two servers."""
    request = CaptionPost.of(make_clip(args.frames, args.height, args.width)).http()
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    rps: dict[str, list[float]] = {m: [] for m in MODES}
    with http_servers(args) as servers:
        for port, _ in servers.values():  # the first request misses; then warm up
            asyncio.run(keep_alive_hits(port, request, 1, 1, first=True))
            asyncio.run(keep_alive_hits(port, request, max(args.http // 4, args.concurrency), args.concurrency))
        for r in range(args.rounds):
            for m in MODES if r % 2 == 0 else MODES[::-1]:
                port, pid = servers[m]
                cpu_s, start = cpu_seconds(pid), time.perf_counter()
                asyncio.run(keep_alive_hits(port, request, args.http, args.concurrency))
                rps[m].append(args.http / (time.perf_counter() - start))
                cpu[m].append(1e6 * (cpu_seconds(pid) - cpu_s) / args.http)
    report: dict[str, Any] = {"requests_per_round": args.http}
    for m in MODES:
        report[f"cpu_us_{m}"] = round(statistics.median(cpu[m]), 1)
        report[f"cpu_rounds_{m}"] = [round(c) for c in cpu[m]]
        report[f"rps_{m}"] = round(statistics.median(rps[m]), 1)
    report["cpu_on_over_off"] = ratio(report["cpu_us_on"], report["cpu_us_off"])
    paired = [a / b for a, b in zip(cpu["on"], cpu["off"]) if b > 0]
    report["cpu_paired"] = round(statistics.median(paired), 3) if paired else None
    report["on_over_off"] = ratio(report["rps_on"], report["rps_off"])
    return report


def ratio(a: float, b: float) -> float | None:
    """a / b, or None when b read 0 (a round too short for /proc's clock, which ticks every 10 ms)."""
    return round(a / b, 3) if b > 0 else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", type=Path, default=Path("models/default"), help="artifacts root (serves `latest`)")
    p.add_argument("--version", help="version to serve (default: the root's `latest`)")
    p.add_argument("--requests", type=int, default=400, help="requests per mode per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--clip", default="48x240x320", help="FRAMESxHEIGHTxWIDTH of the cached H.264 mp4")
    p.add_argument("--redis-url", default="", help="'' (default): the in-process LRU only; or a Redis URL")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print each mode's top N functions")
    p.add_argument("--http", type=int, default=0, metavar="N",
                   help="also over real HTTP: two uvicorn servers, N hits per mode per round (0: not; /proc "
                        "counts CPU in 10 ms ticks: 2000 hits read it to about 1%%)")
    p.add_argument("--control", action="store_true",
                   help="A/A control: both modes with the score off (the spread between two identical apps/servers)")
    args = p.parse_args(argv)
    args.frames, args.height, args.width = (int(x) for x in args.clip.lower().split("x"))
    return args


def print_report(report: dict[str, Any]) -> None:
    label = {m: f"{m} (control: off)" if report["control"] else m for m in MODES}
    for m in MODES:
        if "profiles" in report:
            print(f"--- familiarity {m}: top functions by own time\n{report['profiles'][m]}")
    if report["control"]:
        print("A/A CONTROL: both modes run with the score off (the ratios are the spread between identical servers)")
    print(f"model {report['version']}, /caption cache hits in process (the app alone), c={report['concurrency']}, "
          f"{report['rounds']} alternating rounds of {report['requests_per_round']}:")
    for m in MODES:
        print(f"  familiarity {label[m]}: CPU per hit {report[f'cpu_us_{m}']} us, of which the event loop "
              f"{report[f'loop_us_{m}']} us; {report[f'rps_{m}']} req/s (median; rounds {report[f'rounds_{m}']}); "
              f"the verdict alone {report[f'verdict_us_{m}']} us")
    print(f"  on / off: CPU per hit {report['cpu_on_over_off']}, event loop {report['loop_on_over_off']}, "
          f"req/s {report['on_over_off']}")
    if "calls_per_request" in report:
        print(f"  Python function calls per hit (cProfile): {report['calls_per_request']}; called a different "
              f"number of times (on - off, per hit): {report['calls_differing'] or 'none'}")
    if "http" in report:
        h = report["http"]
        print(f"over HTTP (two uvicorn servers), {report['rounds']} alternating rounds of {h['requests_per_round']}:")
        for m in MODES:
            print(f"  familiarity {label[m]}: server CPU per hit {h[f'cpu_us_{m}']} us "
                  f"(rounds {h[f'cpu_rounds_{m}']}), {h[f'rps_{m}']} req/s")
        print(f"  on / off: server CPU per hit {h['cpu_on_over_off']} (paired rounds {h['cpu_paired']}), "
              f"req/s {h['on_over_off']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report = asyncio.run(measure(args))
    if args.http:
        report["http"] = measure_http(args)
    print_report(report)
    return report


if __name__ == "__main__":
    main()
