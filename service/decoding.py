"""Where uploads are decoded: in a few worker processes, or in the media threads (SLR_DECODE_PROCESSES=0).

A cache miss costs one decode (core.media.prepare_upload: PyAV, swscale, numpy). Its Python-level parts hold
the GIL, so decoding in threads shares one interpreter with the event loop and the batcher: on 2 cores the
miss path topped out below a peer whose decoding runs in its own process (docs/performance.md). Worker
processes decode with their own GIL: upload bytes in, the model's input array out, over a private socket as JSON
plus raw memory both ways (nothing is pickled: the server never runs what a worker that has just handled hostile
bytes sends back).

Each worker has its own socket, read and written by the event loop itself (sock_sendall / sock_recv_into, never
blocking): no executor threads between the request and the worker (concurrent.futures' ProcessPoolExecutor
added 1.3-3 ms per call through its manager thread), and no blocking read of a reply bigger than the socket's
buffer (the event loop would wait on the worker's writes). Workers are spawned, never forked
(the parent holds onnxruntime's and asyncio's threads), at start, so no upload pays for an interpreter start.
They import core only (no torch, no onnxruntime) and end when the server process ends, however it ends.
Each worker holds up to `depth` uploads (SLR_DECODE_DEPTH): the next one waits in its socket while it decodes the
last, so under load it never idles between a reply and the event loop's next request.
A worker that dies while decoding (a codec crashing on a hostile file) is replaced and its uploads tried once
more, each on a worker of its own (a crashing upload cannot take an innocent retry down with it); a second death
is that upload's fault and answers 422. A call given up by its caller (the predictor's timeout, a client gone)
kills its worker mid-decode and starts a fresh one (the calls queued behind it are retried): a stuck decode never
holds a worker.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import logging
import multiprocessing
import os
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from core.config import ModelConfig
from core.media import (
    MediaError,
    MediaLimitExceeded,
    MediaLimits,
    PreparedVideo,
    Source,
    UndecodableMedia,
    UnsupportedMedia,
    prepare_upload,
)
from service.heap import fix_mmap_threshold

log = logging.getLogger("service.decoding")
PARENT_POLL_S = 0.5
PREFIX = struct.Struct("!QI")  # JSON body size, number of raw buffers
ATTEMPTS = 2  # a worker that dies on an upload is replaced and the upload tried once more
MAX_FDS = 4  # file descriptors one request may carry (one spooled upload today)


class WorkerDied(RuntimeError):
    """The worker process exited while it held a call."""


class PoolClosed(RuntimeError):
    """The pool is closed (the server is stopping): a call waiting for a worker, or on one, ends with this."""


class WorkerError(RuntimeError):
    """A worker failed in a way that is not a media error (a bug: the server answers 500, as in a thread)."""


MEDIA_ERRORS = {cls.__name__: cls for cls in (MediaError, UnsupportedMedia, UndecodableMedia, MediaLimitExceeded)}


def loaded_modules(names: list[str]) -> list[str]:
    """Which of `names` a worker has imported (the tests check that torch and onnxruntime are not)."""
    return [n for n in names if n in sys.modules]


def _exit_with_parent(parent: int) -> None:
    """End this worker when the server ends (a SIGKILLed server, an OOM kill), rather than linger as an orphan."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve(sock: socket.socket, parent: int, mmap_threshold: int = 0) -> None:
    """A worker's life: a request (a function by name, its arguments) in, a reply (the result, or the error) out,
    until the server closes the socket."""
    _exit_with_parent(parent)
    fix_mmap_threshold(mmap_threshold)
    sock.setblocking(True)
    while True:
        try:
            body, buffers, fds = read_blocking(sock)
        except (EOFError, OSError):
            return
        files = [os.fdopen(fd, "rb") for fd in fds]  # spooled uploads: decoded where they lie, closed after
        try:
            request = json.loads(body)
            parts = pack_reply(True, function(request["call"])(*decode(request["args"], buffers, files)))
        except Exception as exc:  # noqa: BLE001 (the server re-raises it: media errors keep their type)
            parts = pack_reply(False, exc)
        finally:
            for f in files:
                f.close()
        for part in parts:
            sock.sendall(part)


