"""What the SLR cache's Redis tier costs the event loop, by reply parser: redis-py's own (pure Python) against
hiredis (the serving extras' `redis[hiredis]`), alternating rounds in one process against a private redis-server.

    python -m bench.redis_parse [--ops 2000] [--rounds 5]

Per operation, CPU microseconds (medians over rounds): `get` is a Redis-tier hit (the in-process LRU holds one
entry, and every key differs), what every replica but the one that scored a clip pays for it; `put` is a cache
miss's write (HSET and EXPIRE in one MULTI); `miss` is a lookup that finds nothing. The entries are the shipped
model's shape: mu and sigma of 128 floats, a 36 x 64 first frame, the familiarity signals.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np
import redis.asyncio as aioredis
import uvloop
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.utils import HIREDIS_AVAILABLE

from bench.support import redis_installed, redis_server
from core.tables import md_table
from service.cache import SlrCache, SlrEntry

PARSERS = {"redis-py": _AsyncRESP2Parser, "hiredis": _AsyncHiredisParser}
FRAME = (36, 64, 3)


def entry(rng: np.random.Generator) -> SlrEntry:
    return SlrEntry(rng.standard_normal(128).astype(np.float32), rng.random(128).astype(np.float32),
                    rng.integers(0, 256, FRAME, dtype=np.uint8), None, (0.1, 0.2, 0.3), None)


async def one_round(url: str, parser: type, ops: int, tag: str) -> dict[str, float]:
    """CPU us per put, Redis-tier get and miss through the service's own SlrCache, `parser` reading the replies."""
    cache = SlrCache(url, ttl_s=60, lru_size=1, frame_shape=FRAME, latent_dim=128)
    await cache.close()
    cache._redis = aioredis.Redis.from_url(url, parser_class=parser)  # the service's client but for the parser
    rng = np.random.default_rng(0)
    keys = [f"slr:bench:{tag}:{i}" for i in range(ops)]
    values = [entry(rng) for _ in range(ops)]
    figures = {}
    for name, call in (("put", lambda k, v: cache.put(k, v)), ("get", lambda k, v: cache.get(k)),
                       ("miss", lambda k, v: cache.get(k + ":absent"))):
        start = time.process_time()
        for k, v in zip(keys, values):
            await call(k, v)
        figures[name] = (time.process_time() - start) / ops * 1e6
    hit = await cache.get(keys[0])  # the LRU holds the last key only: the first comes back from Redis
    assert hit is not None and hit[1] == "redis", "the Redis tier was not measured"
    await cache.close()
    return figures


def measure(ops: int, rounds: int) -> dict[str, dict[str, float]]:
    """{operation: {parser: median CPU us}}, the parsers alternating which goes first each round."""
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in PARSERS}
    with redis_server() as (_, url):
        for r in range(rounds):
            for p in (list(PARSERS) if r % 2 == 0 else list(reversed(PARSERS))):
                runs[p].append(asyncio.run(one_round(url, PARSERS[p], ops, f"{p}{r}")))
    return {op: {p: statistics.median(f[op] for f in runs[p]) for p in PARSERS} for op in ("get", "put", "miss")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if not HIREDIS_AVAILABLE or not redis_installed():
        print("needs hiredis (pip install 'redis[hiredis]') and redis-server")
        return 2
    uvloop.install()  # as uvicorn[standard] serves
    rows = [[op, f"{m['redis-py']:.0f}", f"{m['hiredis']:.0f}", f"{m['hiredis'] / m['redis-py']:.2f}x"]
            for op, m in measure(args.ops, args.rounds).items()]
    print("\n".join(md_table(["operation", "redis-py us CPU", "hiredis us CPU", "hiredis / redis-py"], rows,
                             right=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
