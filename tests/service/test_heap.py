"""service/heap.py: with the mmap threshold pinned, a large buffer allocated after a larger one was freed is still
mmapped (given back to the system when freed), where glibc's own threshold would have grown past it."""
from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from service.heap import fix_mmap_threshold

PROBE = """
import ctypes, sys
import numpy as np
from service.heap import fix_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
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
    assert fix_mmap_threshold(0) is False
