"""The channel configuration registry: the one place that says what a task is.

A configuration switches the two input channels (video, sentence) and the two output channels on or
off. The model, the exporter and the service all read this frozen registry; tests are parametrised
over it, so a configuration registered here is tested everywhere at once. Torch-free on purpose.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Medium = Literal["video", "sentence"]
MEDIA: tuple[Medium, ...] = ("video", "sentence")


@dataclass(frozen=True)
class ChannelConfig:
    """One named task: which inputs are on and which outputs are produced."""

    name: str
    inputs: frozenset[str]
    outputs: frozenset[str]
    endpoint: str
    description: str

    def __post_init__(self) -> None:
        if not self.inputs or not self.inputs <= set(MEDIA) or not self.outputs <= set(MEDIA):
            raise ValueError(f"bad channel configuration {self.name}: {self.inputs} -> {self.outputs}")

    @property
    def input_key(self) -> str:
        """Short stable key of the input subset: 'v', 's' or 'vs' (graph names, cache keys)."""
        return input_key(self.inputs)

    @property
    def mask(self) -> tuple[bool, bool]:
        """(video on, sentence on): the switches the model takes."""
        return ("video" in self.inputs, "sentence" in self.inputs)


def input_key(inputs: frozenset[str] | set[str]) -> str:
    if not inputs or not set(inputs) <= set(MEDIA):
        raise ValueError(f"inputs must be a non-empty subset of {MEDIA}, got {sorted(inputs)}")
    return ("v" if "video" in inputs else "") + ("s" if "sentence" in inputs else "")


def _cfg(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], endpoint: str,
         description: str) -> ChannelConfig:
    return ChannelConfig(name, frozenset(inputs), frozenset(outputs), endpoint, description)


REGISTRY: dict[str, ChannelConfig] = {
    c.name: c
    for c in (
        _cfg("encode_v", ("video",), (), "/encode", "video -> SLR (mu, sigma)"),
        _cfg("encode_s", ("sentence",), (), "/encode", "sentence -> SLR (mu, sigma)"),
        _cfg("encode_vs", ("video", "sentence"), (), "/encode", "video + sentence -> SLR (mu, sigma)"),
        _cfg("caption", ("video",), ("sentence",), "/caption", "video-to-sentence"),
        _cfg("paraphrase", ("sentence",), ("sentence",), "/paraphrase", "sentence-to-sentence"),
        _cfg("reconstruct", ("video",), ("video",), "/reconstruct", "video-to-video"),
        _cfg("sentence_to_video", ("sentence",), ("video",), "/sentence-to-video", "sentence-to-video"),
    )
}

# Every input subset the model can be asked to encode (one encoder graph each).
INPUT_KEYS: tuple[str, ...] = ("v", "s", "vs")

# Partial-model learning (paper): input configurations (v,s), (v,0), (0,s) drawn with these probabilities.
PARTIAL_LEARNING_PROBS: dict[str, float] = {"vs": 0.5, "v": 0.25, "s": 0.25}


def get(name: str) -> ChannelConfig:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown channel configuration {name!r}; known: {sorted(REGISTRY)}") from None

