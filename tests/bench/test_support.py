"""The benches' and tests' shared helpers: one parser of a clip's FRAMESxHEIGHTxWIDTH, one free port, one reader of
a server's RSS."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from bench.support import clip_shape, free_port, process_state, process_tree, rss_kib


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


def test_a_peer_measured_alone_stops_the_others_trees_and_continues_them() -> None:
    """bench.peers measures each server with every other one stopped: an idle server's polling (LitServe's) would
    tax the one measured. A server and its child both stop, and both run again after."""
    from pathlib import Path

    from bench.peers.side_by_side import Running, alone

    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "time.sleep(60)")
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    try:
        time.sleep(1.0)  # the children started
        servers = {f"s{i}": Running(f"s{i}", "", p.pid, 0.0, Path("/dev/null")) for i, p in enumerate(procs)}
        other = process_tree(procs[1].pid)
        assert len(other) == 2
        with alone(servers, "s0"):
            assert {process_state(p) for p in other} == {"T"}  # stopped, the child too
            assert process_state(procs[0].pid) != "T"
        assert "T" not in {process_state(p) for p in other}
        with alone(servers, "s0", pause=False):
            assert "T" not in {process_state(p) for p in other}
    finally:
        for p in procs:
            for q in process_tree(p.pid):
                os.kill(q, 9)
