"""The exported graphs, one `GraphSpec` each (as Hugging Face optimum's export configs): the ONNX signature,
the thin nn.Module wrapper around StarModel that tracing sees, the dynamic axes, and the real inputs parity
runs. Each wrapper fixes one input configuration or one decoder piece so that TorchScript tracing sees a plain
tensors-in, tensors-out function. The names and shapes here are the artifacts contract (CONTRIBUTING.md).
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from core.channels import INPUT_KEYS, has_sentence, has_video
from core.config import ModelConfig
from core.graph_contract import (
    DECODER_STATE,
    SENTENCE_INIT_IO,
    SENTENCE_STEP_IO,
    STEP_OUTPUTS,
    VIDEO_DECODER_IO,
    VIDEO_REBUILD_IO,
    GraphIO,
    encoder_io,
)
from core.manifest import GraphEntry
from core.vocab import BOS_ID, Vocab, pad_tokens
from model.star import SpriteVideoDecoder, StarModel, has_rebuild_graph

OPSET = 17

Case = dict[str, Tensor]


@dataclass
class Samples:
    """Real inputs for parity: preprocessed clips and tokenised sentences (either may be absent)."""

    video: Tensor | None
    tokens: Tensor | None
    lengths: Tensor | None

    @classmethod
    def build(cls, vocab: Vocab, cfg: ModelConfig, video: np.ndarray | None,
              sentences: Sequence[str] | None) -> "Samples":
        v = None
        if video is not None and len(video):
            arr = np.asarray(video)
            arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr  # clips as stored: uint8
            v = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        tokens = lengths = None
        if sentences:
            padded, widths = pad_tokens([vocab.encode(s, cfg.max_words) for s in sentences])
            tokens, lengths = torch.from_numpy(padded), torch.from_numpy(widths)
        if v is not None and tuple(v.shape[1:]) != video_shape(cfg, 1)[1:] and cfg.video_input == "frames":
            raise ValueError(f"sample_video must be [N, {', '.join(map(str, video_shape(cfg, 1)[1:]))}], "
                             f"got {list(v.shape)}")
        return cls(v, tokens, lengths)

    @torch.no_grad()
    def latents(self, model: StarModel) -> Tensor | None:
        """z of every sample (video rows, then sentence rows): what the decoders see in the pipeline."""
        z = []
        if self.video is not None:
            z.append(model.encode(self.video).mu)
        if self.tokens is not None:
            z.append(model.encode(None, self.tokens, self.lengths).mu)
        return torch.cat(z) if z else None


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph, whole: its name and signature (the artifacts contract), the module that wraps the
    StarModel for tracing, the real inputs its parity check runs, and when a model has it at all. Adding a
    graph is one entry in `GRAPHS`; export, parity, the manifest and the tests read that list."""

    io: GraphIO  # name, inputs, outputs: core/graph_contract.py owns them
    build: Callable[[StarModel], nn.Module]
    real_cases: Callable[[StarModel, Samples], list[Case]]
    present: Callable[[ModelConfig], bool] = lambda cfg: True

    @property
    def name(self) -> str:
        return self.io.name

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.io.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.io.outputs

    @property
    def file(self) -> str:
        return self.io.file

    def manifest_entry(self) -> GraphEntry:
        return GraphEntry(self.file, list(self.inputs), list(self.outputs))

    def wrapper(self, model: StarModel) -> nn.Module:
        return self.build(model).eval()

    def dynamic_axes(self, cfg: ModelConfig) -> dict[str, dict[int, str]]:
        """Batch is dynamic everywhere (axis 1 of the [1,B,Hd] LSTM state); L for tokens; Tf for features."""
        axes: dict[str, dict[int, str]] = {}
        for name in self.inputs + self.outputs:
            axes[name] = {1: "B"} if name in BATCH_ON_AXIS_1 else {0: "B"}
        if "tokens" in axes:
            axes["tokens"][1] = "L"
        if "video" in axes and cfg.video_input == "features":
            axes["video"][1] = "Tf"
        return axes

    def example_inputs(self, cfg: ModelConfig, batch: int, seq_len: int, generator: torch.Generator) -> Case:
        return example_inputs(cfg, self.inputs, batch, seq_len, generator)


