"""The benches' and tests' shared helpers: one parser of a clip's FRAMESxHEIGHTxWIDTH, one free port, one reader of
a server's RSS."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from bench.support import clip_shape, free_port, process_tree, rss_kib


def test_clip_shape_reads_frames_height_width_and_refuses_the_rest() -> None:
    assert clip_shape("16x72x128") == (16, 72, 128) and clip_shape("8X36X64") == (8, 36, 64)
    for bad in ("72x128", "16x72x", "0x72x128", "ax72x128"):
        with pytest.raises(ValueError, match="FRAMESxHEIGHTxWIDTH"):
            clip_shape(bad)


def test_free_port_can_be_bound() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_rss_of_a_process_tree_counts_its_children_and_a_gone_process_as_zero() -> None:
    """A server's decode workers are its children: the tree's RSS holds theirs (a child holding 64 MiB)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; b = b'x' * (64 << 20); sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while rss_kib(child.pid) < 64 << 10:  # until the child has written its 64 MiB
            assert child.poll() is None and time.monotonic() < deadline
        assert child.pid in process_tree(os.getpid())
        assert rss_kib(os.getpid(), tree=True) >= rss_kib(os.getpid()) + rss_kib(child.pid) - 1024
        assert rss_kib(os.getpid(), tree=True) - rss_kib(os.getpid()) >= 64 << 10
    finally:
        child.communicate(b"")
    assert rss_kib(child.pid) == 0
