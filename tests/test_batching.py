"""service.batching: concurrent jobs of one key share a call, a lone job does not wait, the queue is bounded."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.batching import Batcher, QueueFull


class Recorder:
    """A run_batch that records batch sizes and can be held, like a slow engine call."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[object, list[int]]] = []
        self.delay_s = delay_s
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key: object, items: list[int]) -> list[int]:
        self.release.wait(5)
        time.sleep(self.delay_s)
        self.calls.append((key, list(items)))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 10 for i in items]


def run(coro):
    return asyncio.run(coro)


def make(rec: Recorder, **kw) -> Batcher:
    opts = {"max_batch": 8, "max_wait_ms": 50, "queue_size": 64} | kw
    return Batcher(rec, ThreadPoolExecutor(4), **opts)


def test_concurrent_jobs_of_one_key_run_as_one_batch() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec)
        results = await asyncio.gather(*(b.submit("enc", i) for i in range(5)))
        assert results == [0, 10, 20, 30, 40]
        assert [len(items) for _, items in rec.calls] == [5]
        await b.close()

    run(go())


def test_different_keys_never_share_a_batch() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec)
        await asyncio.gather(*(b.submit(("k", i % 2), i) for i in range(6)))
        assert sorted(k for k, _ in rec.calls) == [("k", 0), ("k", 1)]
        assert all(len({i % 2 for i in items}) == 1 for _, items in rec.calls)
        await b.close()

    run(go())


def test_max_batch_splits_batches() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec, max_batch=3)
        await asyncio.gather(*(b.submit("k", i) for i in range(7)))
        assert [len(items) for _, items in rec.calls] == [3, 3, 1]
        await b.close()

    run(go())


def test_a_lone_request_does_not_wait_the_window() -> None:
    async def go() -> None:
        b = make(Recorder(), max_wait_ms=2000)
        start = time.monotonic()
        assert await b.submit("k", 1) == 10
        assert time.monotonic() - start < 0.5
        await b.close()

    run(go())


def test_jobs_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    async def go() -> None:
        rec = Recorder()
        rec.release.clear()
        b = make(rec, max_wait_ms=1000)
        first = asyncio.create_task(b.submit("k", 0))
        await asyncio.sleep(0.05)  # the first batch is running (held)
        rest = [asyncio.create_task(b.submit("k", i)) for i in range(1, 5)]
        await asyncio.sleep(0.05)
        rec.release.set()
        await asyncio.gather(first, *rest)
        assert [len(items) for _, items in rec.calls] == [1, 4]
        await b.close()

    run(go())


def test_full_queue_raises_at_once() -> None:
    async def go() -> None:
        rec = Recorder()
        rec.release.clear()
        b = make(rec, max_batch=1, queue_size=2)
        running = asyncio.create_task(b.submit("k", 0))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(b.submit("k", i)) for i in (1, 2)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await b.submit("k", 3)
        rec.release.set()
        assert await asyncio.gather(running, *queued) == [0, 10, 20]
        await b.close()

    run(go())


def test_a_failing_batch_fails_its_callers_only() -> None:
    async def go() -> None:
        b = make(Recorder())
        results = await asyncio.gather(b.submit("k", 1), b.submit("k", -1), return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await b.submit("k", 2) == 20  # the worker survives
        await b.close()

    run(go())


def test_cancelled_jobs_are_skipped() -> None:
    async def go() -> None:
        rec = Recorder()
        rec.release.clear()
        b = make(rec)
        first = asyncio.create_task(b.submit("k", 0))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(b.submit("k", 1))
        kept = asyncio.create_task(b.submit("k", 2))
        await asyncio.sleep(0.01)
        gone.cancel()
        rec.release.set()
        assert await first == 0 and await kept == 20
        assert [items for _, items in rec.calls] == [[0], [2]]
        await b.close()

    run(go())


def test_batch_callback_reports_sizes() -> None:
    async def go() -> None:
        seen: list[tuple[object, int]] = []
        b = Batcher(Recorder(), None, 8, 5, 16, on_batch=lambda k, n, s: seen.append((k, n)))
        await asyncio.gather(*(b.submit("k", i) for i in range(3)))
        assert seen == [("k", 3)]
        await b.close()

    run(go())
