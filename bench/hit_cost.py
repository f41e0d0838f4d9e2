"""What the familiarity score costs a cache hit on /caption, in process: two apps on one loaded engine, the score
on and off, the same cached clip, measured in alternating rounds so that drifting background load hits both.

    python -m bench.hit_cost --artifacts models/default               # whatever `latest` names
    python -m bench.hit_cost --artifacts models/default --profile 15  # also each mode's top functions (cProfile)
    python -m bench.hit_cost --artifacts models/default --version quality-v6   # another version of the root

Requests go through httpx's ASGI transport (no socket, no HTTP parser): what is left is the app's own work on the
event loop (multipart parsing, the cache lookup, the verdict, the response) plus the greedy caption in the engine
threads. `bench.load --switch SLR_FAMILIARITY` measures the same over real HTTP with wrk.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.support import make_clip
from service.app import create_app, load_engine
from service.settings import Settings

MODES = ("on", "off")


@contextlib.asynccontextmanager
async def served(settings: Settings, engine: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An app on an already loaded engine, its lifespan run, and a client that calls it in process."""
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            yield client


async def hits(client: httpx.AsyncClient, clip: bytes, n: int, concurrency: int) -> tuple[float, float]:
    """(wall, CPU) seconds for n /caption requests of the same clip, `concurrency` at a time; every answer must be a
    hit. CPU time (this process, every thread) is what a busy shared machine distorts least."""
    async def one() -> None:
        r = await client.post("/caption", files={"video": ("clip.mp4", clip, "video/mp4")})
        if r.status_code != 200 or not r.json()["cached"]:
            raise SystemExit(f"expected a cache hit, got {r.status_code}: {r.text[:200]}")

    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, n, concurrency):
        await asyncio.gather(*(one() for _ in range(min(concurrency, n - i))))
    return time.perf_counter() - start, time.process_time() - cpu


def top_functions(prof: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings(artifacts=str(args.artifacts), model_version=args.version, log_level="warning",
                    decode_processes=0, redis_url=args.redis_url)
    engine = load_engine(base)
    clip = make_clip(args.frames, args.height, args.width)
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    cpu_ms: dict[str, list[float]] = {m: [] for m in MODES}
    profiles: dict[str, cProfile.Profile] = {m: cProfile.Profile() for m in MODES}
    async with contextlib.AsyncExitStack() as stack:
        clients = {m: await stack.enter_async_context(served(base.model_copy(update={"familiarity": m == "on"}),
                                                             engine)) for m in MODES}
        for m in MODES:  # the first request misses (and scores, with the score on); then warm up
            await clients[m].post("/caption", files={"video": ("clip.mp4", clip, "video/mp4")})
            await hits(clients[m], clip, args.requests // 4, args.concurrency)
        for _ in range(args.rounds):
            for m in MODES:
                wall, cpu = await hits(clients[m], clip, args.requests, args.concurrency)
                rates[m].append(args.requests / wall)
                cpu_ms[m].append(1e3 * cpu / args.requests)
        if args.profile:
            for m in MODES:
                profiles[m].enable()
                await hits(clients[m], clip, args.requests, args.concurrency)
                profiles[m].disable()
    report: dict[str, Any] = {"version": engine.version, "concurrency": args.concurrency,
                              "rounds": args.rounds, "requests_per_round": args.requests}
    for m in MODES:
        report[f"rps_{m}"] = round(statistics.median(rates[m]), 1)
        report[f"rounds_{m}"] = [round(r, 1) for r in rates[m]]
        report[f"cpu_ms_{m}"] = round(statistics.median(cpu_ms[m]), 3)
    report["on_over_off"] = round(report["rps_on"] / report["rps_off"], 3)
    report["cpu_on_over_off"] = round(report["cpu_ms_on"] / report["cpu_ms_off"], 3)
    if args.profile:
        report["calls_per_request"] = {m: round(pstats.Stats(profiles[m]).total_calls / args.requests)  # type: ignore[attr-defined]
                                       for m in MODES}
        report["profiles"] = {m: top_functions(profiles[m], args.profile) for m in MODES}
    return report


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
    args = p.parse_args(argv)
    args.frames, args.height, args.width = (int(x) for x in args.clip.lower().split("x"))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report = asyncio.run(measure(args))
    for m in MODES:
        if "profiles" in report:
            print(f"--- familiarity {m}: top functions by own time\n{report['profiles'][m]}")
    print(f"model {report['version']}, /caption cache hits in process, c={report['concurrency']}, "
          f"{report['rounds']} alternating rounds of {report['requests_per_round']}:")
    for m in MODES:
        print(f"  familiarity {m:3s}: {report[f'rps_{m}']} req/s (median; rounds {report[f'rounds_{m}']}), "
              f"CPU {report[f'cpu_ms_{m}']} ms per request")
    print(f"  on / off: req/s {report['on_over_off']}, CPU per request {report['cpu_on_over_off']}")
    if "calls_per_request" in report:
        print(f"  Python function calls per request (cProfile): {report['calls_per_request']}")
    return report


if __name__ == "__main__":
    main()
