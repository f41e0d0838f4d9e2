"""service.batching: concurrent jobs of one key share a call, a lone job does not wait, the queue is bounded."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.batching import Batcher, QueueFull
from tests.service_fixtures import receive_then_disconnect


class Recorder:
    """A run_batch that records batch sizes and can be held, like a slow engine call; `entered` counts the calls
    that have started (a held call has started and waits for `release`)."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, list[int]]] = []
        self.entered = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key: object, items: list[int]) -> list[int]:
        self.entered += 1
        assert self.release.wait(60), "never released"
        self.calls.append((key, list(items)))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 10 for i in items]


def run(coro):
    return asyncio.run(coro)


async def until(condition, timeout_s: float = 30.0) -> None:
    """Yield to the loop until `condition()` holds: ordering by events, not by how long a sleep lasts."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still not {condition.__doc__ or condition} after {timeout_s} s"
        await asyncio.sleep(0.001)


def make(rec: Recorder, **kw) -> Batcher:
    opts = {"max_batch": 8, "max_wait_ms": 50, "queue_size": 64} | kw
    return Batcher(rec, ThreadPoolExecutor(4), **opts)


async def held(rec: Recorder, b: Batcher, waiting: tuple[int, ...]) -> tuple[asyncio.Task, list[asyncio.Task]]:
    """Job 0 running and held inside the engine, then the `waiting` jobs queued behind it: (job 0, the others)."""
    rec.release.clear()
    first = asyncio.create_task(b.submit("k", 0))
    await until(lambda: rec.entered == 1)
    queued = [asyncio.create_task(b.submit("k", i)) for i in waiting]
    await until(lambda: b.queued == len(waiting))
    return first, queued


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
        b = make(Recorder(), max_wait_ms=120_000)
        assert await asyncio.wait_for(b.submit("k", 1), 60) == 10  # half the window: it did not wait for it
        await b.close()

    run(go())


def test_work_that_feeds_no_lane_does_not_hold_a_lone_job() -> None:
    """A lone request's caption and familiarity score run together (service/predictor.py): the one running must not
    make the other wait the window for companions that only work that feeds (an encoder) could bring."""
    release = threading.Event()

    def engine(key: str, items: list[int]) -> list[int]:
        if key == "score":
            assert release.wait(60), "never released"
        return [i * 10 for i in items]

    async def go() -> None:
        b = Batcher(engine, ThreadPoolExecutor(4), max_batch=8, max_wait_ms=120_000, queue_size=64,
                    feeds=lambda key: key == "encode")
        score = asyncio.create_task(b.submit("score", 1))
        await until(lambda: b.running == 1)
        assert await asyncio.wait_for(b.submit("sentence", 2), 60) == 20  # not the window: it went out at once
        release.set()
        assert await score == 10
        await b.close()

    run(go())


def test_under_a_backlog_a_lane_that_feeds_nothing_waits_for_companions_and_an_encoder_does_not() -> None:
    """Uploads waiting for a decoder (the server saturated): a caption waits up to the backlog window for the
    captions on their way, so they share one call; an encoder's job (whose batch saves nothing) still goes at once,
    and once the backlog is gone a lone caption does too."""
    backlog = [True]

    async def go() -> None:
        rec = Recorder()
        b = Batcher(rec, ThreadPoolExecutor(4), max_batch=8, max_wait_ms=0, queue_size=64,
                    feeds=lambda key: key == "encode", backlog=lambda: backlog[0], backlog_wait_ms=120_000)
        assert await asyncio.wait_for(b.submit("encode", 1), 60) == 10  # feeds others: no backlog wait
        first = asyncio.create_task(b.submit("sentence", 2))
        await until(lambda: b.queued == 1)
        await asyncio.sleep(0.05)
        assert not first.done() and len(rec.calls) == 1  # waiting for companions, not yet run
        second = asyncio.create_task(b.submit("sentence", 3))
        backlog[0] = False  # the backlog drains: the batch goes at the next arrival, not at the window's end
        assert await asyncio.wait_for(asyncio.gather(first, second), 60) == [20, 30]
        assert rec.calls[1] == ("sentence", [2, 3])
        assert await asyncio.wait_for(b.submit("sentence", 4), 60) == 40  # no backlog: a lone job goes at once
        await b.close()

    run(go())


def test_jobs_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec, max_wait_ms=1000)
        first, rest = await held(rec, b, (1, 2, 3, 4))
        rec.release.set()
        await asyncio.gather(first, *rest)
        assert [len(items) for _, items in rec.calls] == [1, 4]
        await b.close()

    run(go())


def test_full_queue_raises_at_once() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec, max_batch=1, queue_size=2)
        running, queued = await held(rec, b, (1, 2))
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
        b = make(rec)
        first, (gone, kept) = await held(rec, b, (1, 2))
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


def test_a_cancelled_caller_frees_its_queue_slot_at_once() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec, max_batch=1, queue_size=2)
        running, gone = await held(rec, b, (1, 2))
        for t in gone:
            t.cancel()
        await asyncio.sleep(0)
        assert b.queued == 0  # not only when the worker gets to them
        kept = asyncio.create_task(b.submit("k", 3))  # the queue has room again
        rec.release.set()
        assert await running == 0 and await kept == 30
        assert [items for _, items in rec.calls] == [[0], [3]]
        await b.close()

    run(go())


def test_max_batch_per_key() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec, max_batch=lambda key: 2 if key == "enc" else 8)
        await asyncio.gather(*(b.submit("enc", i) for i in range(5)), *(b.submit("dec", i) for i in range(5)))
        sizes = {k: [len(items) for kk, items in rec.calls if kk == k] for k in ("enc", "dec")}
        assert sizes == {"enc": [2, 2, 1], "dec": [5]}
        await b.close()

    run(go())


def test_batching_off_runs_every_job_alone_without_waiting() -> None:
    async def go() -> None:
        rec = Recorder()
        b = make(rec, max_batch=1, max_wait_ms=0)
        assert await asyncio.gather(*(b.submit("k", i) for i in range(4))) == [0, 10, 20, 30]
        assert [len(items) for _, items in rec.calls] == [1, 1, 1, 1]  # and no window to wait: max_wait_ms=0
        await b.close()

    run(go())


# ---------------------------------------------------------------- the predictor's batch keys (fake engine)

class FakeEngine:
    """Records decode_sentence calls; row i decodes to `max_len` copies of word 4 + i (so cuts are visible)."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.config = SimpleNamespace(max_words=6, height=4, width=4, latent_dim=3)
        self.vocab = SimpleNamespace(decode=lambda ids: " ".join(map(str, ids)))
        from core.channels import REGISTRY

        self.version = "fake"
        self.manifest = SimpleNamespace(tasks=dict.fromkeys(REGISTRY), graphs=dict.fromkeys(("encoder_v", "encoder_s")),
                                        familiarity=None)
        self.calls: list[tuple[int, int, int]] = []

    def decode_sentence(self, z, beam_size=1, max_len=None):
        time.sleep(0.02)  # a real engine call takes a while: later requests queue behind it
        self.calls.append((len(z), beam_size, max_len))
        return [[int(row[0])] * max_len for row in z]


