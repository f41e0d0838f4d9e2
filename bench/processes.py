"""Process plumbing shared by the benches and the tests: a free loopback port, a private redis-server, the service
under uvicorn, and stopping a process the way an orchestrator does (SIGTERM, a grace period, then SIGKILL).

Standard library only, so `from bench.processes import ...` (tests, `python -m bench.x`) and `from processes
import ...` (`python bench/x.py`, bench/ on sys.path) both work.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UVICORN = (sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _exited(proc: subprocess.Popen | None, what: str) -> None:
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{what}: the process exited with {proc.returncode}")


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout_s: float = 10.0) -> None:
    """Until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + timeout_s
    while True:
        _exited(proc, f"waiting for port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")
        time.sleep(0.02)


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout_s: float = 60.0) -> float:
    """Until GET url answers 200; returns the seconds it took. RuntimeError if `proc` exits first."""
    start = time.monotonic()
    while True:
        _exited(proc, f"waiting for {url}")
        with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.01)


# ---------------------------------------------------------------- redis-server

def redis_installed() -> bool:
    return shutil.which("redis-server") is not None


def start_redis(port: int, directory: str | Path, extra_args: Sequence[str] = (),
                log_path: Path | None = None) -> subprocess.Popen:
    """redis-server on 127.0.0.1:port without persistence, returned once it accepts connections (stop it with
    stop_process). FileNotFoundError when redis-server is not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise FileNotFoundError("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    with open(log_path, "ab") if log_path else contextlib.nullcontext(subprocess.DEVNULL) as log:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", str(directory), *extra_args], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
    except BaseException:
        stop_process(proc, grace_s=5)
        raise
    return proc


@contextlib.contextmanager
def redis_server(port: int | None = None, directory: str | Path | None = None, extra_args: Sequence[str] = (),
                 log_path: Path | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """A private redis-server (a free port unless given; a temporary directory unless given); yields (process, URL)
    and stops it afterwards. The shared Redis at 6379 is never touched."""
    port = port or free_port()
    with contextlib.ExitStack() as stack:
        directory = directory or stack.enter_context(tempfile.TemporaryDirectory())
        proc = start_redis(port, directory, extra_args, log_path)
        try:
            yield proc, f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc, grace_s=15)


# ---------------------------------------------------------------- the service under uvicorn

@dataclass
class Server:
    url: str
    proc: subprocess.Popen | None
    cold_start_s: float | None = None  # spawn to the first /readyz 200

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def spawn_uvicorn(port: int, env: dict[str, str], log: int | object = subprocess.DEVNULL,
                  extra_args: Sequence[str] = ()) -> subprocess.Popen:
    """`python -m uvicorn --factory service.app:create_app` on 127.0.0.1:port, the repository on PYTHONPATH; env
    is added to this process's environment (SLR_* settings). Not waited for: see uvicorn_server."""
    return subprocess.Popen([*UVICORN, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             *extra_args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=log, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def uvicorn_server(env: dict[str, str], log_path: Path | None = None, extra_args: Sequence[str] = (),
                   timeout_s: float = 120.0, grace_s: float = 20.0) -> Iterator[Server]:
    """The service on a free port, yielded once /readyz answers 200 (cold start timed from spawn); stopped
    gracefully afterwards. The log (stdout and stderr) is appended to log_path when given."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") if log_path else contextlib.nullcontext(subprocess.DEVNULL) as log:
        start = time.monotonic()
        proc = spawn_uvicorn(port, env, log, extra_args)
        try:
            try:
                wait_ready(f"{url}/readyz", proc, timeout_s)
            except (RuntimeError, TimeoutError) as e:
                raise RuntimeError(f"the service did not become ready ({e}); see {log_path or 'its output'}") from None
            yield Server(url, proc, time.monotonic() - start)
        finally:
            stop_process(proc, grace_s)