# ---- messages on a worker socket, both ways: a prefix (body size, number of buffers, their sizes), a JSON body,
# then raw memory (upload bytes, arrays) as it lies: never copied into the body, only by the kernel into the socket.
# A spooled upload travels as its file descriptor (SCM_RIGHTS, beside the prefix): the worker reads the same
# anonymous temporary file, so a large upload is never copied into either process. Nothing is pickled: the
# server does not run what a worker that just handled hostile bytes sends back, and a
# request names its function (module:name) instead of carrying code.

def function(name: str) -> Callable[..., Any]:
    """The function a request names, e.g. 'core.media:prepare_upload' (the server's own calls only)."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def frame(body: bytes, raws: list[memoryview]) -> list[bytes | memoryview]:
    sizes = struct.pack(f"!{len(raws)}Q", *(r.nbytes for r in raws))
    return [PREFIX.pack(len(body), len(raws)) + sizes, body, *raws]


def encode(value: Any, raws: list[memoryview], fds: list[int] | None = None) -> Any:
    """A value as JSON, its bytes and arrays appended to `raws`, its files' descriptors to `fds` (the types the
    decode path passes, nothing else)."""
    if isinstance(value, io.IOBase) and fds is not None:
        fds.append(value.fileno())
        return {"file": len(fds) - 1}
    if isinstance(value, np.ndarray):
        raws.append(np.ascontiguousarray(value).data.cast("B"))
        return {"array": len(raws) - 1, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, bytes):
        raws.append(memoryview(value))
        return {"bytes": len(raws) - 1}
    if isinstance(value, PreparedVideo):  # frames as their uint8 pixels (a quarter of the floats' bytes), or features
        return {"prepared": [encode(value.pixels, raws), encode(value.features, raws), encode(value.box, raws)]}
    if isinstance(value, ModelConfig):
        return {"model_config": value.to_dict()}
    if isinstance(value, MediaLimits):
        return {"media_limits": asdict(value)}
    if isinstance(value, (list, tuple)):
        return [encode(x, raws, fds) for x in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a decode worker message does not carry {type(value).__name__}")


def decode(value: Any, buffers: list[bytearray], files: list[Any] | None = None) -> Any:
    if isinstance(value, list):
        return [decode(x, buffers, files) for x in value]
    if not isinstance(value, dict):
        return value
    if "file" in value and files is not None:
        return files[value["file"]]
    if "prepared" in value:
        pixels, features, box = (decode(x, buffers) for x in value["prepared"])
        return PreparedVideo(pixels, features, tuple(box) if box is not None else None)
    if "bytes" in value:
        return bytes(buffers[value["bytes"]])
    if "model_config" in value:
        return ModelConfig.from_dict(value["model_config"])
    if "media_limits" in value:
        return MediaLimits(**value["media_limits"])
    dtype = np.dtype(value["dtype"])
    if dtype.hasobject:
        raise ValueError("an object array")
    return np.frombuffer(buffers[value["array"]], dtype=dtype).reshape(value["shape"])


def pack_reply(ok: bool, value: Any) -> list[bytes | memoryview]:
    """A reply: (True, the result), or (False, an exception: media errors by name, anything else as its type and
    message)."""
    raws: list[memoryview] = []
    head = {"ok": True, "value": encode(value, raws)} if ok else {"ok": False, "error": type(value).__name__,
                                                                   "message": str(value)}
    return frame(json.dumps(head).encode(), raws)


def pack_request(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[list[bytes | memoryview], list[int]]:
    """A request's parts and the file descriptors that go with its first part."""
    raws: list[memoryview] = []
    fds: list[int] = []
    body = {"call": f"{fn.__module__}:{fn.__qualname__}", "args": encode(list(args), raws, fds)}
    return frame(json.dumps(body).encode(), raws), fds


def unpack_reply(body: bytes | bytearray, buffers: list[bytearray]) -> tuple[bool, Any]:
    """A worker's reply back into values (arrays over the received memory: no copy); a media error raised there is
    the same error here. A reply that does not parse is treated as the worker's death (it is replaced)."""
    try:
        head = json.loads(body)
        if not head["ok"]:
            known = MEDIA_ERRORS.get(head["error"])
            return False, known(head["message"]) if known else WorkerError(f"{head['error']}: {head['message']}")
        return True, decode(head["value"], buffers)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise WorkerDied(f"a decode worker sent a malformed reply ({type(e).__name__}: {e})") from None


