"""Helpers for the service tests: real encoded clips, free ports, a real uvicorn process, a private redis-server.

Not a conftest: plain functions and context managers the service test modules import.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import imageio.v3 as iio
import numpy as np

from bench.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]

# container -> (imageio extension, PyAV codec); yuv420p needs even sizes, so clips are 64x48.
VIDEO_CODECS = {"mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "webm": ("webm", "libvpx"),
                "avi": ("avi", "mpeg4")}


def moving_square_clip(n_frames: int = 12, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A coloured square sliding over a dark background: uint8 [N,H,W,3]."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(80, 256, size=3, dtype=np.uint8)
    clip = np.full((n_frames, height, width, 3), 16, dtype=np.uint8)
    size = height // 3
    for t in range(n_frames):
        x = int((width - size) * t / max(1, n_frames - 1))
        clip[t, height // 3: height // 3 + size, x: x + size] = colour
    return clip


def encode_clip(frames: np.ndarray, fmt: str, fps: int = 8) -> bytes:
    """Encode uint8 frames as a real file of the given container (imageio + PyAV; gif via Pillow)."""
    if fmt == "gif":
        return iio.imwrite("<bytes>", frames, extension=".gif", duration=int(1000 / fps), loop=0)
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, frames, allow_pickle=False)
        return buf.getvalue()
    ext, codec = VIDEO_CODECS[fmt]
    return iio.imwrite("<bytes>", frames, extension=f".{ext}", plugin="pyav", codec=codec, fps=fps)


def wait_http(url: str, timeout_s: float = 60.0, proc: subprocess.Popen | None = None) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout_s}s ({last})")


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[subprocess.Popen, str]]:
    """A private redis-server on a free port (the tests may stop it; the shared one at 6379 is never touched)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                time.sleep(0.05)
            yield proc, f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc, grace_s=15)


@contextlib.contextmanager
def uvicorn_server(env: dict[str, str], log_path: Path | None = None) -> Iterator[str]:
    """`python -m uvicorn --factory service.app:create_app` on a free port; yields its base URL once /readyz is 200."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", proc=proc)
        yield base
    finally:
        stop_process(proc, grace_s=15)
        if log_path:
            log.close()
