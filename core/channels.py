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
# The short key of an input subset ('v', 's', 'vs'): graph names, cache keys, latent ids. Each medium's letter is
# spelled here and nowhere else; every other room asks the functions below.
InputKey = Literal["v", "s", "vs"]
MEDIUM_LETTERS: dict[Medium, str] = {"video": "v", "sentence": "s"}


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
    return "".join(MEDIUM_LETTERS[m] for m in MEDIA if m in inputs)


def key_of(video: bool, sentence: bool) -> str:
    """The key of the inputs present, e.g. key_of(video=True, sentence=False) == 'v'."""
    return input_key({m for m, on in zip(MEDIA, (video, sentence)) if on})


def media_of(key: str) -> tuple[Medium, ...]:
    """The media of an input key, in MEDIA order: 'vs' -> ('video', 'sentence')."""
    if key not in INPUT_KEYS:
        raise ValueError(f"unknown input key {key!r}; known: {INPUT_KEYS}")
    return tuple(m for m in MEDIA if MEDIUM_LETTERS[m] in key)


def has_video(key: str) -> bool:
    return "video" in media_of(key)


def has_sentence(key: str) -> bool:
    return "sentence" in media_of(key)


def encode_name(key: str) -> str:
    """The registry name of the configuration that encodes an input key: 'v' -> 'encode_v'."""
    return get(f"encode_{key}").name


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
INPUT_KEYS: tuple[InputKey, ...] = ("v", "s", "vs")

# Partial-model learning (paper): input configurations (v,s), (v,0), (0,s) drawn with these probabilities.
PARTIAL_LEARNING_PROBS: dict[str, float] = {"vs": 0.5, "v": 0.25, "s": 0.25}


def get(name: str) -> ChannelConfig:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown channel configuration {name!r}; known: {sorted(REGISTRY)}") from None

