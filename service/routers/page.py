"""The web page for people: GET / (static HTML/CSS/JS from service/static, no CDN, no build step) and
GET /samples: the sample clips shipped with the project and a 2-D map of their SLRs and their captions'."""
from __future__ import annotations

import asyncio
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from core.graph_contract import ENCODER_V
from service.predictor import Latent, Predictor, Upload
from service.routers.deps import PredictorDep, error_responses, require_api_key
from service.schemas import MapPoint, Sample, SamplesResponse

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(request.app.state.index_html)  # read once by the app factory


@router.head("/", include_in_schema=False)
async def index_head() -> Response:
    return Response(status_code=200, media_type="text/html")


def pca2(points: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Rows projected on their first two principal axes (signs fixed: each axis's largest loading positive),
    and the share of the variance along each."""
    centred = points - points.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2] * np.sign(vt[:2, np.abs(vt[:2]).argmax(axis=1)].diagonal())[:, None]
    total = float((s ** 2).sum()) or 1.0
    xy = centred @ axes.T
    if xy.shape[1] < 2:  # fewer points than two axes need
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    return xy, [float(v ** 2 / total) for v in s[:2]]


PointKind = Literal["video", "sentence"]


async def sample_latents(predictor: Predictor,
                         clips: list[tuple[Sample, bytes]]) -> list[tuple[str, PointKind, Latent]]:
    """(sample, kind, latent) of every clip (when the model reads frames) and every caption."""
    jobs: list[tuple[str, PointKind]] = []
    coros = []
    if predictor.engine.config.video_input == "frames" and ENCODER_V in predictor.engine.manifest.graphs:
        for sample, data in clips:
            jobs.append((sample.name, "video"))
            coros.append(predictor.encode(Upload(data, sample.url.rsplit("/", 1)[-1]), None))
    for sample, _ in clips:
        jobs.append((sample.name, "sentence"))
        coros.append(predictor.encode(None, sample.caption))
    latents = await asyncio.gather(*coros)
    return [(name, kind, latent) for (name, kind), latent in zip(jobs, latents)]


@router.get("/samples", response_model=SamplesResponse, responses=error_responses(401, 503), tags=["page"],
            dependencies=[Depends(require_api_key)], summary="Sample clips and a map of their SLRs")
async def samples(request: Request, predictor: PredictorDep) -> SamplesResponse:
    """The clips the web page offers, and each clip's SLR and its caption's SLR projected to 2-D (PCA of the
    SLR means): a clip and its sentence should land together. Each point's `latent_id` decodes to either
    channel (/caption, /paraphrase, /reconstruct, /sentence-to-video)."""
    clips: list[tuple[Sample, bytes]] = request.app.state.samples  # read once by the app factory
    found = await sample_latents(predictor, clips)
    xy, explained = pca2(np.stack([latent.entry.mu for _, _, latent in found]).astype(np.float64))
    points = [MapPoint(sample=name, kind=kind, x=float(x), y=float(y), latent_id=latent.latent_id)
              for (name, kind, latent), (x, y) in zip(found, xy[:, :2])]
    return SamplesResponse(samples=[s for s, _ in clips], points=points, explained=explained)