def _unpacker() -> Generator[int, bytearray, tuple[bytearray, list[bytearray]]]:
    """Sans-IO reader of one message: yields how many bytes it needs next, is sent them; returns (body, buffers)."""
    body_size, n_buffers = PREFIX.unpack((yield PREFIX.size))
    sizes = struct.unpack(f"!{n_buffers}Q", (yield 8 * n_buffers)) if n_buffers else ()
    body = yield body_size
    buffers = []
    for size in sizes:
        buffers.append((yield size))
    return body, buffers


def read_blocking(sock: socket.socket) -> tuple[bytearray, list[bytearray], list[int]]:
    """One request: (body, buffers, the file descriptors that came with its prefix)."""
    reader = _unpacker()
    need = next(reader)
    first, fds, _, _ = socket.recv_fds(sock, need, MAX_FDS)  # the descriptors ride on the prefix's first byte
    if not first:
        raise EOFError
    chunk = bytearray(first) + _recv_exactly_blocking(sock, need - len(first))
    while True:
        try:
            need = reader.send(chunk)
            chunk = _recv_exactly_blocking(sock, need)
        except StopIteration as done:
            body, buffers = done.value
            return body, buffers, fds


async def read_async(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[bytearray, list[bytearray]]:
    reader = _unpacker()
    need = next(reader)
    while True:
        try:
            need = reader.send(await _recv_exactly(loop, sock, need))
        except StopIteration as done:
            return done.value


def _recv_exactly_blocking(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError
        got += k
    return buf


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytearray:
    """n bytes from a non-blocking socket without blocking the event loop (a reply is bigger than one read)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = await loop.sock_recv_into(sock, view[got:])
        if k == 0:
            raise WorkerDied("decode worker exited")
        got += k
    return buf


@dataclass
class Worker:
    process: BaseProcess
    sock: socket.socket  # the server's end, non-blocking: read and written by the event loop
    load: int = 0  # calls sent and not yet answered (at most the pool's depth)
    alone: bool = False  # its one call is a retry, which shares the worker with no other call
    # Requests go out whole, one at a time, and are answered in the order they went out: each call reads its reply
    # once the call before it on this worker has read its own (`reading`: that call's done-reading future).
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    reading: asyncio.Future[None] | None = None
    active: int = 0  # calls sending or reading on the socket now: it is closed only once none is (stop_worker)
    retired: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid


def spawn_worker(mmap_threshold: int = 0) -> Worker:
    ours, theirs = socket.socketpair()  # multiprocessing hands `theirs` to the spawned child (a duplicated fd)
    process = multiprocessing.get_context("spawn").Process(target=_serve,
                                                           args=(theirs, os.getpid(), mmap_threshold),
                                                           name="slr-decode", daemon=True)
    process.start()
    theirs.close()
    ours.setblocking(False)
    return Worker(process, ours)


def stop_worker(w: Worker) -> None:
    """Kill the worker; its socket closes now if no call is on it, else when the last one leaves (Worker.active).
    Closed under a pending read, the event loop would never wake that read again (epoll forgets a closed fd): the
    call would hang. The kill and a shutdown of our end make every pending read see EOF and every write fail."""
    w.retired = True
    if w.process.is_alive():
        w.process.kill()
    w.process.join(timeout=1)
    if w.active:
        with contextlib.suppress(OSError):
            w.sock.shutdown(socket.SHUT_RDWR)
    else:
        w.sock.close()


class DecodePool:
    """prepare_upload in `processes` spawned workers, or in `threads` (the media thread pool) when 0. Each worker
    holds up to `depth` calls: the next upload waits in its socket while it decodes the last, so a busy server's
    workers never sit idle between a reply and the event loop's next request (depth 1: one call at a time)."""

    def __init__(self, processes: int, threads: Executor, mmap_threshold: int = 0, depth: int = 1) -> None:
        """mmap_threshold: each worker's pinned glibc mmap threshold in bytes (service/heap.py; 0: malloc's own)."""
        self.processes, self._threads, self.mmap_threshold = processes, threads, mmap_threshold
        self.depth = max(1, depth)
        self._workers: list[Worker] = [spawn_worker(mmap_threshold) for _ in range(processes)]
        self._waiters: deque[tuple[asyncio.Future[Worker], bool]] = deque()  # (waiter, needs a worker alone)
        self.restarts = 0  # workers replaced after dying or being given up on
        self.closed = False

    @property
    def pids(self) -> list[int | None]:
        return [w.pid for w in self._workers]

    async def warm(self) -> None:
        """Wait until every worker has imported core and answers (before the server reports ready)."""
        await asyncio.gather(*(self.call(loaded_modules, []) for _ in self._workers))

    async def prepare(self, data: Source, cfg: ModelConfig, limits: MediaLimits) -> PreparedVideo:
        return await self.call(prepare_upload, data, cfg, limits)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) in a worker process (fn importable from core or the standard library), or in a thread."""
        if self.closed:
            raise PoolClosed("the decode pool is closed")
        if not self.processes:
            return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)
        for attempt in range(ATTEMPTS):
            # A retry follows a worker's death: it runs on a worker of its own, so that an upload that kills its
            # decoder cannot take another caller's retry down with it.
            worker = await self._acquire(alone=attempt > 0)
            try:
                ok, value = await self._run(worker, fn, args)
            except WorkerDied:
                if self.closed:  # killed by close(), not by its upload
                    raise PoolClosed("the decode pool closed during the call") from None
                self._replace(worker)
                if attempt == ATTEMPTS - 1:
                    raise UndecodableMedia("the decoder stopped on this upload (its worker process exited while "
                                           "decoding it)") from None
                continue
            except BaseException:  # cancelled mid-call: the worker's state is unknown, so it goes
                self._replace(worker)
                raise
            self._release(worker)
            if not ok:
                raise value
            return value
        raise AssertionError("unreachable")

    async def _run(self, w: Worker, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        loop = asyncio.get_running_loop()
        before, w.reading = w.reading, loop.create_future()
        mine = w.reading
        w.active += 1
        try:
            parts, fds = pack_request(fn, args)
            async with w.sending:  # FIFO: requests leave in the order their calls took their turn to read
                if fds:  # on the prefix, sent at once with its descriptors
                    sent = socket.send_fds(w.sock, [parts[0]], fds)
                    parts = [parts[0][sent:], *parts[1:]]
                for part in parts:
                    await loop.sock_sendall(w.sock, part)
            if before is not None and not before.done():  # waited on, not awaited: a call given up here must not
                await asyncio.wait([before])  # cancel the future of the call reading before it
            return unpack_reply(*await read_async(loop, w.sock))
        except OSError:
            raise WorkerDied(f"decode worker {w.pid} exited") from None
        finally:
            mine.set_result(None)
            w.active -= 1
            if w.retired and not w.active:
                w.sock.close()

    def _fits(self, w: Worker, alone: bool) -> bool:
        return w.load == 0 if alone else not w.alone and w.load < self.depth

    def _take(self, alone: bool) -> Worker | None:
        """A slot on the least loaded worker that has room (`alone`: a worker with nothing else in flight)."""
        free = [w for w in self._workers if self._fits(w, alone)]
        if not free:
            return None
        w = min(free, key=lambda x: x.load)
        w.load, w.alone = w.load + 1, alone
        return w

    async def _acquire(self, alone: bool = False) -> Worker:
        """A slot on a worker, first come first served."""
        while self._waiters and self._waiters[0][0].done():  # callers that gave up waiting
            self._waiters.popleft()
        w = None if self._waiters else self._take(alone)
        if w is not None:
            return w
        waiter: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        self._waiters.append((waiter, alone))
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot just as it was cancelled
                self._release(waiter.result())
            raise

    def _release(self, w: Worker) -> None:
        """A call on `w` is answered: its slot is free for the waiters."""
        if w in self._workers:  # else replaced meanwhile: its slots went with it
            w.load -= 1
            w.alone = w.alone and w.load > 0
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to the waiters in order (one that needs a worker alone holds up those behind it)."""
        while self._waiters:
            waiter, alone = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            w = self._take(alone)
            if w is None:
                return
            self._waiters.popleft()
            waiter.set_result(w)

    def _replace(self, w: Worker) -> None:
        """Kill `w` (its other calls in flight fail as WorkerDied and are tried again) and start a fresh worker."""
        if w not in self._workers or self.closed:  # another of its calls replaced it already; or closing
            return
        log.warning("decode worker %s replaced (it exited, or its call was given up)", w.pid)
        stop_worker(w)
        self._workers[self._workers.index(w)] = spawn_worker(self.mmap_threshold)
        self.restarts += 1
        self._dispatch()

    def close(self) -> None:
        """Stop every worker and start none again: calls on them end as PoolClosed (not a retry on a fresh worker,
        which outlived the server), and so do calls waiting for one."""
        self.closed = True
        for w in self._workers:
            stop_worker(w)
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the decode pool closed while the call waited for a worker"))
