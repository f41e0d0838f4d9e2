"""service.cache against the real Redis: raw float32 bytes, TTL, the LRU fallback when Redis is absent or stops."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis

from service.cache import LATENT_ID, SlrCache, SlrEntry, canonical_digest, make_key
from tests.service_fixtures import redis_server

SHAPE = (12, 16, 3)


def entry(seed: int = 0, with_frame: bool = True) -> SlrEntry:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, SHAPE, dtype=np.uint8) if with_frame else None
    return SlrEntry(rng.standard_normal(8).astype(np.float32), rng.random(8).astype(np.float32), frame)


def key(tag: str) -> str:
    return make_key("test-cache", "v", canonical_digest(tag.encode(), None))


def test_key_format_and_canonical_digest() -> None:
    k = key("a")
    assert LATENT_ID.match(k) and k.startswith("slr:test-cache:v:")
    assert canonical_digest(None, [4, 5]) != canonical_digest(b"x", [4, 5]) != canonical_digest(b"x", None)
    assert canonical_digest(None, [4, 5]) == canonical_digest(None, [4, 5])


def test_redis_stores_raw_float32_bytes_with_ttl(redis_url: str) -> None:
    async def go() -> None:
        cache = SlrCache(redis_url, ttl_s=120, lru_size=8, frame_shape=SHAPE)
        assert await cache.ping()
        k, e = key("raw-bytes"), entry(1)
        await cache.put(k, e)
        raw = redis.Redis.from_url(redis_url)
        fields = raw.hgetall(k)
        assert fields[b"mu"] == e.mu.astype("<f4").tobytes() and fields[b"sigma"] == e.sigma.astype("<f4").tobytes()
        assert 0 < raw.ttl(k) <= 120
        # A fresh process (empty LRU) finds it in Redis.
        other = SlrCache(redis_url, ttl_s=120, lru_size=8, frame_shape=SHAPE)
        got, tier = await other.get(k)
        assert tier == "redis" and np.array_equal(got.mu, e.mu) and np.array_equal(got.first_frame, e.first_frame)
        assert (await other.get(k))[1] == "memory"
        assert await other.get(key("missing")) is None
        raw.delete(k)
        await cache.close()
        await other.close()

    asyncio.run(go())


def test_without_redis_the_lru_serves_and_evicts() -> None:
    async def go() -> None:
        cache = SlrCache(None, ttl_s=60, lru_size=2, frame_shape=SHAPE)
        assert not cache.redis_configured and not await cache.ping()
        for i in range(3):
            await cache.put(key(str(i)), entry(i, with_frame=False))
        assert await cache.get(key("0")) is None  # evicted
        assert (await cache.get(key("2")))[1] == "memory"

    asyncio.run(go())


def test_redis_stopping_never_fails_a_call() -> None:
    async def go(url: str, proc) -> None:
        states: list[bool] = []
        cache = SlrCache(url, ttl_s=60, lru_size=8, frame_shape=SHAPE, retry_s=0.2, on_redis_state=states.append)
        assert await cache.ping()
        await cache.put(key("before"), entry(0))
        proc.terminate()
        proc.wait(10)
        await cache.put(key("during"), entry(1))  # Redis down: no exception, kept in process
        assert not cache.redis_up and states[-1] is False
        assert (await cache.get(key("during")))[1] == "memory"
        assert (await cache.get(key("before")))[1] == "memory"
        assert await cache.get(key("never")) is None
        await cache.close()

    with redis_server() as (proc, url):
        asyncio.run(go(url, proc))


@pytest.mark.parametrize("bad", [{b"mu": b"\x00" * 8}, {b"mu": b"\x00" * 8, b"sigma": b"\x00" * 4}])
def test_foreign_values_are_misses(redis_url: str, bad: dict) -> None:
    async def go() -> None:
        k = key(f"foreign-{len(bad)}")
        redis.Redis.from_url(redis_url).hset(k, mapping=bad)
        cache = SlrCache(redis_url, ttl_s=60, lru_size=8, frame_shape=SHAPE)
        assert await cache.get(k) is None
        redis.Redis.from_url(redis_url).delete(k)
        await cache.close()

    asyncio.run(go())


@pytest.mark.parametrize("stored, expected", [((0, 3, 12, 9), (0, 3, 12, 9)), (None, None),
                                              ((0, 3, 12, 99), None), ((-1, 0, 12, 16), None)])
def test_the_pictures_box_round_trips_through_redis_and_a_foreign_one_is_dropped(redis_url: str, stored,
                                                                                  expected) -> None:
    async def go() -> None:
        k = key(f"box-{stored}")
        e = entry(2)
        await SlrCache(redis_url, ttl_s=60, lru_size=8, frame_shape=SHAPE).put(k, SlrEntry(e.mu, e.sigma,
                                                                                       e.first_frame, stored))
        fresh = SlrCache(redis_url, ttl_s=60, lru_size=8, frame_shape=SHAPE)
        got, tier = await fresh.get(k)
        assert tier == "redis" and got.box == expected and np.array_equal(got.mu, e.mu)
        redis.Redis.from_url(redis_url).delete(k)
        await fresh.close()

    asyncio.run(go())
