"""Pure ASGI middleware: request ids and the access log, the request body limit (enforced while the body streams
in) and request metrics."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from typing import Any

from service.asgi import HttpMiddleware, Scope
from service.disconnect import answered_status
from service.errors import error_body, readable_bytes
from service.metrics import Metrics

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
access_log = logging.getLogger("service.access")


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware(HttpMiddleware):
    """413 as soon as the declared or streamed body passes the limit; neither FastAPI nor uvicorn limits it.

    A too-large Content-Length is refused before a byte of body is read. A chunked body is counted as it
    arrives; past the limit, `receive` raises, whatever the app answers is dropped, and 413 goes out instead.
    `Connection: close` makes uvicorn drop the rest of the upload rather than read it.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def _reject(self, send: Any) -> None:
        message = (f"request body over the {readable_bytes(self.max_bytes)} limit ({self.max_bytes} bytes, "
                   "SLR_MAX_UPLOAD_BYTES): send a shorter or smaller clip (a few seconds at 320x240 is plenty: "
                   "the model sees a handful of small frames)")
        await _send_json(send, 413, error_body("payload_too_large", message), [(b"connection", b"close")])

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received, exceeded, started = 0, False, False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if exceeded:
                return  # the app answered its parse error; the client gets the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded and not started:
            await self._reject(send)


class CancelledRequestMiddleware(HttpMiddleware):
    """A request cancelled before it answered gets 503 JSON with Retry-After, not uvicorn's plain-text 500.

    uvicorn cancels the requests still running when the graceful shutdown period (SLR_GRACEFUL_TIMEOUT_S)
    ends; the client should learn to retry elsewhere, in the service's own error shape.
    """

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not started:
                with contextlib.suppress(Exception):
                    await _send_json(send, 503, error_body("shutting_down", "the server is shutting down; retry"),
                                     [(b"retry-after", b"1"), (b"connection", b"close")])
            raise


class MetricsMiddleware(HttpMiddleware):
    """Requests and latency per route template (never per raw path: that would explode the label set)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        start, status = time.perf_counter(), None  # type: float, int | None

        async def record_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint, scope["method"], str(answered_status(scope, status))).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


class RequestIdMiddleware(HttpMiddleware):
    """`X-Request-ID`: the client's (1-128 safe characters) or a new one, echoed on every answer (errors of the
    other middleware included: this one is outermost), kept as `request.state.request_id`, and written on the
    access log line (logger `service.access`, level info): id, method, path, status, milliseconds."""

    async def http(self, scope: Scope, receive: Any, send: Any) -> None:
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start, status = time.perf_counter(), None  # type: float, int | None

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info("%s %s %s %d %.1fms", request_id, scope["method"], scope["path"],
                            answered_status(scope, status),
                            (time.perf_counter() - start) * 1000)
