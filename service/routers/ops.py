"""Operations: GET /models, /vocab, /healthz (and HEAD), /readyz, /metrics (health endpoints never need the API key)."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from core.channels import INPUT_KEYS, encode_name, media_of
from core.vocab import SPECIALS
from service.predictor import Predictor
from service.routers.deps import EngineDep, error_responses, require_api_key
from service.schemas import HealthResponse, ModelInfo, ModelTask, ReadyResponse, VocabResponse

router = APIRouter(tags=["operations"])


@router.get("/models", response_model=ModelInfo, responses=error_responses(401, 503),
            dependencies=[Depends(require_api_key)], summary="The served model")
async def models(engine: EngineDep) -> ModelInfo:
    """Version, tasks, channel configurations and the execution providers each graph actually uses."""
    cfg, manifest = engine.config, engine.manifest
    tasks = [ModelTask(name=name, endpoint=t.endpoint, inputs=list(t.inputs), outputs=list(t.outputs))
             for name, t in manifest.tasks.items()]
    configs: dict[str, list[str]] = {encode_name(k): list(media_of(k)) for k in INPUT_KEYS}
    return ModelInfo(version=engine.version, created=manifest.created or None, video_input=cfg.video_input,
                     frames=cfg.frames, height=cfg.height, width=cfg.width, frame_fit=cfg.frame_fit,
                     latent_dim=cfg.latent_dim, max_words=cfg.max_words, vocab_size=len(engine.vocab), tasks=tasks,
                     channel_configs=configs,
                     providers={k: list(v) for k, v in engine.providers.items()}, uses_gpu=engine.uses_gpu)


@router.get("/vocab", response_model=VocabResponse, responses=error_responses(401, 503),
            dependencies=[Depends(require_api_key)], summary="The words the model knows")
async def vocab(engine: EngineDep) -> VocabResponse:
    """Any other word of a sentence is read as `<unk>` (the sentence endpoints list them in `unknown_words`);
    a sentence takes at most `max_words` words."""
    words = engine.vocab.words
    return VocabResponse(version=engine.version, size=len(words), max_words=engine.config.max_words,
                         specials=list(SPECIALS), words=words[len(SPECIALS):])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse()


@router.head("/healthz", include_in_schema=False)
async def healthz_head() -> Response:
    return Response(status_code=200)


def release_override(record: dict[str, Any] | None) -> str | None:
    """The reason a version was released past the gate's refusal (export/gate.py), if it was."""
    reason = (record or {}).get("override_reason")
    return str(reason) if reason else None


@router.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}},
            summary="Readiness (degraded: serving, but SLRs are cached in process only)")
async def readyz(request: Request) -> JSONResponse:
    predictor: Predictor | None = getattr(request.app.state, "predictor", None)
    if predictor is None:
        body = ReadyResponse(status="starting", redis="down", reasons=["model loading"])
        return JSONResponse(body.model_dump(), status_code=503)
    cache = predictor.cache
    redis: Literal["up", "down", "disabled"] = (
        "disabled" if not cache.redis_configured else ("up" if await cache.ping() else "down"))
    reasons = [] if redis == "up" else [f"redis {redis}: SLR cache is in process only"]
    body = ReadyResponse(status="ready" if not reasons else "degraded", model_version=predictor.engine.version,
                         redis=redis, providers={k: list(v) for k, v in predictor.engine.providers.items()},
                         reasons=reasons, release_override=release_override(predictor.engine.manifest.release))
    return JSONResponse(body.model_dump())


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