def make_predictor(**settings):
    from service.cache import SlrCache
    from service.metrics import Metrics
    from service.predictor import Predictor
    from service.settings import Settings

    engine = FakeEngine()
    s = Settings(redis_url="", **{"max_wait_ms": 50, **settings})
    return engine, Predictor(engine, SlrCache(None, 60, 16, (4, 4, 3)), Metrics(), s)


def test_beam_search_batches_across_requests() -> None:
    import numpy as np

    async def go() -> None:
        engine, p = make_predictor()
        zs = [np.full((2, 3), i, np.float32) for i in range(3)]  # 3 requests of 2 rows each
        out = await asyncio.gather(*(p.sentences(z, beam_size=3, max_len=4) for z in zs))
        assert out == [["0 0 0 0"] * 2, ["1 1 1 1"] * 2, ["2 2 2 2"] * 2]
        assert engine.calls == [(6, 3, 4)]  # one beam search over every request's rows
        await p.close()

    run(go())


def test_greedy_rows_with_different_max_len_share_a_batch() -> None:
    import numpy as np

    async def go() -> None:
        engine, p = make_predictor()
        out = await asyncio.gather(p.sentences(np.full((1, 3), 5, np.float32), 1, 2),
                                   p.sentences(np.full((1, 3), 6, np.float32), 1, None))
        assert out == [["5 5"], ["6 6 6 6 6 6 6"]]  # None: the model's max_words + 1
        assert engine.calls == [(2, 1, 7)]
        await p.close()

    run(go())


