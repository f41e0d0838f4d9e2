"""Video out: POST /reconstruct (video -> video) and POST /sentence-to-video. GIF by default, PNG frames as JSON."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response

from service.predictor import Latent, Predictor
from service.routers.deps import PredictorDep, error_responses, read_upload, require_api_key
from service.routers.encode import VIDEO_HELP
from service.schemas import FramesResponse, SentenceToVideoRequest

router = APIRouter(tags=["video out"], dependencies=[Depends(require_api_key)])

VIDEO_OUT: dict[int | str, dict[str, Any]] = {200: {
    "description": "an animated GIF (default) or, with format=json, PNG frames as base64",
    "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": FramesResponse.model_json_schema()}}}}


async def video_response(predictor: Predictor, latent: Latent, first_frame: bool, fmt: Literal["gif", "json"],
                         scale: int, fps: float) -> Response:
    frames = await predictor.video(latent, condition_on_first_frame=first_frame)
    rendered = await predictor.render(frames, fmt, scale, fps)
    headers = {"X-Latent-Id": latent.latent_id, "X-Cached": str(latent.cached).lower()}
    if fmt == "gif":
        return Response(rendered, media_type="image/gif", headers=headers)  # type: ignore[arg-type]
    height, width = frames.shape[1] * scale, frames.shape[2] * scale
    body = FramesResponse(frames=rendered, width=width, height=height, fps=fps,  # type: ignore[arg-type]
                          latent_id=latent.latent_id, cached=latent.cached)
    return JSONResponse(body.model_dump(), headers=headers)


@router.post("/reconstruct", response_class=Response, responses={**VIDEO_OUT, **error_responses(401, 404, 413, 415,
                                                                                                  422, 503)},
             summary="Reconstruct a video through the SLR")
async def reconstruct(
    predictor: PredictorDep,
    video: Annotated[UploadFile | None, File(description=VIDEO_HELP)] = None,
    latent_id: Annotated[str | None, Form(description="an SLR from /encode instead of a video")] = None,
    format: Annotated[Literal["gif", "json"], Form(description="gif, or json (PNG frames, base64)")] = "gif",
    scale: Annotated[int, Form(ge=1, le=8, description="integer upsampling for viewing")] = 1,
    fps: Annotated[float, Form(gt=0, le=60)] = 8.0,
) -> Response:
    """Decodes the SLR to a clip, conditioned on the input's first frame (kept with the SLR, so a latent_id
    of a video works too; zeros when the SLR came from a sentence)."""
    predictor.require_task("reconstruct")
    latent = await predictor.resolve(video=await read_upload(video), latent_id=latent_id)
    return await video_response(predictor, latent, True, format, scale, fps)


@router.post("/sentence-to-video", response_class=Response, responses={**VIDEO_OUT, **error_responses(401, 404, 422,
                                                                                                       503)},
             summary="Generate a video from a sentence")
async def sentence_to_video(predictor: PredictorDep, body: SentenceToVideoRequest) -> Response:
    """Decodes the sentence's SLR to a clip from a blank first frame."""
    predictor.require_task("sentence_to_video")
    latent = await predictor.resolve(sentence=body.sentence, latent_id=body.latent_id)
    return await video_response(predictor, latent, False, body.format, body.scale, body.fps)
