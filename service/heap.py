"""The serving process's heap: bounded (glibc's mmap threshold) and cheap to collect (start-up objects frozen).

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB on 64-bit), so every later
buffer of that size (a batch of decoded frames, onnxruntime's activations with its arena off) is carved from the
heap instead, where freed space fragments and is rarely given back. Under a cache-miss sweep that left the serving
process 54 MB larger than with a fixed threshold (238 against 184 MB after the same load; docs/performance.md).
A fixed threshold keeps large buffers mmapped: freed, they go back to the system at once.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Pin glibc's mmap threshold (0: leave malloc's own dynamic one). True where it was set; False elsewhere
    (another libc, another OS), which is harmless: only memory use differs."""
    if threshold_bytes <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, without find_library's subprocess
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) refused; the heap keeps glibc's dynamic threshold", threshold_bytes)
    return done


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
