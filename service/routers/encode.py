"""POST /encode: media -> SLR (mu, sigma) and its latent_id."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from service.routers.deps import PredictorDep, error_responses, read_upload, require_api_key
from service.schemas import SENTENCE_EXAMPLE, EncodeResponse

router = APIRouter(tags=["encode"], dependencies=[Depends(require_api_key)])

VIDEO_HELP = "mp4, webm, avi, mov or gif (or .npy frames / features)"


@router.post("/encode", response_model=EncodeResponse, responses=error_responses(401, 413, 415, 422, 503),
             summary="Encode a video and/or a sentence into the shared latent representation")
async def encode(
    predictor: PredictorDep,
    video: Annotated[UploadFile | None, File(description=VIDEO_HELP)] = None,
    sentence: Annotated[str | None, Form(description="a sentence", examples=[SENTENCE_EXAMPLE])] = None,
) -> EncodeResponse:
    """Which inputs are sent picks the encoder (video, sentence, or both). The answer's `latent_id` can be
    passed to /caption, /paraphrase, /reconstruct and /sentence-to-video: encode once, decode to any channel."""
    latent = await predictor.encode(await read_upload(video), sentence)
    return EncodeResponse(latent_id=latent.latent_id, mu=latent.entry.mu.tolist(), sigma=latent.entry.sigma.tolist(),
                          config=latent.config_name, inputs=[m for m, k in (("video", "v"), ("sentence", "s"))
                                                              if k in latent.config], cached=latent.cached)