# ---------------------------------------------------------------- wrappers

class EncoderGraph(nn.Module):
    """StarModel.encode for one input subset; the inactive input is None, so its encoder is never traced."""

    def __init__(self, model: StarModel, key: str) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, *args: Tensor) -> tuple[Tensor, Tensor]:
        video = args[0] if has_video(self.key) else None
        tokens, lengths = (args[-2], args[-1]) if has_sentence(self.key) else (None, None)
        latent = self.model.encode(video, tokens, lengths)
        return latent.mu, latent.sigma


class SentenceInitGraph(nn.Module):
    def __init__(self, model: StarModel) -> None:
        super().__init__()
        self.decoder = model.sentence_decoder

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.decoder.init_state(z)


class SentenceStepGraph(nn.Module):
    def __init__(self, model: StarModel) -> None:
        super().__init__()
        self.decoder = model.sentence_decoder

    def forward(self, token: Tensor, h: Tensor, c: Tensor, z_state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.decoder.step(token, h, c, z_state)


class VideoDecoderGraph(nn.Module):
    """All T frames in one graph: the free-running loop is unrolled by tracing (T is fixed per model)."""

    def __init__(self, model: StarModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor, first_frame: Tensor) -> Tensor:
        return self.model.decode_video(z, first_frame)


class VideoRebuildGraph(nn.Module):
    """The video decoder's video-to-video rows only (SpriteVideoDecoder.rebuild): the familiarity score's rebuild."""

    def __init__(self, model: StarModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor, first_frame: Tensor) -> Tensor:
        decoder = self.model.video_decoder
        assert isinstance(decoder, SpriteVideoDecoder)  # graph_specs exports it for sprite decoders only
        return decoder.rebuild(z, first_frame)


# ---------------------------------------------------------------- example inputs and dynamic axes

def video_shape(cfg: ModelConfig, batch: int) -> tuple[int, ...]:
    """[B,T,H,W,3] frames, or [B,T,D] precomputed features (T per clip, the frame count)."""
    return (batch, *cfg.video_shape)


def example_inputs(cfg: ModelConfig, names: Sequence[str], batch: int, seq_len: int,
                   generator: torch.Generator) -> Case:
    """Random inputs of the right dtypes and shapes (lengths vary per row, all >= 1)."""
    out: Case = {}
    for name in names:
        if name == "video":
            out[name] = torch.rand(video_shape(cfg, batch), generator=generator)
        elif name == "tokens":
            out[name] = torch.randint(4, cfg.vocab_size, (batch, seq_len), generator=generator)
        elif name == "lengths":
            out[name] = torch.randint(1, seq_len + 1, (batch,), generator=generator)
            out[name][0] = seq_len  # at least one row uses the whole width
        elif name == "z":
            out[name] = torch.randn(batch, cfg.latent_dim, generator=generator)
        elif name in ("h", "c"):
            out[name] = torch.tanh(torch.randn(1, batch, cfg.hidden, generator=generator))
        elif name == "z_state":
            out[name] = torch.randn(1, batch, cfg.latent_dim, generator=generator)
        elif name == "token":
            out[name] = torch.randint(0, cfg.vocab_size, (batch,), generator=generator)
        elif name == "first_frame":
            out[name] = torch.rand(batch, cfg.height, cfg.width, 3, generator=generator)
        else:
            raise KeyError(name)
    if "tokens" in out:  # right padding with <pad> after each row's length
        pos = torch.arange(seq_len).view(1, -1)
        out["tokens"] = out["tokens"].masked_fill(pos >= out["lengths"].view(-1, 1), 0)
    return out


# The sentence decoder's state between steps: batch on axis 1, as core/search.py reorders it.
BATCH_ON_AXIS_1 = (*DECODER_STATE, *STEP_OUTPUTS[1:])


def export_graph(model: StarModel, spec: GraphSpec, path: Path, opset: int = OPSET) -> onnx.ModelProto:
    """Trace one graph to ONNX (TorchScript exporter), check it, write it to path."""
    cfg = model.cfg
    # Batch 2 and L 5 at trace time: sizes of 1 would let the tracer specialise broadcasting on batch.
    args = spec.example_inputs(cfg, batch=2, seq_len=5, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and LSTM batch-size warnings are expected and harmless here
        # torch types `f` as a path, but the TorchScript exporter (dynamo=False) writes to a file object as well.
        torch.onnx.export(spec.wrapper(model), tuple(args[n] for n in spec.inputs), buf, dynamo=False,  # type: ignore[arg-type]
                          input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=spec.dynamic_axes(cfg), opset_version=opset, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto


# ---------------------------------------------------------------- parity inputs: each graph at its pipeline position

def encoder_cases(key: str) -> Callable[[StarModel, Samples], list[Case]]:
    def cases(model: StarModel, s: Samples) -> list[Case]:
        wanted = {"video": s.video} if has_video(key) else {}
        if has_sentence(key):
            wanted.update(tokens=s.tokens, lengths=s.lengths)
        given = {name: x for name, x in wanted.items() if x is not None}
        if len(given) < len(wanted):  # a sample this encoder needs is missing
            return []
        n = min(len(x) for x in given.values())
        return [{name: x[:n] for name, x in given.items()}]
    return cases


def sentence_init_cases(model: StarModel, s: Samples) -> list[Case]:
    z = s.latents(model)
    return [] if z is None else [{"z": z}]


@torch.no_grad()
def sentence_step_cases(model: StarModel, s: Samples) -> list[Case]:
    """The first step from <bos>, and the second from the first step's best word and state."""
    z = s.latents(model)
    if z is None:
        return []
    h, c, zs = model.sentence_decoder.init_state(z)
    bos = torch.full((len(z),), BOS_ID, dtype=torch.long)
    lp, h2, c2 = model.sentence_decoder.step(bos, h, c, zs)
    return [{"token": bos, "h": h, "c": c, "z_state": zs}, {"token": lp.argmax(-1), "h": h2, "c": c2, "z_state": zs}]


def video_decoder_cases(model: StarModel, s: Samples) -> list[Case]:
    """Sentence-to-video (zeros as the first frame) and video-to-video (the clip's own first frame)."""
    z = s.latents(model)
    if z is None:
        return []
    cases = [{"z": z, "first_frame": torch.zeros(len(z), model.cfg.height, model.cfg.width, 3)}]
    if s.video is not None and s.video.dim() == 5:
        cases.append({"z": z[: len(s.video)], "first_frame": s.video[:, 0]})
    return cases


def video_rebuild_cases(model: StarModel, s: Samples) -> list[Case]:
    """Video-to-video only: the clip's own first frame."""
    return video_decoder_cases(model, s)[1:]


def encoder_spec(key: str) -> GraphSpec:
    return GraphSpec(encoder_io(key), lambda m: EncoderGraph(m, key), encoder_cases(key))


# Every graph of the contract, in export order.
GRAPHS: tuple[GraphSpec, ...] = (
    *(encoder_spec(k) for k in INPUT_KEYS),
    GraphSpec(SENTENCE_INIT_IO, SentenceInitGraph, sentence_init_cases),
    GraphSpec(SENTENCE_STEP_IO, SentenceStepGraph, sentence_step_cases),
    GraphSpec(VIDEO_DECODER_IO, VideoDecoderGraph, video_decoder_cases, present=lambda cfg: cfg.video_output),
    GraphSpec(VIDEO_REBUILD_IO, VideoRebuildGraph, video_rebuild_cases, present=has_rebuild_graph),
)


def graph_specs(cfg: ModelConfig) -> dict[str, GraphSpec]:
    """The graphs this model exports (no video decoder without a video output channel)."""
    return {spec.name: spec for spec in GRAPHS if spec.present(cfg)}
