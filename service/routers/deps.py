"""Dependencies as Annotated aliases: the objects the lifespan loaded, the API key check, shared error docs.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
dependency per request (measured: about 14% of the event loop's time under load on /caption)."""
from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from service.errors import NotReady, Unauthorized
from service.predictor import EngineLike, Predictor
from service.schemas import ErrorResponse
from service.settings import Settings


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_predictor(request: Request) -> Predictor:
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        raise NotReady("the model is still loading")
    return predictor


async def get_engine(predictor: Annotated[Predictor, Depends(get_predictor)]) -> EngineLike:
    return predictor.engine


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
EngineDep = Annotated[EngineLike, Depends(get_engine)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="required when the server sets SLR_API_KEY")


async def require_api_key(settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    if settings.api_key is None:
        return
    if key is None or not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        raise Unauthorized("missing or wrong X-API-Key header")


ERROR_EXAMPLES: dict[int, tuple[str, str, str]] = {
    401: ("missing or wrong API key", "unauthorized", "missing or wrong X-API-Key header"),
    404: ("unknown or expired latent_id", "unknown_latent_id", "unknown or expired latent_id; encode the input again"),
    413: ("request body over the limit", "payload_too_large", "request body over 268435456 bytes"),
    415: ("a body or file format this endpoint does not take", "unsupported_media_type",
          ("video 'notes.mp4' is not a format this service reads: its contents look like text, although its name "
           "ends in .mp4. Send an mp4, mov, webm, avi, gif file, or a .npy of frames")),
    422: (("invalid input: a field out of range, a missing input, a duplicate part or an undecodable file"),
          "invalid_input", "num_captions: Input should be less than or equal to 16 (got '40')"),
    503: ("overloaded (see Retry-After) or still loading", "overloaded", "the engine queue is full; retry shortly"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the JSON error shape, each status with an example of its own."""
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        text, code, message = ERROR_EXAMPLES[s]
        out[s] = {"model": ErrorResponse, "description": text,
                  "content": {"application/json": {"example": {"error": {"code": code, "message": message}}}}}
    return out
