"""Dynamic batching: concurrent requests that need the same graph run as one engine call.

Each batch key (a graph plus the call options that must agree, e.g. ("encode", "vs") or ("sentence", beam, max_len))
has its own worker. A worker takes the oldest job and, while work that feeds others (`feeds(key)`: an encoder's SLR
is then captioned, scored or drawn) is queued in another lane or in flight, waits up to `max_wait_ms` for more jobs
of its key, up to `max_batch` (an int, or a function of the key: graphs that gain nothing from large batches, such as
a convolutional encoder, take a smaller cap). A lone request (nothing that feeds queued or in flight: a lone request's
own caption and familiarity score, submitted together, do not wait for each other) goes out at once: batching must
not add latency to an idle server. Under a backlog (`backlog()`: uploads waiting for a decoder, the server saturated)
a lane whose key feeds nothing (a caption, a score) waits up to `backlog_wait_ms` instead: more requests are surely on
their way, and a decoder's batch of several rows costs little more than one row (a greedy caption 1.06 ms at batch 1,
0.17 ms a row at 8: bench/load.py's model floor); a server that keeps up never waits that long. Batches run in a
thread pool (onnxruntime releases the GIL) so the event loop keeps accepting requests; one batch per key at a time,
different keys run concurrently. The queue is bounded: past `queue_size` waiting jobs, `submit` raises `QueueFull` at
once. A job whose caller is cancelled (its client went away) leaves the queue at once and never reaches the engine.
With `max_batch=1` and `max_wait_ms=0` every job runs alone: batching off, same queue and threads.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)  # a batch key: the predictor's BatchKey; any hashable in tests


class QueueFull(Exception):
    """More jobs are waiting than the queue allows; the caller should answer 503 with Retry-After."""


@dataclass
class _Job:
    item: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class _Lane:
    """Jobs of one batch key and the wake-up event of its worker."""

    def __init__(self) -> None:
        self.jobs: deque[_Job] = deque()
        self.wake = asyncio.Event()
        self.worker: asyncio.Task | None = None


class Batcher(Generic[K]):
    def __init__(self, run_batch: Callable[[K, list[Any]], Sequence[Any]], executor: Executor | None,
                 max_batch: int | Callable[[K], int], max_wait_ms: float, queue_size: int,
                 on_batch: Callable[[K, int, float], None] | None = None,
                 feeds: Callable[[K], bool] | None = None, backlog: Callable[[], bool] | None = None,
                 backlog_wait_ms: float = 0.0) -> None:
        self.run_batch, self.executor = run_batch, executor
        self.max_batch, self.max_wait_s, self.queue_size = max_batch, max_wait_ms / 1000.0, queue_size
        self.backlog, self.backlog_wait_s = backlog or (lambda: False), backlog_wait_ms / 1000.0
        self.on_batch = on_batch or (lambda key, size, seconds: None)
        self.feeds = feeds or (lambda key: True)  # whether a key's results lead to more jobs (default: any may)
        self._lanes: dict[K, _Lane] = {}
        self._running = 0  # jobs inside batches that are executing now
        self._feeding = 0  # of them, jobs of keys that feed others
        self._closed = False

    def batch_cap(self, key: K) -> int:
        cap = self.max_batch(key) if callable(self.max_batch) else self.max_batch
        return max(1, int(cap))

    @property
    def queued(self) -> int:
        return sum(len(lane.jobs) for lane in self._lanes.values())

    @property
    def running(self) -> int:
        return self._running

    async def submit(self, key: K, item: Any) -> Any:
        """Run `item` in a batch of its key; returns its own result (or raises the batch's exception)."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        if self.queued >= self.queue_size:
            raise QueueFull(f"{self.queued} requests are waiting for the engine")
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        if lane.worker is None or lane.worker.done():
            lane.worker = asyncio.create_task(self._work(key, lane), name=f"batcher-{key}")
        job = _Job(item, asyncio.get_running_loop().create_future())
        lane.jobs.append(job)
        lane.wake.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            # The caller went away (e.g. its client disconnected): free its queue slot now, not at collection.
            try:
                lane.jobs.remove(job)
            except ValueError:
                pass  # already taken into a batch; its result is dropped
            raise

    def _others_pending(self, lane: _Lane) -> bool:
        """Is there work besides this lane's jobs that could soon bring companions (work that feeds others)?"""
        return self._feeding > 0 or any(other.jobs for key, other in self._lanes.items()
                                        if other is not lane and self.feeds(key))

    def _backlogged(self, key: K) -> bool:
        """Whether this lane may take the longer backlog wait: it feeds nothing and uploads wait for a decoder."""
        return self.backlog_wait_s > self.max_wait_s and not self.feeds(key) and self.backlog()

    def _companions_coming(self, key: K, lane: _Lane) -> bool:
        return self._others_pending(lane) or self._backlogged(key)

    async def _collect(self, key: K, lane: _Lane) -> list[_Job]:
        cap = self.batch_cap(key)
        wait = self.backlog_wait_s if self._backlogged(key) else self.max_wait_s
        deadline = lane.jobs[0].enqueued + wait
        while len(lane.jobs) < cap and wait > 0 and self._companions_coming(key, lane):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            lane.wake.clear()
            try:
                await asyncio.wait_for(lane.wake.wait(), remaining)
            except asyncio.TimeoutError:
                break
        batch: list[_Job] = []
        while lane.jobs and len(batch) < cap:
            job = lane.jobs.popleft()
            if not job.future.done():  # skip requests whose client went away
                batch.append(job)
        return batch

    async def _work(self, key: K, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            if not lane.jobs:
                lane.wake.clear()
                await lane.wake.wait()
                continue
            await asyncio.sleep(0)  # let requests submitted in this same loop turn join
            if not lane.jobs:  # every waiting caller went away meanwhile
                continue
            batch = await self._collect(key, lane)
            if not batch:
                continue
            feeding = len(batch) if self.feeds(key) else 0
            self._running += len(batch)
            self._feeding += feeding
            start = time.monotonic()
            try:
                results = await loop.run_in_executor(self.executor, self.run_batch, key, [j.item for j in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} returned {len(results)} results")
            except Exception as e:  # the whole batch failed: every caller sees the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)
            else:
                for job, result in zip(batch, results):
                    if not job.future.done():
                        job.future.set_result(result)
            finally:
                self._running -= len(batch)
                self._feeding -= feeding
                self.on_batch(key, len(batch), time.monotonic() - start)

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            if lane.worker is not None:
                lane.worker.cancel()
            for job in lane.jobs:
                if not job.future.done():
                    job.future.set_exception(RuntimeError("server shutting down"))
        await asyncio.gather(*(lane.worker for lane in self._lanes.values() if lane.worker), return_exceptions=True)
