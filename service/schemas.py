"""Request and response bodies, with the examples Swagger UI shows.

The request models serve both ways a client may send fields: a multipart (or urlencoded) form and a JSON object
(`service.routers.inputs` parses either into the same model). `extra="forbid"`: a field an endpoint does not
take is an error that names the fields it does take, never silently ignored.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Self  # typing.Self from Python 3.11; the project supports 3.10

from core.answer_warnings import AnswerWarning, WarningCode, warning
from core.config import FrameFit
from core.familiarity import Verdict

LATENT_EXAMPLE = "slr:20261125-153000:v:" + "3f" * 32
SENTENCE_EXAMPLE = "a red square moves to the right"
LATENT_HELP = "an SLR from /encode (its `latent_id`) instead of media"


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["num_captions: Input should be less than or equal to 16 (got 40)"])


class ErrorResponse(BaseModel):
    error: ErrorDetail


# ---- requests (form fields or a JSON object) -------------------------------------------------------------

class RequestFields(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncodeFields(RequestFields):
    sentence: str | None = Field(None, description="a sentence (with a video: the video+sentence SLR)")


class CaptionFields(RequestFields):
    latent_id: str | None = Field(None, description=LATENT_HELP)
    num_captions: int = Field(1, ge=1, le=16, description="> 1: that many distinct captions (fewer if the SLR "
                                                          "gives fewer; `note` says so)")
    seed: int = Field(0, ge=0, description="seed of the sampling (same seed, same captions)")
    beam_size: int = Field(1, ge=1, le=16, description="1: greedy; more: beam search")
    max_len: int | None = Field(None, ge=1, le=100, description="longest caption in words; empty: the model's")


SCALE_HELP = ("integer upsampling for viewing (nearest neighbour); empty: the smallest that makes the clip at "
              "least 256 px wide; 1: the model's own frame size")


class ReconstructFields(RequestFields):
    latent_id: str | None = Field(None, description=LATENT_HELP)
    format: Literal["gif", "json"] = Field("gif", description="gif: image/gif; json: PNG frames as base64")
    scale: int | None = Field(None, ge=1, le=8, description=SCALE_HELP)
    fps: float = Field(8.0, gt=0, le=60, description="frames per second of the GIF")


class ParaphraseRequest(RequestFields):
    sentence: str | None = Field(None, description="input sentence (send this or latent_id)",
                                 examples=[SENTENCE_EXAMPLE])
    latent_id: str | None = Field(None, description="an SLR from /encode instead of a sentence")
    num_alternatives: int = Field(3, ge=0, le=16, description="distinct sentences sampled from the SLR besides "
                                                              "the mean's (fewer if the SLR gives fewer)")
    seed: int = Field(0, ge=0, description="seed of the sampling (same seed, same alternatives)")
    beam_size: int = Field(1, ge=1, le=16, description="1: greedy; more: beam search")
    max_len: int | None = Field(None, ge=1, le=100, description="longest output in words; default the model's")
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"sentence": SENTENCE_EXAMPLE, "num_alternatives": 3, "seed": 0, "beam_size": 1}]})


class SentenceToVideoRequest(RequestFields):
    sentence: str | None = Field(None, description="input sentence (send this or latent_id)",
                                 examples=[SENTENCE_EXAMPLE])
    latent_id: str | None = Field(None, description="an SLR from /encode instead of a sentence")
    format: Literal["gif", "json"] = Field("gif", description="gif: image/gif; json: PNG frames as base64")
    scale: int | None = Field(None, ge=1, le=8, description=SCALE_HELP)
    fps: float = Field(8.0, gt=0, le=60, description="frames per second of the GIF")
    model_config = ConfigDict(json_schema_extra={"examples": [{"sentence": SENTENCE_EXAMPLE}]})


# ---- responses ---------------------------------------------------------------------------------------------

UNKNOWN_HELP = "words of the sentence this model does not know (read as <unk>; GET /vocab lists the known ones)"


class WarningItem(BaseModel):
    """One thing to distrust in an answer (core/answer_warnings.py owns every code and text)."""

    code: WarningCode = Field(description="stable: what programs (and the page) read", examples=["unfamiliar_clip"])
    message: str = Field(description="the same in words, for people; may be reworded")

    @classmethod
    def of(cls, w: AnswerWarning) -> WarningItem:
        return cls(code=w.code, message=w.message)


UNFAMILIAR_EXAMPLE = WarningItem.of(warning("unfamiliar_clip")).model_dump()


class Familiarity(BaseModel):
    """How familiar the input is to the model (core/familiarity.py), on every answer that reads an input: the one
    response model of the verdict, which every answer that reads an input extends."""

    familiarity: float | None = Field(
        None, ge=0, le=1, examples=[0.83],
        description="1: like the data the model was trained on; near 0: unlike it (video: how well the model "
                    "rebuilds the clip from its own SLR, calibrated per model at export; sentence: the share of "
                    "known words). null: this model carries no calibration")
    familiar: bool | None = Field(None, description="familiarity at or above the model's calibrated threshold",
                                  examples=[True])
    warnings: list[WarningItem] = Field(default_factory=list, description="what to distrust in this answer: a code "
                                        "each, and the same in words", examples=[[UNFAMILIAR_EXAMPLE]])

    def with_verdict(self, verdict: Verdict, *more: AnswerWarning) -> Self:
        """This answer with the verdict's fields set, and any warnings of its own after the verdict's (set by
        assignment, so that routes answering with exclude_unset keep them)."""
        self.familiarity, self.familiar = verdict.familiarity, verdict.familiar
        self.warnings = [WarningItem.of(w) for w in (*verdict.warnings, *more)]
        return self


class EncodeResponse(Familiarity):
    latent_id: str = Field(description="cache key of this SLR; pass it to the decode endpoints",
                           examples=[LATENT_EXAMPLE])
    mu: list[float] = Field(description="posterior mean of the SLR (Nz floats)")
    sigma: list[float] = Field(description="posterior standard deviation (Nz floats)")
    config: str = Field(description="channel configuration used", examples=["encode_v"])
    inputs: list[str] = Field(description="input channels switched on", examples=[["video"]])
    cached: bool = Field(description="true when the SLR came from the cache (no media decoded, no encoder run)")
    unknown_words: list[str] = Field(default_factory=list, description=UNKNOWN_HELP)
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "latent_id": LATENT_EXAMPLE, "mu": [0.12, -0.4, 0.9], "sigma": [0.3, 0.28, 0.41],
        "config": "encode_v", "inputs": ["video"], "cached": False, "unknown_words": [], "familiarity": 0.83,
        "familiar": True, "warnings": []}]})


TRUNCATED_HELP = ("true when the decode ran to its cap (max_len, or the model's max_words) with no end "
                  "token: the sentence is cut off, and `warnings` says so (code `truncated`)")


class CaptionResponse(Familiarity):
    caption: str = Field(description="sentence decoded from the SLR mean", examples=[SENTENCE_EXAMPLE])
    captions: list[str] | None = Field(None, description="with num_captions > 1: distinct captions, the mean's "
                                                         "first, then sentences of samples of the SLR")
    note: str | None = Field(None, description="present when fewer distinct captions than asked were found")
    truncated: bool = Field(False, description=TRUNCATED_HELP)
    latent_id: str = Field(examples=[LATENT_EXAMPLE])
    cached: bool
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"caption": SENTENCE_EXAMPLE, "truncated": False, "latent_id": LATENT_EXAMPLE, "cached": False,
         "familiarity": 0.83, "familiar": True, "warnings": []},
        {"caption": "a purple triangle is getting smaller", "truncated": False, "latent_id": LATENT_EXAMPLE,
         "cached": False,
         "familiarity": 0.0, "familiar": False, "warnings": [UNFAMILIAR_EXAMPLE]}]})


class ParaphraseResponse(Familiarity):
    sentence: str = Field(examples=["a red square moves right"])
    alternatives: list[str] = Field(description="distinct sentences, none equal to `sentence`",
                                    examples=[["a red square slides right", "a red box moves to the right"]])
    note: str | None = Field(None, description="present when fewer distinct alternatives than asked were found")
    truncated: bool = Field(False, description=TRUNCATED_HELP)
    unknown_words: list[str] = Field(default_factory=list, description=UNKNOWN_HELP)
    latent_id: str
    cached: bool


class FramesResponse(Familiarity):
    frames: list[str] = Field(description="PNG frames, base64")
    width: int
    height: int
    fps: float
    latent_id: str
    cached: bool
    unknown_words: list[str] = Field(default_factory=list, description=UNKNOWN_HELP)


class ModelTask(BaseModel):
    name: str
    endpoint: str
    inputs: list[str]
    outputs: list[str]


class ModelInfo(BaseModel):
    version: str = Field(examples=["20261125-153000"])
    created: str | None = None
    video_input: str = Field(examples=["frames"])
    frames: int
    height: int
    width: int
    frame_fit: FrameFit = Field(
        description="how a clip of another aspect ratio meets height x width: squeezed, or letterboxed (and "
                    "/reconstruct answers in the clip's own aspect ratio)")
    latent_dim: int
    max_words: int
    vocab_size: int
    tasks: list[ModelTask]
    channel_configs: dict[str, list[str]] = Field(description="encoder input configuration -> input channels")
    providers: dict[str, list[str]] = Field(description="execution providers each graph actually runs on")
    uses_gpu: bool


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready", "degraded", "starting"] = Field(examples=["ready"])
    model_version: str | None = None
    redis: Literal["up", "down", "disabled"] = Field(description="down/disabled: SLRs cached in process only")
    providers: dict[str, list[str]] = {}
    reasons: list[str] = []
    release_override: str | None = Field(
        None, description="why the served version was made latest although the release gate found a figure worse "
                          "than the version before it (slr release --reason); null when it passed the gate")


class VocabResponse(BaseModel):
    version: str
    size: int = Field(description="words including the four specials")
    max_words: int = Field(description="longest sentence the encoders take, in words")
    specials: list[str] = Field(examples=[["<pad>", "<bos>", "<eos>", "<unk>"]])
    words: list[str] = Field(description="the words the model knows, most frequent in training first",
                             examples=[["a", "the", "red", "square", "moves"]])


class Sample(BaseModel):
    name: str = Field(examples=["red-square-right"])
    url: str = Field(description="the clip (a GIF served by the app)",
                     examples=["/static/samples/red-square-right.gif"])
    caption: str = Field(description="the sentence the clip was drawn from", examples=[SENTENCE_EXAMPLE])


class MapPoint(BaseModel):
    sample: str = Field(description="the sample's name")
    kind: Literal["video", "sentence"]
    x: float
    y: float
    latent_id: str


class SamplesResponse(BaseModel):
    samples: list[Sample]
    points: list[MapPoint] = Field(description="2-D PCA of the SLR means of each sample's clip and caption")
    explained: list[float] = Field(description="share of the variance along each of the two axes")
