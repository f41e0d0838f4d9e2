"""The serving process's heap: bounded (glibc's mmap threshold and arenas) and cheap to collect (start-up objects
frozen).

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB on 64-bit), so every later
buffer of that size (a batch of decoded frames, onnxruntime's activations with its arena off) is carved from the
heap instead, where freed space fragments and is rarely given back. Under a cache-miss sweep that left the serving
process 54 MB larger than with a fixed threshold (238 against 184 MB after the same load; docs/performance.md).
A fixed threshold keeps large buffers mmapped: freed, they go back to the system at once.

Pinning it also pins glibc's trim threshold at 128 KiB: every free() that leaves more than that at the top of a heap
gives it back, so each graph call (onnxruntime's activations, the arena off) faulted its buffers in anew: the
familiarity rebuild cost 1.35x its CPU at batch 16, the encoder 1.1x at batch 8. The trim threshold is pinned too
(64 MiB: a call's buffers stay mapped for the next one; cache-miss /caption at c=32 1.15x and 1.27x), and the
periodic trim (trim_periodically) still gives every free page back once work stops.

glibc also gives a thread that finds the arenas locked an arena of its own (up to 8 per core), and each keeps what was
freed in it: the engine's six threads, the media threads and the event loop left the serving process 252 MiB after a
cache-miss sweep with glibc's count, 235 with 2 arenas, 221 with 1 (one run each; docs/performance.md).
"""
from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers in glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@functools.cache
def _libc(name: str, argtypes: tuple[Any, ...]) -> Any | None:
    """One of glibc's malloc functions from the process's own symbols (without find_library's subprocess), typed; None
    elsewhere (another OS; musl, Alpine's libc, has no mallopt or malloc_trim)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = list(argtypes), ctypes.c_int
    return fn


def _mallopt(param: int, name: str, value: int) -> bool:
    """glibc's mallopt(param, value) where value > 0. True where it was set; False elsewhere (another libc, another
    OS, value 0), which is harmless: only memory use differs."""
    mallopt = _libc("mallopt", (ctypes.c_int, ctypes.c_int))
    if value <= 0 or mallopt is None:
        return False
    done = bool(mallopt(param, value))
    if not done:
        log.warning("mallopt(%s, %d) refused; the heap keeps glibc's own", name, value)
    return done


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Pin glibc's mmap threshold (0: leave malloc's own dynamic one)."""
    return _mallopt(M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", threshold_bytes)


def fix_trim_threshold(threshold_bytes: int) -> bool:
    """Pin glibc's trim threshold: the free memory a heap keeps at its top before a free() gives it back (0: glibc's
    own; a pinned mmap threshold leaves it at 128 KiB, so every graph call's buffers are faulted in anew)."""
    return _mallopt(M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD", threshold_bytes)


def limit_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (0: glibc's own, 8 per core); before the process starts its threads."""
    return _mallopt(M_ARENA_MAX, "M_ARENA_MAX", arenas)


def _malloc_trim() -> Any | None:
    return _libc("malloc_trim", (ctypes.c_size_t,))


def trim_heap() -> bool:
    """Give the free pages inside the heap's arenas back to the system, not only its top (glibc's malloc_trim(0)).
    A batch's buffers below the mmap threshold come from the heap; once freed they fragment it, and its pages stay
    resident: a cache-miss sweep at c=32 left the serving process 301 MB, 220 MB after one trim (docs/performance.md).
    False where there is no malloc_trim."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))


async def trim_periodically(interval_s: float, activity: Callable[[], int], tick_s: float = 1.0) -> None:
    """trim_heap, in a thread (it locks each arena in turn while it walks it: 0.1-1.5 ms; the event loop never waits
    for it), after work (`activity()`, a count that grows with it, has moved since the last trim): once the server has
    been quiet for a tick, or every `interval_s` seconds under a steady load. Until cancelled."""
    if _malloc_trim() is None:
        return
    last_trim, trimmed_at = time.monotonic(), activity()
    seen = trimmed_at
    while True:
        await asyncio.sleep(tick_s)
        count = activity()
        quiet, seen = count == seen, count
        if count != trimmed_at and (quiet or time.monotonic() - last_trim >= interval_s):
            await asyncio.to_thread(trim_heap)
            last_trim, trimmed_at = time.monotonic(), count


def freeze_startup_objects() -> None:
    """Take every object alive once the server has started (modules, routes, schemas, the engine: hundreds of
    thousands) out of the cyclic collector's scans. Each full collection walked them all, in the event loop: a
    cache hit at c=32 waited behind it (p99 78-82 ms against 24-30 ms frozen, req/s 1,145-1,205 against
    1,453-1,731; docs/performance.md). They stay alive either way; reference counting still frees what dies."""
    gc.collect()
    gc.freeze()


def thaw_startup_objects() -> None:
    """Undo freeze_startup_objects at shutdown (an app built again in the same process, as the tests do)."""
    gc.unfreeze()
