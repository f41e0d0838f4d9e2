"""Dependencies as Annotated aliases: the objects the lifespan loaded, the API key check, shared error docs.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
dependency per request (measured: about 14% of the event loop's time under load on /caption)."""
from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from service.engine import Engine
from service.errors import NotReady, Unauthorized
from service.predictor import Predictor, Upload
from service.schemas import ErrorResponse
from service.settings import Settings


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_predictor(request: Request) -> Predictor:
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        raise NotReady("the model is still loading")
    return predictor


async def get_engine(predictor: Annotated[Predictor, Depends(get_predictor)]) -> Engine:
    return predictor.engine


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
EngineDep = Annotated[Engine, Depends(get_engine)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="required when the server sets SLR_API_KEY")


async def require_api_key(settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    if settings.api_key is None:
        return
    if key is None or not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        raise Unauthorized("missing or wrong X-API-Key header")


async def read_upload(file: UploadFile | None) -> Upload | None:
    """The upload's bytes (already size-checked while streaming, by the body limit middleware)."""
    if file is None:
        return None
    return Upload(await file.read(), file.filename)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the JSON error shape, so Swagger documents each status an endpoint can answer."""
    text = {401: "missing or wrong API key", 404: "unknown or expired latent_id", 413: "upload over the limit",
            415: "unsupported media type", 422: "invalid input, undecodable media or media over limits",
            503: "overloaded (see Retry-After) or still loading"}
    return {s: {"model": ErrorResponse, "description": text.get(s, "error")} for s in statuses}
