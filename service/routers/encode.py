"""POST /encode: media -> SLR (mu, sigma) and its latent_id."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from core.channels import media_of
from service.errors import EXAMPLE_BASE
from service.routers.deps import PredictorDep, error_responses, require_api_key
from service.routers.inputs import BodySpec, parse_body, request_body, unknown_words
from service.schemas import EncodeFields, EncodeResponse

router = APIRouter(tags=["encode"], dependencies=[Depends(require_api_key)])

ENCODE = BodySpec("/encode", EncodeFields, sources=("video", "sentence"), exclusive=False, file_field="video",
                  example="curl -F video=@clip.mp4 " + EXAMPLE_BASE + "/encode",
                  hints={"text": "send the text as 'sentence'", "latent_id": "a latent_id is already encoded: "
                         "pass it to /caption, /paraphrase, /reconstruct or /sentence-to-video"})


@router.post("/encode", response_model=EncodeResponse, responses=error_responses(401, 413, 415, 422, 503),
             summary="Encode a video and/or a sentence into the shared latent representation",
             openapi_extra=request_body(ENCODE))
async def encode(request: Request, predictor: PredictorDep) -> EncodeResponse:
    """Which inputs are sent picks the encoder (video, sentence, or both), as a multipart form or (a sentence
    only) JSON. The answer's `latent_id` can be passed to /caption, /paraphrase, /reconstruct and
    /sentence-to-video: encode once, decode to any channel."""
    body = await parse_body(request, ENCODE)
    sentence = body.fields.sentence
    latent = await predictor.encode(body.upload, sentence)
    unknown = unknown_words(predictor.engine.vocab, sentence)
    return EncodeResponse(latent_id=latent.latent_id, mu=latent.entry.mu.tolist(), sigma=latent.entry.sigma.tolist(),
                          config=latent.config_name, inputs=list(media_of(latent.config)), cached=latent.cached,
                          unknown_words=unknown).with_verdict(await predictor.verdict(latent, unknown))
