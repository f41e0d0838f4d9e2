"""Video out: POST /reconstruct (video -> video) and POST /sentence-to-video. GIF by default, PNG frames as JSON."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from core.frames import crop_box
from service.errors import EXAMPLE_BASE
from service.media import display_scale
from service.predictor import Latent, Predictor
from service.routers.deps import PredictorDep, error_responses, require_api_key
from service.routers.inputs import BodySpec, ascii_header, parse_body, request_body, unknown_words
from service.schemas import FramesResponse, ReconstructFields, SentenceToVideoRequest

router = APIRouter(tags=["video out"], dependencies=[Depends(require_api_key)])

VIDEO_OUT: dict[int | str, dict[str, Any]] = {200: {
    "description": "an animated GIF (default) or, with format=json, PNG frames as base64",
    "headers": {"X-Latent-Id": {"description": "the SLR's latent_id", "schema": {"type": "string"}},
                "X-Familiarity": {"description": "how familiar the input is to the model, 0-1 (absent: no "
                                                 "calibration)", "schema": {"type": "number"}},
                "X-Familiar": {"description": "true / false: familiarity at or above the model's threshold",
                               "schema": {"type": "string"}},
                "X-Warnings": {"description": "what to distrust in this answer, in words, separated by ' | '",
                               "schema": {"type": "string"}},
                "X-Warning-Codes": {"description": "the same warnings' codes, comma-separated (what programs read)",
                                    "schema": {"type": "string"}},
                "X-Unknown-Words": {"description": "comma-separated words of the sentence the model does not know",
                                    "schema": {"type": "string"}}},
    "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": FramesResponse.model_json_schema()}}}}

RECONSTRUCT = BodySpec("/reconstruct", ReconstructFields, sources=("video", "latent_id"), file_field="video",
                       example="curl -F video=@clip.mp4 " + EXAMPLE_BASE + "/reconstruct -o out.gif",
                       hints={"sentence": "for a video from a sentence use POST /sentence-to-video"})
SENTENCE_TO_VIDEO = BodySpec(
    "/sentence-to-video", SentenceToVideoRequest, sources=("sentence", "latent_id"), json_first=True,
    example="""curl -H 'content-type: application/json' -d '{"sentence": "a red square moves"}' """
            + EXAMPLE_BASE + "/sentence-to-video -o out.gif",
    hints={"video": "to reconstruct a video use POST /reconstruct", "text": "send the text as 'sentence'"})


async def video_response(predictor: Predictor, latent: Latent, first_frame: bool, fmt: Literal["gif", "json"],
                         scale: int | None, fps: float, unknown: list[str] | None = None) -> Response:
    frames = await predictor.video(latent, condition_on_first_frame=first_frame)
    if first_frame:  # the clip's own aspect ratio: the letterbox's bars are not part of the answer
        frames = crop_box(frames, latent.entry.box)
    scale = display_scale(frames.shape[2], scale)
    headers = {"X-Latent-Id": latent.latent_id, "X-Cached": str(latent.cached).lower()}
    if unknown:
        headers["X-Unknown-Words"] = ascii_header(",".join(unknown))
    verdict = await predictor.verdict(latent, unknown)
    if verdict.familiarity is not None:
        headers["X-Familiarity"] = f"{verdict.familiarity:.4f}"
        headers["X-Familiar"] = str(verdict.familiar).lower()
    if verdict.warnings:
        headers["X-Warnings"] = ascii_header(" | ".join(w.message for w in verdict.warnings))
        headers["X-Warning-Codes"] = ",".join(w.code for w in verdict.warnings)
    if fmt == "gif":
        return Response(await predictor.render(frames, "gif", scale, fps), media_type="image/gif", headers=headers)
    pngs = await predictor.render(frames, "json", scale, fps)
    height, width = frames.shape[1] * scale, frames.shape[2] * scale
    body = FramesResponse(frames=pngs, width=width, height=height, fps=fps,
                          latent_id=latent.latent_id, cached=latent.cached, unknown_words=unknown or []
                          ).with_verdict(verdict)
    return JSONResponse(body.model_dump(), headers=headers)


@router.post("/reconstruct", response_class=Response,
             responses={**VIDEO_OUT, **error_responses(401, 404, 413, 415, 422, 503)},
             summary="Reconstruct a video through the SLR", openapi_extra=request_body(RECONSTRUCT))
async def reconstruct(request: Request, predictor: PredictorDep) -> Response:
    """A clip in the form field `video`, or a `latent_id` from /encode (form field or JSON). Decodes the SLR
    to a clip, conditioned on the input's first frame (kept with the SLR, so a latent_id of a video works
    too; zeros when the SLR came from a sentence): the object the SLR describes, drawn over the first frame's
    own scene where the model does so (`first_frame_background`, quality-v17 on)."""
    predictor.require_task("reconstruct")
    body = await parse_body(request, RECONSTRUCT)
    f = body.fields
    latent = await predictor.resolve(video=body.upload, latent_id=f.latent_id)
    return await video_response(predictor, latent, True, f.format, f.scale, f.fps)


@router.post("/sentence-to-video", response_class=Response,
             responses={**VIDEO_OUT, **error_responses(401, 404, 413, 415, 422, 503)},
             summary="Generate a video from a sentence", openapi_extra=request_body(SENTENCE_TO_VIDEO))
async def sentence_to_video(request: Request, predictor: PredictorDep) -> Response:
    """A `sentence` or a `latent_id` from /encode, as JSON or form fields. Decodes the SLR to a clip from a
    blank first frame."""
    predictor.require_task("sentence_to_video")
    f = (await parse_body(request, SENTENCE_TO_VIDEO)).fields
    latent = await predictor.resolve(sentence=f.sentence, latent_id=f.latent_id)
    unknown = unknown_words(predictor.engine.vocab, f.sentence)
    return await video_response(predictor, latent, False, f.format, f.scale, f.fps, unknown)
