"""The app factory: `uvicorn --factory service.app:create_app`. The lifespan loads and warms the engine once."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from service.disconnect import CancelOnDisconnect
from service.engine import Engine
from service.errors import install_error_handlers
from service.heap import (
    fix_mmap_threshold,
    fix_trim_threshold,
    freeze_startup_objects,
    limit_arenas,
    thaw_startup_objects,
    trim_periodically,
)
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware, CancelledRequestMiddleware, MetricsMiddleware, RequestIdMiddleware
from service.predictor import build_predictor
from service.redoc import add_redoc
from service.routers import encode, ops, page, sentences, videos
from service.schemas import Sample
from service.settings import Settings, get_settings

log = logging.getLogger("service.app")

DESCRIPTION = """The star model's shared latent representation (SLR) over HTTP. A web page for people is at
[/](/).

Encode a video and/or a sentence once (`/encode` returns a `latent_id`), then decode it to any channel:
a caption, a paraphrase, a reconstructed video or a video generated from a sentence. Every error is JSON
`{"error": {"code", "message"}}` whose message names the field and what is accepted. Fields travel as a
multipart form (a clip in `video`) or as JSON, on every endpoint; `X-Request-ID` is echoed (or made)."""

TAGS = [{"name": "encode", "description": "media -> SLR"},
        {"name": "sentence out", "description": "SLR -> sentence"},
        {"name": "video out", "description": "SLR -> video (GIF or PNG frames)"},
        {"name": "operations", "description": "model info, vocabulary, health, readiness, metrics"},
        {"name": "page", "description": "what the web page at / shows"}]


STATIC = Path(__file__).resolve().parent / "static"  # the web page (plain HTML/CSS/JS) and its sample clips


def load_samples(folder: Path) -> list[tuple[Sample, bytes]]:
    """samples.json's clips (written by `slr samples`) with their bytes: read once, never per request."""
    listed = json.loads((folder / "samples.json").read_text())
    return [(Sample(name=s["name"], url=f"/static/samples/{s['file']}", caption=s["caption"]),
             (folder / s["file"]).read_bytes()) for s in listed]


def load_engine(settings: Settings) -> Engine:
    return Engine.load(settings.artifacts, settings.model_version, device=settings.device,
                       intra_op_threads=settings.intra_op_threads)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    fix_mmap_threshold(settings.mmap_threshold_kib * 1024)  # before the engine allocates anything
    fix_trim_threshold(settings.trim_threshold_kib * 1024)  # a call's buffers stay mapped for the next call
    limit_arenas(settings.malloc_arenas)  # before the engine's and the media threads start
    # Missing or corrupt artifacts (a checksum mismatch, a graph onnxruntime cannot load) or an unusable
    # required GPU raise here: the server refuses to start and never becomes ready, and says why in one line.
    try:
        engine = app.state.preloaded_engine or await asyncio.to_thread(load_engine, settings)
        await asyncio.to_thread(engine.warmup)
    except Exception as e:
        log.error("refusing to start: %s: %s (artifacts %s)", type(e).__name__, e, settings.artifacts)
        raise
    log.info("model %s loaded; providers %s", engine.version, engine.providers)
    predictor = build_predictor(engine, settings, metrics)
    await predictor.cache.ping()
    await predictor.decoder.warm()
    app.state.predictor = predictor
    if settings.gc_freeze:
        freeze_startup_objects()
    trimmer = (asyncio.create_task(trim_periodically(settings.malloc_trim_s, lambda: predictor.batches_run))
               if settings.malloc_trim_s > 0 else None)
    try:
        yield
    finally:
        if trimmer is not None:
            trimmer.cancel()
        app.state.predictor = None
        if settings.gc_freeze:
            thaw_startup_objects()
        await predictor.close()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("service").setLevel(level.upper())


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; `engine` lets a caller hand in an engine it already loaded (else the lifespan loads it)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPIOffline(title="star-slr", version="0.1.0", description=DESCRIPTION, openapi_tags=TAGS,
                         lifespan=lifespan, swagger_ui_parameters={"tryItOutEnabled": False}, redoc_url=None)
    add_redoc(app)  # fastapi-offline's ReDoc still fetches its logo from a CDN
    app.state.settings, app.state.metrics = settings, Metrics()
    app.state.preloaded_engine, app.state.predictor = engine, None
    install_error_handlers(app)
    for router in (encode.router, sentences.router, videos.router, ops.router, page.router):
        app.include_router(router)
    app.state.index_html, app.state.samples = (STATIC / "index.html").read_bytes(), load_samples(STATIC / "samples")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Outermost last: metrics see every answer, the 413s of the body limit included. Innermost: a request
    # whose client went away is cancelled, so it leaves the batcher's queue.
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"],
                           expose_headers=["X-Latent-Id", "X-Cached", "X-Request-ID", "X-Unknown-Words"])
    app.add_middleware(CancelledRequestMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