def test_batching_switch_off_decodes_each_request_alone() -> None:
    import numpy as np

    async def go() -> None:
        engine, p = make_predictor(batching=False)
        await asyncio.gather(*(p.sentences(np.full((1, 3), i, np.float32), 1, 3) for i in range(3)))
        assert [n for n, _, _ in engine.calls] == [1, 1, 1]
        await p.close()

    run(go())


# ---------------------------------------------------------------- a client that goes away is cancelled

def test_disconnected_client_cancels_its_request() -> None:
    from service.disconnect import CancelOnDisconnect

    async def go() -> None:
        seen: dict[str, object] = {}

        waiting = asyncio.Event()

        async def app(scope, receive, send):
            await receive()  # the whole body
            waiting.set()
            try:
                await asyncio.sleep(60)  # waiting for the engine
            except asyncio.CancelledError:
                seen["cancelled"] = True
                raise

        gone = asyncio.Event()
        receive = receive_then_disconnect(gone)

        async def send(message):
            seen.setdefault("sent", []).append(message)

        task = asyncio.create_task(CancelOnDisconnect(app)({"type": "http"}, receive, send))
        await asyncio.wait_for(waiting.wait(), 30)  # the request is inside the app, waiting
        assert not task.done()
        gone.set()
        await asyncio.wait_for(task, 30)  # returns quietly: nobody waits for an answer
        assert seen.get("cancelled") is True and "sent" not in seen

    run(go())


def test_a_client_that_stays_gets_its_answer() -> None:
    from service.disconnect import CancelOnDisconnect

    async def go() -> None:
        sent = []

        async def app(scope, receive, send):
            await receive()
            await asyncio.sleep(0.05)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        done = asyncio.Event()
        receive = receive_then_disconnect(done, body=b"")

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body":
                done.set()  # like uvicorn: after the answer, receive() reports the end of the cycle

        await asyncio.wait_for(CancelOnDisconnect(app)({"type": "http"}, receive, send), 30)
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]

    run(go())


def test_a_sentence_that_reaches_the_cap_is_marked_truncated() -> None:
    """The fake engine never ends a row: every caption runs to its cap, and describe says so with a coded warning.
    A row that ends before the cap is not marked (the engine below stops after two words)."""
    import numpy as np

    from service.cache import SlrEntry
    from service.predictor import Latent

    async def go() -> None:
        engine, p = make_predictor()
        entry = SlrEntry(mu=np.full(3, 5, np.float32), sigma=np.ones(3, np.float32))
        latent = Latent(latent_id="x", config="v", entry=entry, cached=False)
        cut = await p.describe(latent, 0, 0, 1, 4)
        assert cut.caption == "5 5 5 5" and cut.truncated and cut.cap == 4
        assert [w.code for w in cut.cut_off()] == ["truncated"] and "4 words" in cut.cut_off()[0].message
        engine.decode_sentence = lambda z, beam_size=1, max_len=None: [[5, 5] for _ in z]  # ended: <eos> after two
        other = Latent(latent_id="y", config="v", entry=entry, cached=False)  # "x"'s sentence is remembered
        ended = await p.describe(other, 0, 0, 1, 4)
        assert ended.caption == "5 5" and not ended.truncated and ended.cut_off() == []
        await p.close()

    run(go())
