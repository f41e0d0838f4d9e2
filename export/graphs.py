"""The exported graphs: thin nn.Module wrappers around StarModel, their ONNX signatures, and the export call.

Each wrapper fixes one input configuration or one decoder piece so that TorchScript tracing sees a plain
tensors-in, tensors-out function. The names and shapes here are the artifacts contract (CONTRIBUTING.md).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from core.channels import INPUT_KEYS
from core.config import ModelConfig
from core.manifest import GraphEntry, encoder_graph
from model.star import StarModel

OPSET = 17
ENCODER_OUTPUTS = ("mu", "sigma")


@dataclass(frozen=True)
class GraphSpec:
    """One graph of the contract: its name, file, input and output names."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    def manifest_entry(self) -> GraphEntry:
        return GraphEntry(self.file, list(self.inputs), list(self.outputs))


def encoder_inputs(key: str) -> tuple[str, ...]:
    return (("video",) if "v" in key else ()) + (("tokens", "lengths") if "s" in key else ())


def graph_specs(cfg: ModelConfig) -> dict[str, GraphSpec]:
    """Every graph this model exports, in export order; no video decoder without a video output channel."""
    specs = [GraphSpec(encoder_graph(k), encoder_inputs(k), ENCODER_OUTPUTS) for k in INPUT_KEYS]
    specs += [GraphSpec("sentence_init", ("z",), ("h", "c", "z_state")),
              GraphSpec("sentence_step", ("token", "h", "c", "z_state"), ("logprobs", "h_out", "c_out"))]
    if cfg.video_output:
        specs.append(GraphSpec("video_decoder", ("z", "first_frame"), ("frames",)))
    return {s.name: s for s in specs}


# ---------------------------------------------------------------- wrappers

class EncoderGraph(nn.Module):
    """StarModel.encode for one input subset; the inactive input is None, so its encoder is never traced."""

    def __init__(self, model: StarModel, key: str) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, *args: Tensor) -> tuple[Tensor, Tensor]:
        video = args[0] if "v" in self.key else None
        tokens, lengths = (args[-2], args[-1]) if "s" in self.key else (None, None)
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


def wrapper(model: StarModel, name: str) -> nn.Module:
    if name.startswith("encoder_"):
        return EncoderGraph(model, name.removeprefix("encoder_")).eval()
    modules = {"sentence_init": SentenceInitGraph, "sentence_step": SentenceStepGraph, "video_decoder": VideoDecoderGraph}
    return modules[name](model).eval()


# ---------------------------------------------------------------- example inputs and dynamic axes

def video_shape(cfg: ModelConfig, batch: int) -> tuple[int, ...]:
    """[B,T,H,W,3] frames, or [B,T,D] precomputed features (T per clip, the frame count)."""
    if cfg.video_input == "frames":
        return (batch, cfg.frames, cfg.height, cfg.width, 3)
    return (batch, cfg.frames, cfg.feature_dim)


def example_inputs(cfg: ModelConfig, spec: GraphSpec, batch: int, seq_len: int,
                   generator: torch.Generator) -> dict[str, Tensor]:
    """Random inputs of the right dtypes and shapes for one graph (lengths vary per row, all >= 1)."""
    out: dict[str, Tensor] = {}
    for name in spec.inputs:
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
DECODER_STATE = ("h", "c", "z_state", "h_out", "c_out")


def dynamic_axes(cfg: ModelConfig, spec: GraphSpec) -> dict[str, dict[int, str]]:
    """Batch is dynamic everywhere (axis 1 of the [1,B,Hd] LSTM state); L for tokens; Tf for features."""
    axes: dict[str, dict[int, str]] = {}
    for name in spec.inputs + spec.outputs:
        axes[name] = {1: "B"} if name in DECODER_STATE else {0: "B"}
    if "tokens" in axes:
        axes["tokens"][1] = "L"
    if "video" in axes and cfg.video_input == "features":
        axes["video"][1] = "Tf"
    return axes


def export_graph(model: StarModel, spec: GraphSpec, path: Path, opset: int = OPSET) -> onnx.ModelProto:
    """Trace one graph to ONNX (TorchScript exporter), check it, write it to path."""
    cfg = model.cfg
    # Batch 2 and L 5 at trace time: sizes of 1 would let the tracer specialise broadcasting on batch.
    args = example_inputs(cfg, spec, batch=2, seq_len=5, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and LSTM batch-size warnings are expected and harmless here
        torch.onnx.export(wrapper(model, spec.name), tuple(args[n] for n in spec.inputs), buf, dynamo=False,
                          input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=dynamic_axes(cfg, spec), opset_version=opset, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto
