"""The decode pool: uploads decoded in spawned worker processes give the same model input as in a thread, the
workers import core only (no torch, no onnxruntime), and a worker that dies is replaced without losing the pool."""
from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bench.support import FORMATS, encode_clip, moving_square_clip
from core.config import ModelConfig
from core.media import MediaLimitExceeded, MediaLimits, PreparedVideo, UndecodableMedia, prepare_upload
from service.decoding import (
    DecodePool,
    WorkerDied,
    WorkerError,
    decode,
    function,
    loaded_modules,
    pack_reply,
    pack_request,
    read_blocking,
    unpack_reply,
)
from tests.service_fixtures import ROOT

CFG = ModelConfig(frames=8, height=36, width=64, frame_fit="pad")
LIMITS = MediaLimits(max_frames=500, max_pixels=640 * 480, max_decode_s=10.0)


@pytest.fixture(scope="module")
def pool() -> Iterator[DecodePool]:
    threads = ThreadPoolExecutor(2)
    p = DecodePool(2, threads)
    yield p
    p.close()
    threads.shutdown()


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_worker_decodes_what_a_thread_decodes(pool: DecodePool, fmt: str) -> None:
    data = encode_clip(moving_square_clip(24, 90, 160, seed=3), fmt)
    here = prepare_upload(data, CFG, LIMITS)
    there = run(pool.prepare(data, CFG, LIMITS))
    np.testing.assert_array_equal(there.array, here.array)
    np.testing.assert_array_equal(there.first_frame, here.first_frame)
    assert there.box == here.box


def test_the_servers_event_loop_reads_replies_whole(pool: DecodePool) -> None:
    """uvicorn runs uvloop, which leaves a watched pipe non-blocking: a reply bigger than one read must still
    arrive whole (it once read as a dead worker)."""
    import uvloop

    data = encode_clip(moving_square_clip(150, 120, 160, seed=5), "mp4")
    big = ModelConfig(frames=16, height=144, width=256, frame_fit="pad")  # a 7 MB reply
    got = uvloop.run(pool.prepare(data, big, LIMITS))
    np.testing.assert_array_equal(got.array, prepare_upload(data, big, LIMITS).array)
    assert pool.restarts == 0


def round_trip(ok: bool, value: object) -> tuple[bool, object]:
    """pack_reply / read_blocking / unpack_reply over a real socket pair."""
    a, b = socket.socketpair()
    writer = threading.Thread(target=lambda: [a.sendall(part) for part in pack_reply(ok, value)])
    writer.start()
    body, buffers, fds = read_blocking(b)
    assert fds == []
    got = unpack_reply(body, buffers)
    writer.join()
    a.close()
    b.close()
    return got


def test_replies_carry_arrays_of_any_layout_and_errors_without_pickle() -> None:
    grid = np.arange(2 * 36 * 64 * 3, dtype=np.float32).reshape(2, 36, 64, 3)
    value = [grid, np.asfortranarray(grid[0]), grid[:, ::3, 1::2], 7, "x", None,
             PreparedVideo(features=grid, box=(1, 2, 30, 60))]
    ok, got = round_trip(True, value)
    assert ok
    for i in range(3):
        np.testing.assert_array_equal(got[i], value[i])
    assert got[3:6] == [7, "x", None]
    np.testing.assert_array_equal(got[6].array, grid)
    assert got[6].box == (1, 2, 30, 60)
    ok, err = round_trip(False, MediaLimitExceeded("too long"))
    assert not ok and type(err) is MediaLimitExceeded and str(err) == "too long"
    ok, err = round_trip(False, KeyError("bug"))  # not a media error: the server's 500, as in a thread
    assert not ok and isinstance(err, WorkerError) and "KeyError" in str(err)


def test_a_prepared_upload_travels_as_its_uint8_pixels_and_arrives_bit_for_bit() -> None:
    """A worker's reply carries a frames model's upload as uint8 (a quarter of the floats' bytes); the server gets
    the very floats, first frame and box prepare_upload made in process."""
    prepared = prepare_upload(encode_clip(moving_square_clip(8, 48, 64), "mp4"), CFG, LIMITS)
    assert prepared.pixels is not None and prepared.pixels.dtype == np.uint8
    parts = pack_reply(True, prepared)
    assert sum(memoryview(p).nbytes for p in parts[2:]) == prepared.pixels.nbytes == prepared.array.nbytes // 4
    ok, got = round_trip(True, prepared)
    assert ok and got.box == prepared.box
    for name in ("array", "first_frame", "pixels"):
        mine, theirs = getattr(prepared, name), getattr(got, name)
        assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), name


