"""Sentence out: POST /caption (video -> sentence) and POST /paraphrase (sentence -> sentence)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from service.routers.deps import PredictorDep, error_responses, read_upload, require_api_key
from service.routers.encode import VIDEO_HELP
from service.schemas import CaptionResponse, ParaphraseRequest, ParaphraseResponse

router = APIRouter(tags=["sentence out"], dependencies=[Depends(require_api_key)])


@router.post("/caption", response_model=CaptionResponse, response_model_exclude_none=True,
             responses=error_responses(401, 404, 413, 415, 422, 503), summary="Caption a video")
async def caption(
    predictor: PredictorDep,
    video: Annotated[UploadFile | None, File(description=VIDEO_HELP)] = None,
    latent_id: Annotated[str | None, Form(description="an SLR from /encode instead of a video")] = None,
    num_captions: Annotated[int, Form(ge=1, le=16, description="> 1: also sample this many captions")] = 1,
    seed: Annotated[int, Form(ge=0, description="seed of the sampling")] = 0,
    beam_size: Annotated[int, Form(ge=1, le=16)] = 1,
    max_len: Annotated[int | None, Form(ge=1, le=100, description="longest caption in words")] = None,
) -> CaptionResponse:
    """`caption` is decoded from the SLR mean; with `num_captions` > 1, `captions` holds that many sentences
    decoded from z = mu + sigma * eps, reproducible with `seed`."""
    predictor.require_task("caption")
    latent = await predictor.resolve(video=await read_upload(video), latent_id=latent_id)
    out = await predictor.describe(latent, num_captions if num_captions > 1 else 0, seed, beam_size, max_len)
    return CaptionResponse(caption=out.caption, captions=out.samples if num_captions > 1 else None,
                           latent_id=latent.latent_id, cached=latent.cached)


@router.post("/paraphrase", response_model=ParaphraseResponse, responses=error_responses(401, 404, 413, 422, 503),
             summary="Paraphrase a sentence")
async def paraphrase(predictor: PredictorDep, body: ParaphraseRequest) -> ParaphraseResponse:
    """`sentence` is decoded from the SLR mean, `alternatives` from samples of the SLR (seeded)."""
    predictor.require_task("paraphrase")
    latent = await predictor.resolve(sentence=body.sentence, latent_id=body.latent_id)
    out = await predictor.describe(latent, body.num_alternatives, body.seed, body.beam_size, body.max_len)
    return ParaphraseResponse(sentence=out.caption, alternatives=out.samples, latent_id=latent.latent_id,
                              cached=latent.cached)
