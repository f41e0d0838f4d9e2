"""Graceful shutdown: SIGTERM while requests are in flight. The server stops accepting connections at once, lets
the requests it holds finish (up to SLR_GRACEFUL_TIMEOUT_S), then exits 0. Started as `slr serve` starts it
(service.server.run), so the setting under test is the one deployments use.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service_fixtures import ROOT, encode_clip, free_port, moving_square_clip, wait_ready

BOUNDARY = "slrshutdowntest"


def _serve(artifacts: Path, grace_s: int, log: Path, log_level: str = "warning") -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLR_ARTIFACTS": str(artifacts), "SLR_REDIS_URL": "",
           "SLR_LOG_LEVEL": log_level, "SLR_INTRA_OP_THREADS": "1", "SLR_GRACEFUL_TIMEOUT_S": str(grace_s)}
    proc = subprocess.Popen([sys.executable, "-c", f"from service.server import run; run('127.0.0.1', {port})"],
                            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/readyz", proc=proc)
    return proc, base


def _slow_body(video: bytes, seconds: float, started: threading.Event) -> Iterator[bytes]:
    """A multipart upload sent over `seconds`: the request is in flight on the server the whole time."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; filename="c.mp4"\r\n'
            f"Content-Type: video/mp4\r\n\r\n").encode()
    yield head + video[:100]
    started.set()
    pieces = 5
    step = max(1, (len(video) - 100) // pieces + 1)
    for i in range(100, len(video), step):
        time.sleep(seconds / pieces)
        yield video[i: i + step]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _post_slowly(base: str, video: bytes, seconds: float, started: threading.Event, out: list) -> None:
    try:
        r = httpx.post(f"{base}/caption", content=_slow_body(video, seconds, started), timeout=30,
                       headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
        out.append((r.status_code, r.json() if r.headers.get("content-type") == "application/json" else r.text))
    except httpx.HTTPError as e:
        out.append((type(e).__name__, str(e)))


def _stop_and_wait(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sigterm_lets_in_flight_requests_finish(artifacts_dir: Path, tmp_path: Path) -> None:
    proc, base = _serve(artifacts_dir, grace_s=10, log=tmp_path / "server.log")
    try:
        results: list = []
        events = [threading.Event() for _ in range(6)]
        threads = [threading.Thread(target=_post_slowly, args=(base, encode_clip(moving_square_clip(12, seed=700 + i),
                                                                                  "mp4"), 1.5, ev, results))
                   for i, ev in enumerate(events)]
        for t in threads:
            t.start()
        assert all(ev.wait(10) for ev in events)
        time.sleep(0.2)
        sigterm_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # No new connections from now on, while the six uploads are still arriving.
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz", timeout=2)
        for t in threads:
            t.join(30)
        rc = proc.wait(20)
        exited_after = time.monotonic() - sigterm_at
    finally:
        _stop_and_wait(proc)
    assert [r[0] for r in results] == [200] * 6, results
    assert all(isinstance(r[1]["caption"], str) for r in results)
    # uvicorn re-raises the SIGTERM it caught once shutdown is done: exit status 143 (-15 here), as documented.
    assert rc in (0, -signal.SIGTERM), (tmp_path / "server.log").read_text()[-2000:]
    assert 0.9 < exited_after < 10, exited_after  # waited for the uploads, not for the whole grace period


def test_grace_period_bounds_the_wait(artifacts_dir: Path, tmp_path: Path) -> None:
    """A request still running when the grace period ends is cut off: shutdown never waits longer than that."""
    proc, base = _serve(artifacts_dir, grace_s=1, log=tmp_path / "server.log")
    try:
        results: list = []
        started = threading.Event()
        t = threading.Thread(target=_post_slowly, args=(base, encode_clip(moving_square_clip(12), "mp4"), 8.0,
                                                        started, results))
        t.start()
        assert started.wait(10)
        sigterm_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        exited_after = time.monotonic() - sigterm_at
        t.join(30)
    finally:
        _stop_and_wait(proc)
    assert exited_after < 4, exited_after  # 1 s grace plus the lifespan shutdown, not the 8 s upload
    # Cut off: a 503 in the service's error shape (or the connection closing under the client), never a 200.
    assert results and results[0][0] != 200, results
    if results[0][0] == 503:
        assert results[0][1]["error"]["code"] == "shutting_down", results


def test_one_access_line_per_request(artifacts_dir: Path, tmp_path: Path) -> None:
    """The service's own line (request id, status, milliseconds), not uvicorn's second one beside it."""
    log = tmp_path / "server.log"
    proc, base = _serve(artifacts_dir, grace_s=5, log=log, log_level="info")
    try:
        assert httpx.get(f"{base}/healthz", headers={"x-request-id": "one-line-please"}).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        _stop_and_wait(proc)
    lines = log.read_text().splitlines()
    assert [line for line in lines if "one-line-please" in line and "service.access" in line and " 200 " in line]
    assert not [line for line in lines if '"GET /healthz HTTP/1.1"' in line]  # uvicorn's access line