def test_a_request_names_its_function_and_carries_the_upload_as_raw_bytes() -> None:
    data = encode_clip(moving_square_clip(8, 48, 64), "mp4")
    (head, body, upload), fds = pack_request(prepare_upload, (data, CFG, LIMITS))
    request = json.loads(body)
    assert fds == []
    assert request["call"] == "core.media:prepare_upload" and bytes(upload) == data
    assert function(request["call"]) is prepare_upload
    assert decode(request["args"], [bytearray(upload)]) == [data, CFG, LIMITS]


def spooled(data: bytes) -> tempfile.SpooledTemporaryFile:
    """An upload as Starlette holds a file part past its spool size: an anonymous temporary file on disk."""
    f = tempfile.SpooledTemporaryFile(max_size=1024)
    f.write(data)
    f.fileno()  # rolled to disk, as Starlette's parser leaves a part larger than its spool size
    return f


def holds(pid: int | None, f: tempfile.SpooledTemporaryFile) -> bool:
    """Whether a process has this (anonymous, unlinked) file open."""
    fd_dir, inode = Path(f"/proc/{pid}/fd"), os.fstat(f.fileno()).st_ino
    return any(os.readlink(fd_dir / n).startswith(f"/tmp/#{inode} ") for n in os.listdir(fd_dir))


