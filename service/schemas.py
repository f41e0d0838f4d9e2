"""Request and response bodies, with the examples Swagger UI shows."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LATENT_EXAMPLE = "slr:20261125-153000:v:" + "3f" * 32
SENTENCE_EXAMPLE = "a red square moves to the right"


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["sentence is empty (it has no words)"])


class ErrorResponse(BaseModel):
    error: ErrorDetail


class EncodeResponse(BaseModel):
    latent_id: str = Field(description="cache key of this SLR; pass it to the decode endpoints",
                           examples=[LATENT_EXAMPLE])
    mu: list[float] = Field(description="posterior mean of the SLR (Nz floats)")
    sigma: list[float] = Field(description="posterior standard deviation (Nz floats)")
    config: str = Field(description="channel configuration used", examples=["encode_v"])
    inputs: list[str] = Field(description="input channels switched on", examples=[["video"]])
    cached: bool = Field(description="true when the SLR came from the cache (no media decoded, no encoder run)")
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "latent_id": LATENT_EXAMPLE, "mu": [0.12, -0.4, 0.9], "sigma": [0.3, 0.28, 0.41],
        "config": "encode_v", "inputs": ["video"], "cached": False}]})


class CaptionResponse(BaseModel):
    caption: str = Field(description="sentence decoded from the SLR mean", examples=[SENTENCE_EXAMPLE])
    captions: list[str] | None = Field(None, description="num_captions sentences sampled from the SLR (when > 1)")
    latent_id: str = Field(examples=[LATENT_EXAMPLE])
    cached: bool


class DecodeOptions(BaseModel):
    """Either a sentence or a latent_id from /encode."""

    sentence: str | None = Field(None, description="input sentence (unknown words become <unk>)",
                                 examples=[SENTENCE_EXAMPLE])
    latent_id: str | None = Field(None, description="an SLR from /encode instead of a sentence")

    @model_validator(mode="after")
    def _one_source(self) -> "DecodeOptions":
        if (self.sentence is None) == (self.latent_id is None):
            raise ValueError("send exactly one of sentence or latent_id")
        return self


class ParaphraseRequest(DecodeOptions):
    num_alternatives: int = Field(3, ge=0, le=16, description="sentences sampled from the SLR besides the mean's")
    seed: int = Field(0, ge=0, description="seed of the sampling (same seed, same alternatives)")
    beam_size: int = Field(1, ge=1, le=16)
    max_len: int | None = Field(None, ge=1, le=100, description="longest output in words; default the model's")
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"sentence": SENTENCE_EXAMPLE, "num_alternatives": 3, "seed": 0, "beam_size": 1}]})


class ParaphraseResponse(BaseModel):
    sentence: str = Field(examples=["a red square moves right"])
    alternatives: list[str] = Field(examples=[["a red square slides right", "a red box moves to the right"]])
    latent_id: str
    cached: bool


class SentenceToVideoRequest(DecodeOptions):
    format: Literal["gif", "json"] = Field("gif", description="gif: image/gif; json: PNG frames as base64")
    scale: int = Field(1, ge=1, le=8, description="integer upsampling for viewing (nearest neighbour)")
    fps: float = Field(8.0, gt=0, le=60)
    model_config = ConfigDict(json_schema_extra={"examples": [{"sentence": SENTENCE_EXAMPLE, "scale": 4}]})


class FramesResponse(BaseModel):
    frames: list[str] = Field(description="PNG frames, base64")
    width: int
    height: int
    fps: float
    latent_id: str
    cached: bool


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
