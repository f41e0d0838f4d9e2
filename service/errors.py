"""The service's own exception types and the one place that turns any error into `{"error": {"code", "message"}}`.

The exception classes are plain Python so the predictor can raise them without importing FastAPI;
only `install_error_handlers` touches the web framework (imported there, when the app is built).
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from core.media import SUPPORTED, MediaError, MediaLimitExceeded, UndecodableMedia, UnsupportedMedia, looks_like

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("service.errors")


# The address written in the messages' curl examples; the error handler puts the address the request came to instead.
EXAMPLE_BASE = "http://127.0.0.1:8000"


def readable_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; 33554432 -> '32 MiB'."""
    size, unit = float(n), "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "bytes" or size == int(size) else f"{size:.1f} {unit}"


class ServiceError(Exception):
    """Base: an HTTP status, a stable machine-readable code, a message for the client."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class DuplicateField(ServiceError):
    status, code = 422, "duplicate_field"


class UnsupportedBody(ServiceError):
    status, code = 415, "unsupported_content_type"


class UnknownLatent(ServiceError):
    status, code = 404, "unknown_latent_id"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Overloaded(ServiceError):
    status, code = 503, "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


class NotReady(ServiceError):
    status, code = 503, "not_ready"


def media_status(exc: MediaError) -> int:
    """core.media's errors as HTTP: a format we do not take is 415, anything else wrong with the file 422."""
    return 415 if isinstance(exc, UnsupportedMedia) else 422


ACCEPTED = f"{', '.join(SUPPORTED[:-1])} file, or a .npy of frames"


def explain_media_error(exc: MediaError, filename: str | None, head: bytes) -> str:
    """core.media's error, told about the upload a person sent: its name, what it looks like, what to send."""
    name = f"video '{filename}'" if filename else "the video"
    message = str(exc)
    if isinstance(exc, UnsupportedMedia) and message.startswith("unsupported media type"):
        ext = filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
        named = f", although its name ends in .{ext}" if ext in SUPPORTED else ""
        return f"{name} is not a format this service reads: its contents look like {looks_like(head)}{named}. " \
               f"Send an {ACCEPTED}"
    if isinstance(exc, UndecodableMedia):
        said = re.sub(r"\[Errno -?\d+\]\s*", "", message).replace(": '<none>'", "").rstrip(".")
        return f"{name} could not be read ({said}); the file is empty, truncated or damaged: send the " \
               f"complete {ACCEPTED}"
    if isinstance(exc, MediaLimitExceeded):
        return f"{name} is over this server's limits: {message}; send a shorter or smaller clip"
    return f"{name}: {message}"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# Starlette's HTTPException carries only a status; give each a stable code.
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
               422: "invalid_input", 429: "too_many_requests", 503: "unavailable"}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "request"
        parts.append(f"{where}: {str(e.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts)


def install_error_handlers(app: "FastAPI") -> None:
    """Map ServiceError, FastAPI's validation errors, HTTP errors and anything unexpected to the JSON shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    # The decorator, not add_exception_handler: that one is typed for handlers of Exception only, while each
    # handler here takes its own exception type.
    @app.exception_handler(ServiceError)
    async def on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        message = exc.message.replace(EXAMPLE_BASE, str(request.base_url).rstrip("/"))  # this server's own address
        return JSONResponse(error_body(exc.code, message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(MediaError)
    async def on_media_error(request: Request, exc: MediaError) -> JSONResponse:
        upload = getattr(request.state, "upload", None)  # set by service.routers.inputs
        message = explain_media_error(exc, getattr(upload, "filename", None), getattr(upload, "data", b"")[:64])
        return JSONResponse(error_body(exc.code, message), status_code=media_status(exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_input", _validation_message(list(exc.errors()))), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and isinstance(exc.detail, str) and exc.detail == "Not Found":
            return JSONResponse(error_body("not_found", f"no endpoint at {request.url.path}; the web page is at /, "
                                                        "the API's documentation at /docs"), status_code=404)
        if exc.status_code == 405:
            return JSONResponse(error_body("method_not_allowed", f"{request.method} is not accepted at "
                                                                 f"{request.url.path}; see /docs for its methods"),
                                status_code=405, headers=getattr(exc, "headers", None))
        if exc.status_code == 400:  # FastAPI's "error parsing the body": malformed input is a 422 here
            return JSONResponse(error_body("malformed_body", "the request body could not be parsed"), 422)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(error_body(code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


class TaskUnavailable(ServiceError):
    status, code = 404, "task_unavailable"
