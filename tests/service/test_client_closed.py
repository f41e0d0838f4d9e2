"""A client that leaves before its answer is not a server error: the access log and the metrics say 499 (nginx's
"client closed request"), and a real unhandled error is still a 500 in both."""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.disconnect import CancelOnDisconnect
from service.metrics import Metrics
from service.middleware import MetricsMiddleware, RequestIdMiddleware
from tests.service_fixtures import encode_clip, moving_square_clip, receive_then_disconnect, uvicorn_server


def requests_with_status(metrics: Metrics, status: str) -> float:
    return sum(s.value for m in metrics.registry.collect() if m.name == "slr_requests"
               for s in m.samples if s.name == "slr_requests_total" and s.labels["status"] == status)


def stack(app, metrics: Metrics):
    """The service's order: request ids outermost, then metrics, then the disconnect watcher (service/app.py)."""
    return RequestIdMiddleware(MetricsMiddleware(CancelOnDisconnect(app), metrics))


def test_a_client_that_goes_away_is_logged_and_counted_as_499(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    async def go() -> None:
        inside, gone = asyncio.Event(), asyncio.Event()

        async def app(scope, receive, send):
            await receive()
            inside.set()
            await asyncio.sleep(60)  # waiting for the engine when the client leaves

        receive = receive_then_disconnect(gone)

        async def send(message):
            raise AssertionError("nothing is sent to a client that left")

        scope = {"type": "http", "method": "POST", "path": "/caption", "headers": []}
        task = asyncio.create_task(stack(app, metrics)(scope, receive, send))
        await asyncio.wait_for(inside.wait(), 30)
        gone.set()
        await asyncio.wait_for(task, 30)

    with caplog.at_level(logging.INFO, logger="service.access"):
        asyncio.run(go())
    assert requests_with_status(metrics, "499") == 1 and requests_with_status(metrics, "500") == 0
    assert re.search(r" POST /caption 499 ", caplog.text), caplog.text


def test_an_unhandled_error_is_still_a_500_in_log_and_metrics(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    async def app(scope, receive, send):
        await receive()
        raise RuntimeError("a bug")

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    scope = {"type": "http", "method": "POST", "path": "/caption", "headers": []}
    with caplog.at_level(logging.INFO, logger="service.access"), pytest.raises(RuntimeError):
        asyncio.run(stack(app, metrics)(scope, receive, send))
    assert requests_with_status(metrics, "500") == 1 and requests_with_status(metrics, "499") == 0
    assert re.search(r" POST /caption 500 ", caplog.text), caplog.text


def _post_and_leave(host: str, port: int, body: bytes, boundary: str) -> None:
    """A whole /caption request sent over a raw socket, which is closed at once, before any answer."""
    head = (f"POST /caption HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-ID: leaver-{uuid.uuid4().hex[:8]}\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_RDWR)


def _multipart(video: bytes, boundary: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + video + f"\r\n--{boundary}--\r\n".encode()


def test_a_real_server_counts_clients_that_leave_as_499_not_500(artifacts_dir: Path, redis_url: str,
                                                                tmp_path: Path) -> None:
    """Clients that send a whole upload and hang up while it is decoded and encoded (the end of a load test): the
    server's /metrics and access log show 499 for them and never 500."""
    import httpx

    log = tmp_path / "server.log"
    env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": redis_url, "SLR_LOG_LEVEL": "info"}
    boundary = uuid.uuid4().hex
    with uvicorn_server(env, log) as base:
        host, port = base.removeprefix("http://").split(":")
        # Fresh clips (a cache hit would answer before the hang-up is seen), sent together: while the server works
        # through them, the later ones' clients have left.
        bodies = [_multipart(encode_clip(moving_square_clip(n_frames=96, height=240, width=320,
                                                            seed=int(time.time()) % 10**6 + seed), "mp4"), boundary)
                  for seed in range(40)]
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda body: _post_and_leave(host, int(port), body, boundary), bodies))
        time.sleep(2.0)
        text = httpx.get(f"{base}/metrics").text
    closed = sum(float(v) for v in re.findall(r'slr_requests_total\{[^}]*status="499"[^}]*\} ([0-9.e+]+)', text))
    errors = re.findall(r'slr_requests_total\{[^}]*status="5\d\d"[^}]*\}', text)
    assert closed >= 1, text
    assert not errors, errors
    lines = [line for line in log.read_text().splitlines() if "leaver-" in line]
    assert any(" POST /caption 499 " in line for line in lines), lines[-5:]
    assert not any(re.search(r" POST /caption 5\d\d ", line) for line in lines), lines
