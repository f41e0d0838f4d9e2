"""Sentence out: POST /caption (video -> sentence) and POST /paraphrase (sentence -> sentence)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.errors import EXAMPLE_BASE
from service.routers.deps import PredictorDep, error_responses, require_api_key
from service.routers.inputs import BodySpec, parse_body, request_body, unknown_words
from service.schemas import CaptionFields, CaptionResponse, ParaphraseRequest, ParaphraseResponse

router = APIRouter(tags=["sentence out"], dependencies=[Depends(require_api_key)])

CAPTION = BodySpec("/caption", CaptionFields, sources=("video", "latent_id"), file_field="video",
                   example="curl -F video=@clip.mp4 " + EXAMPLE_BASE + "/caption",
                   hints={"sentence": "/caption captions a video; to rephrase a sentence use POST /paraphrase"})
PARAPHRASE = BodySpec("/paraphrase", ParaphraseRequest, sources=("sentence", "latent_id"), json_first=True,
                      example="""curl -H 'content-type: application/json' -d '{"sentence": "a red square moves"}' """
                              + EXAMPLE_BASE + "/paraphrase",
                      hints={"video": "to caption a video use POST /caption", "text": "send the text as 'sentence'",
                             "num_captions": "here it is 'num_alternatives'"})


def shortfall(kind: str, asked: int, got: int, beam_size: int) -> str | None:
    """A note when sampling found fewer distinct sentences than asked, with what to try: a narrow SLR's samples
    decode greedily to one sentence, and beam search over each sample finds more distinct ones."""
    if got >= asked:
        return None
    advice = "try beam_size 5, or another seed" if beam_size <= 1 else "try another seed, or a larger beam_size"
    return f"asked for {asked} {kind}; this SLR gave {got} distinct ones (samples that repeat are left out: {advice})"


@router.post("/caption", response_model=CaptionResponse, response_model_exclude_unset=True,
             responses=error_responses(401, 404, 413, 415, 422, 503), summary="Caption a video",
             openapi_extra=request_body(CAPTION))
async def caption(request: Request, predictor: PredictorDep) -> CaptionResponse:
    """A clip in the form field `video`, or a `latent_id` from /encode (as a form field or in JSON).
    `caption` is decoded from the SLR mean; with `num_captions` > 1, `captions` holds that many distinct
    sentences, the mean's first, then sentences of draws z = mu + sigma * eps, reproducible with `seed`."""
    predictor.require_task("caption")
    body = await parse_body(request, CAPTION)
    f = body.fields
    latent = await predictor.resolve(video=body.upload, latent_id=f.latent_id)
    out = await predictor.describe(latent, f.num_captions - 1, f.seed, f.beam_size, f.max_len, distinct=True)
    answer = CaptionResponse(caption=out.caption, truncated=out.truncated, latent_id=latent.latent_id,
                             cached=latent.cached).with_verdict(await predictor.verdict(latent), *out.cut_off())
    if f.num_captions > 1:  # fields set only when they apply: the answer leaves out the others (exclude_unset)
        answer.captions = [out.caption, *out.samples]
        note = shortfall("captions", f.num_captions, 1 + len(out.samples), f.beam_size)
        if note:
            answer.note = note
    return answer


@router.post("/paraphrase", response_model=ParaphraseResponse, response_model_exclude_unset=True,
             responses=error_responses(401, 404, 413, 415, 422, 503), summary="Paraphrase a sentence",
             openapi_extra=request_body(PARAPHRASE))
async def paraphrase(request: Request, predictor: PredictorDep) -> ParaphraseResponse:
    """A `sentence` or a `latent_id` from /encode, as JSON or form fields. `sentence` is decoded from the SLR
    mean, `alternatives` are distinct sentences of samples of the SLR (seeded), none equal to `sentence`."""
    predictor.require_task("paraphrase")
    f = (await parse_body(request, PARAPHRASE)).fields
    latent = await predictor.resolve(sentence=f.sentence, latent_id=f.latent_id)
    out = await predictor.describe(latent, f.num_alternatives, f.seed, f.beam_size, f.max_len, distinct=True)
    unknown = unknown_words(predictor.engine.vocab, f.sentence)
    answer = ParaphraseResponse(sentence=out.caption, alternatives=out.samples, truncated=out.truncated,
                                unknown_words=unknown, latent_id=latent.latent_id, cached=latent.cached
                                ).with_verdict(await predictor.verdict(latent, unknown), *out.cut_off())
    note = shortfall("alternatives", f.num_alternatives, len(out.samples), f.beam_size)
    if note:
        answer.note = note
    return answer