def test_a_spooled_upload_is_decoded_from_its_file_by_descriptor(pool: DecodePool) -> None:
    """A large upload goes to the worker as its file descriptor (no copy of its bytes in either process), decodes
    as its bytes do, and the worker lets go of the file once it has answered, on success and on a media error."""
    data = encode_clip(moving_square_clip(40, 90, 160, seed=5), "mp4")
    with spooled(data) as f:
        (head, body, *raws), fds = pack_request(prepare_upload, (f, CFG, LIMITS))
        assert fds == [f.fileno()] and raws == []  # the bytes do not travel
        there = run(pool.prepare(f, CFG, LIMITS))
        assert np.array_equal(there.array, prepare_upload(data, CFG, LIMITS).array)
        assert not any(holds(pid, f) for pid in pool.pids)
        with spooled(data[: len(data) // 4]) as cut:
            with pytest.raises(UndecodableMedia):
                run(pool.prepare(cut, CFG, LIMITS))
            assert not any(holds(pid, cut) for pid in pool.pids)


def test_a_reply_cannot_smuggle_objects() -> None:
    """What a (compromised) worker could send is JSON and raw memory: an object array is refused, a pickle is
    never read."""
    with pytest.raises(WorkerDied, match="malformed reply.*object array"):
        unpack_reply(json.dumps({"ok": True, "value": {"array": 0, "dtype": "|O", "shape": [1]}}).encode(),
                     [bytearray(8)])
    with pytest.raises(WorkerDied, match="malformed reply"):
        unpack_reply(pickle.dumps({"ok": True, "value": 1}), [])


def test_workers_import_neither_torch_nor_onnxruntime(pool: DecodePool) -> None:
    run(pool.prepare(encode_clip(moving_square_clip(8, 48, 64), "mp4"), CFG, LIMITS))  # a decode has happened
    assert run(pool.call(loaded_modules, ["av", "torch", "onnxruntime", "service.engine", "fastapi"])) == ["av"]


def test_media_errors_cross_the_process_boundary_as_themselves(pool: DecodePool) -> None:
    with pytest.raises(UndecodableMedia):
        run(pool.prepare(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, CFG, LIMITS))
    assert pool.restarts == 0  # an error raised by the decoder leaves the workers alone


def test_a_dead_worker_is_replaced_and_the_pool_serves_on() -> None:
    threads = ThreadPoolExecutor(2)
    p = DecodePool(2, threads)
    try:
        first = p.pids
        with pytest.raises(UndecodableMedia, match="worker process exited"):
            run(p.call(os._exit, 3))  # dies on the first try and on the retry
        assert p.restarts == 2 and p.pids != first and len(p.pids) == 2
        data = encode_clip(moving_square_clip(8, 48, 64), "mp4")
        np.testing.assert_array_equal(run(p.prepare(data, CFG, LIMITS)).array, prepare_upload(data, CFG, LIMITS).array)
    finally:
        p.close()
        threads.shutdown()


def test_a_call_given_up_kills_its_worker_and_a_fresh_one_serves() -> None:
    threads = ThreadPoolExecutor(1)
    p = DecodePool(1, threads)
    try:
        stuck = p.pids[0]

        async def give_up() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(p.call(time.sleep, 30), 0.5)

        run(give_up())
        assert p.restarts == 1 and p.pids[0] != stuck and not Path(f"/proc/{stuck}").exists()
        data = encode_clip(moving_square_clip(8, 48, 64), "mp4")
        np.testing.assert_array_equal(run(p.prepare(data, CFG, LIMITS)).array, prepare_upload(data, CFG, LIMITS).array)
    finally:
        p.close()
        threads.shutdown()


def test_concurrent_calls_share_the_workers(pool: DecodePool) -> None:
    clips = [encode_clip(moving_square_clip(12, 48, 64, seed=i), "mp4") for i in range(12)]

    async def all_at_once() -> list:
        return await asyncio.gather(*(pool.prepare(c, CFG, LIMITS) for c in clips))

    for got, clip in zip(run(all_at_once()), clips):
        np.testing.assert_array_equal(got.array, prepare_upload(clip, CFG, LIMITS).array)


def test_a_worker_holds_two_calls_at_depth_two_and_answers_each_its_own() -> None:
    """At depth 2 one worker takes a second upload while it decodes the first (no second process), and the
    replies, read in the order the requests went out, reach their own callers; a third call waits for a slot."""
    threads = ThreadPoolExecutor(1)
    p = DecodePool(1, threads, depth=2)
    clips = [encode_clip(moving_square_clip(12, 48, 64, seed=i), "mp4") for i in range(5)]
    try:
        async def go() -> list:
            slow = asyncio.create_task(p.call(time.sleep, 1.0))
            await asyncio.sleep(0.05)
            assert p._workers[0].load == 1
            second = asyncio.create_task(p.prepare(clips[0], CFG, LIMITS))
            third = asyncio.create_task(p.prepare(clips[1], CFG, LIMITS))
            await asyncio.sleep(0.05)
            assert p._workers[0].load == 2 and not second.done() and len(p._waiters) == 1  # sent; the third waits
            rest = await asyncio.gather(*(p.prepare(c, CFG, LIMITS) for c in clips[2:]))
            return [await slow, await second, await third, *rest]

        got = run(go())
        assert got[0] is None and p.restarts == 0 and p._workers[0].load == 0
        for prepared, clip in zip(got[1:], clips):
            np.testing.assert_array_equal(prepared.array, prepare_upload(clip, CFG, LIMITS).array)
    finally:
        p.close()
        threads.shutdown()


def test_a_death_or_a_call_given_up_at_depth_two_costs_the_other_call_a_retry_not_its_answer() -> None:
    threads = ThreadPoolExecutor(1)
    p = DecodePool(1, threads, depth=2)
    data = encode_clip(moving_square_clip(8, 48, 64), "mp4")
    want = prepare_upload(data, CFG, LIMITS).array
    try:
        async def beside(first: Callable[[], Awaitable[object]]) -> np.ndarray:
            doomed = asyncio.create_task(first())
            await asyncio.sleep(0.05)
            innocent = await p.prepare(data, CFG, LIMITS)  # queued behind it on the same worker
            with pytest.raises((UndecodableMedia, asyncio.TimeoutError)):
                await doomed
            return innocent.array

        np.testing.assert_array_equal(run(beside(lambda: p.call(os._exit, 3))), want)
        dead = p.restarts
        assert dead >= 2  # the dying call's two tries
        np.testing.assert_array_equal(run(beside(lambda: asyncio.wait_for(p.call(time.sleep, 30), 0.3))), want)
        assert p.restarts == dead + 1 and p._workers[0].load == 0
    finally:
        p.close()
        threads.shutdown()


def test_zero_processes_decodes_in_the_threads() -> None:
    threads = ThreadPoolExecutor(1)
    p = DecodePool(0, threads)
    assert p.pids == []
    data = encode_clip(moving_square_clip(8, 48, 64), "webm")
    np.testing.assert_array_equal(run(p.prepare(data, CFG, LIMITS)).array, prepare_upload(data, CFG, LIMITS).array)
    threads.shutdown()


def worker_pids_of_a_killed_parent() -> list[int]:
    """A parent that starts a pool of 2, prints the workers' pids, and is then SIGKILLed (no shutdown at all)."""
    code = ("import sys, time; from concurrent.futures import ThreadPoolExecutor; "
            "from service.decoding import DecodePool; p = DecodePool(2, ThreadPoolExecutor(1)); "
            "print(*p.pids, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pids = [int(x) for x in parent.stdout.readline().split()]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return pids


def test_workers_end_when_the_server_is_killed() -> None:
    pids = worker_pids_of_a_killed_parent()
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and "zombie" not in proc_state(pid) for pid in pids):
        assert time.monotonic() < deadline, f"decode workers {pids} outlived their killed parent"
        time.sleep(0.1)


def proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"  # gone between the two reads


def test_a_call_given_up_while_another_reads_the_same_worker_never_strands_the_reader() -> None:
    """Depth 2: the second call on a worker is given up (its client left) while the first waits for its reply. The
    worker is replaced, and its socket must stay open until the first call has seen the worker go (EOF): closed
    under a pending read, the event loop never wakes that read again and its caller hangs."""
    threads = ThreadPoolExecutor(1)
    p = DecodePool(1, threads, depth=2)
    try:
        async def go() -> object:
            await p.warm()
            reader = asyncio.create_task(p.call(time.sleep, 0.5))
            await asyncio.sleep(0.1)  # the first call's request is out and its reply awaited
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(p.call(time.sleep, 0), 0.2)  # queued behind it, then given up
            return await asyncio.wait_for(reader, 15)  # a retry on the fresh worker, not a hang

        assert run(go()) is None
        assert p.restarts == 1  # the worker given up with the second call; the first call retried on its successor
    finally:
        p.close()
        threads.shutdown()


def test_a_closed_pool_ends_its_calls_and_starts_no_worker() -> None:
    """close() with a call on the worker and one waiting for it (the server stopping under load): both end as
    PoolClosed, no fresh worker is spawned for a retry (before, the killed call's retry started one that outlived the
    pool), and a later call is refused at once."""
    from service.decoding import PoolClosed

    threads = ThreadPoolExecutor(1)
    p = DecodePool(1, threads)
    first = p._workers[0].process

    async def close_under_load() -> list:
        calls = [asyncio.ensure_future(p.call(time.sleep, 20)) for _ in range(2)]  # one on the worker, one waiting
        await asyncio.sleep(0.5)
        p.close()
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)

    try:
        outcomes = run(close_under_load())
        assert [type(o) for o in outcomes] == [PoolClosed, PoolClosed], outcomes
        assert p.restarts == 0 and p._workers[0].process is first and not first.is_alive()
        with pytest.raises(PoolClosed):
            run(p.call(time.sleep, 0))
    finally:
        p.close()
        threads.shutdown()


def test_a_server_stopping_answers_an_upload_503_not_ready(artifacts_dir: Path) -> None:
    """The predictor's decode pool closed under a request: the request's answer is the service's 503 (not_ready,
    send it again), not a 500."""
    from service.engine import Engine
    from service.errors import NotReady
    from service.metrics import Metrics
    from service.predictor import Upload, build_predictor
    from service.settings import Settings

    predictor = build_predictor(Engine.load(artifacts_dir, intra_op_threads=1), Settings(redis_url=""), Metrics(),
                                local=True)
    clip = encode_clip(moving_square_clip(8, 48, 64), "mp4")

    async def go() -> None:
        try:
            predictor.decoder.close()
            with pytest.raises(NotReady, match="stopping") as refused:
                await predictor.prepare(Upload(clip, "clip.mp4"))
            assert refused.value.status == 503
        finally:
            await predictor.close()

    asyncio.run(go())
