"""service/heap.py: a trim gives a fragmented heap's free pages back, once work stops and at an interval under load;
with the mmap threshold pinned, a large buffer allocated after a larger one was freed is still mmapped (given back to
the system when freed), where glibc's own threshold would have grown past it; with the trim threshold pinned, a freed
buffer's pages stay for the next call; with the arenas capped, threads share them; the objects alive at start-up are
frozen out of the cyclic collector while the server serves."""
from __future__ import annotations

import asyncio
import ctypes
import subprocess
import sys

import pytest

from service.app import create_app
from service.heap import fix_mmap_threshold, fix_trim_threshold, limit_arenas
from service.settings import Settings

MALLINFO = """
import ctypes, sys
import numpy as np
from service.heap import fix_mmap_threshold, fix_trim_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
"""

PROBE = MALLINFO + """
print(fix_mmap_threshold(int(sys.argv[1])))
big = np.ones(8 << 20, np.uint8)
del big  # glibc's dynamic threshold now rises to 8 MiB
before = libc.mallinfo2().hblks
smaller = np.ones(3 << 20, np.uint8)
print(libc.mallinfo2().hblks - before)
"""


def mmapped_after_a_free(threshold: int) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(threshold)], capture_output=True, text=True, check=True)
    done, blocks = out.stdout.split()
    return done, int(blocks)


def has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")  # glibc >= 2.33
    except OSError:
        return False


@pytest.mark.skipif(not has_mallinfo2(), reason="glibc >= 2.33 only")
def test_a_pinned_threshold_keeps_large_buffers_mmapped() -> None:
    assert mmapped_after_a_free(0) == ("False", 0)  # malloc's own: the 3 MiB buffer came from the heap
    assert mmapped_after_a_free(128 * 1024) == ("True", 1)


def test_zero_leaves_malloc_alone() -> None:
    assert fix_mmap_threshold(0) is False and fix_trim_threshold(0) is False and limit_arenas(0) is False


KEPT_PROBE = MALLINFO + """
fix_mmap_threshold(4 << 20)  # as the server
print(fix_trim_threshold(int(sys.argv[1])))
for _ in range(3):  # a graph call's buffer, three calls running
    buffer = np.ones(3 << 20, np.uint8)  # below the mmap threshold: carved from the heap's top
    held = libc.mallinfo2().arena
    del buffer
print(held - libc.mallinfo2().arena)  # bytes the free gave back to the system
"""


def given_back_at_a_free(trim_threshold: int) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", KEPT_PROBE, str(trim_threshold)], capture_output=True, text=True,
                         check=True)
    done, given = out.stdout.split()
    return done, int(given)


@pytest.mark.skipif(not has_mallinfo2(), reason="glibc >= 2.33 only")
def test_a_pinned_trim_threshold_keeps_a_calls_buffer_for_the_next_call() -> None:
    """With the mmap threshold pinned, glibc's trim threshold stays at 128 KiB: each free of a 3 MiB buffer gives its
    pages back, and the next call faults them in again. Pinned at 64 MiB, the heap keeps them."""
    done, given = given_back_at_a_free(0)
    assert done == "False" and given >= 3 << 20
    assert given_back_at_a_free(64 << 20) == ("True", 0)


ARENAS = """
import ctypes, sys, tempfile, threading
import numpy as np
from service.heap import limit_arenas

print(limit_arenas(int(sys.argv[1])))
held = []
together = threading.Barrier(6)
def work():
    held.append(np.ones(1 << 16, np.uint8))  # each new thread's first malloc: an arena of its own, up to the cap
    together.wait()  # all six alive at once: a thread that ended first would hand its arena to the next
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print(open(f.name).read().count("<heap nr="))
"""


def arenas_after_six_threads(cap: int) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", ARENAS, str(cap)], capture_output=True, text=True, check=True)
    done, heaps = out.stdout.split()
    return done, int(heaps)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_capped_arenas_are_shared_by_the_threads() -> None:
    done, own = arenas_after_six_threads(0)
    assert done == "False" and own > 2
    assert arenas_after_six_threads(2) == ("True", 2)


@pytest.mark.parametrize("freeze", [True, False])
def test_the_server_freezes_its_start_up_objects_while_it_serves(artifacts_dir, freeze: bool) -> None:
    """While the app serves, what was alive at start-up sits in the permanent generation (the collector's full passes
    no longer walk it); at shutdown it is thawed. SLR_GC_FREEZE=false leaves the collector alone."""
    import gc

    app = create_app(Settings(artifacts=str(artifacts_dir), redis_url="", log_level="warning", decode_processes=0,
                              gc_freeze=freeze))

    async def serving_count() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    assert gc.get_freeze_count() == 0
    frozen = asyncio.run(serving_count())
    assert (frozen > 10_000) if freeze else frozen == 0
    assert gc.get_freeze_count() == 0


TRIM_PROBE = """
import random
import numpy as np
from service.heap import fix_mmap_threshold, trim_heap

fix_mmap_threshold(4 << 20)  # as the server: buffers below 4 MiB come from the heap
batch = [np.ones(random.Random(i).randint(400_000, 600_000), np.uint8) for i in range(200)]  # ~100 MB at once
kept = batch[19::20]  # a few stay alive (cached results), the rest is freed: the heap cannot shrink from its top
del batch
rss = lambda: int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
before = rss()
print(trim_heap(), before - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not has_mallinfo2(), reason="glibc only")
def test_a_trim_gives_a_fragmented_heaps_free_pages_back() -> None:
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True)
    done, freed_kib = out.stdout.split()
    assert done == "True" and int(freed_kib) > 50_000, out.stdout  # of ~95 MB freed inside the heap


def test_the_trimmer_trims_after_work_once_quiet_and_at_the_interval_under_load(monkeypatch) -> None:
    """No work: no trim. Work then a quiet tick: one trim. Steady work: a trim every interval, not every tick."""
    import service.heap as heap

    trims: list[int] = []
    count = [0]
    monkeypatch.setattr(heap, "trim_heap", lambda: trims.append(count[0]) or True)

    async def go() -> None:
        task = asyncio.create_task(heap.trim_periodically(0.25, lambda: count[0], tick_s=0.01))
        await asyncio.sleep(0.1)
        assert trims == []  # idle from the start
        count[0] += 1
        await asyncio.sleep(0.1)
        assert trims == [1]  # trimmed once the work stopped, and not again while quiet
        for _ in range(60):  # 0.6 s of steady work: a trim per 0.25 s, not one per tick
            count[0] += 1
            await asyncio.sleep(0.01)
        task.cancel()
        assert 1 <= len(trims) - 1 <= 4, trims

    asyncio.run(go())
