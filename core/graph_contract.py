"""The ONNX graph contract: the name, inputs and outputs of every exported graph, and how long a sentence decode
runs. Export writes graphs by these names, the engine, parity, variants and calibration run them by these names;
no other module spells a graph's name or its tensors (CONTRIBUTING.md, "The artifacts contract", is the table
a person reads; tests/export/test_contract_doc.py holds it to this module). Standard library only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.channels import INPUT_KEYS, has_sentence, has_video

# -- graph names ---------------------------------------------------------------------------------------------
ENCODER_V = "encoder_v"
ENCODER_S = "encoder_s"
ENCODER_VS = "encoder_vs"
SENTENCE_INIT = "sentence_init"
SENTENCE_STEP = "sentence_step"
VIDEO_DECODER = "video_decoder"
# The video decoder with video-to-video's heads only (a sprite decoder with sentence_heads): what the familiarity
# score's rebuild runs, every row with a first frame, without computing sentence-to-video's heads for nothing.
VIDEO_REBUILD = "video_rebuild"
SENTENCE_GRAPHS = (SENTENCE_INIT, SENTENCE_STEP)

# -- tensor names ----------------------------------------------------------------------------------------------
ENCODER_OUTPUTS = ("mu", "sigma")
# The sentence decoder's state: z is carried beside the LSTM state (batch on axis 1) so that beam search
# reorders it with h and c (core/search.py).
DECODER_STATE = ("h", "c", "z_state")
STEP_OUTPUTS = ("logprobs", "h_out", "c_out")


@dataclass(frozen=True)
class GraphIO:
    """One graph's file stem and the names of its inputs and outputs, in the order they are exported."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


def encoder_graph(key: str) -> str:
    """The encoder graph of an input configuration ('v', 's', 'vs')."""
    if key not in INPUT_KEYS:
        raise KeyError(f"no encoder for input configuration {key!r}")
    return f"encoder_{key}"


def encoder_io(key: str) -> GraphIO:
    inputs = (("video",) if has_video(key) else ()) + (("tokens", "lengths") if has_sentence(key) else ())
    return GraphIO(encoder_graph(key), inputs, ENCODER_OUTPUTS)


SENTENCE_INIT_IO = GraphIO(SENTENCE_INIT, ("z",), DECODER_STATE)
SENTENCE_STEP_IO = GraphIO(SENTENCE_STEP, ("token", *DECODER_STATE), STEP_OUTPUTS)
VIDEO_DECODER_IO = GraphIO(VIDEO_DECODER, ("z", "first_frame"), ("frames",))
VIDEO_REBUILD_IO = GraphIO(VIDEO_REBUILD, ("z", "first_frame"), ("frames",))

# Every graph of the contract, in export order (the encoders first: what a task needs first).
CONTRACT: tuple[GraphIO, ...] = (*(encoder_io(k) for k in INPUT_KEYS), SENTENCE_INIT_IO, SENTENCE_STEP_IO,
                                 VIDEO_DECODER_IO, VIDEO_REBUILD_IO)


def graph_io(name: str) -> GraphIO:
    for io in CONTRACT:
        if io.name == name:
            return io
    raise KeyError(f"{name!r} is not a graph of the contract")


# -- how long a sentence decode runs ---------------------------------------------------------------------------

def decode_length(max_words: int) -> int:
    """Decode steps for a model of max_words: every word, plus the step that emits <eos>. A decode that runs all
    of them without <eos> was cut by the cap (core/search.py reports it; the service marks it `truncated`)."""
    return max_words + 1


def reached_cap(word_ids: Sequence[int], max_len: int) -> bool:
    """Whether a decode of max_len steps ran every step without <eos> (core/search.py: such a row holds max_len
    words; a row that ended holds fewer): the sentence was cut off, not finished."""
    return len(word_ids) >= max_len


def resolve_max_len(max_len: int | None, max_words: int) -> int:
    """A request's max_len, or the model's own decode length when it names none (the one default)."""
    return max_len or decode_length(max_words)
