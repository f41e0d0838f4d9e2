"""The service's own exception types and the one place that turns any error into `{"error": {"code", "message"}}`.

The exception classes are plain Python so the predictor can raise them without importing FastAPI;
only `install_error_handlers` touches the web framework (imported there, when the app is built).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.media import MediaError, UnsupportedMedia

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("service.errors")


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


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


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

    async def on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    async def on_media_error(request: Request, exc: MediaError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=media_status(exc))

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_input", _validation_message(list(exc.errors()))), status_code=422)

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": malformed input is a 422 here
            return JSONResponse(error_body("malformed_body", "the request body could not be parsed"), 422)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(error_body(code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)

    app.add_exception_handler(ServiceError, on_service_error)  # type: ignore[arg-type]
    app.add_exception_handler(MediaError, on_media_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)


class TaskUnavailable(ServiceError):
    status, code = 404, "task_unavailable"
