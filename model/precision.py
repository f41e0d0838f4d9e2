"""Training precision: float32, or the training forward under bfloat16 autocast (TrainConfig.precision).

Autocast runs matrix products and convolutions in bfloat16 and keeps reductions, losses and the weights' float32
master copies: the optimiser steps float32 weights, so checkpoints and exported graphs are float32 either way. Under
"bf16" the model's 4-D weights are channels-last too, the layout oneDNN's bfloat16 convolutions run fastest in
(on the quality preset, with avx512_bf16: 1.27x steps/s for autocast alone, 1.37x with channels-last). Validation and
export always run in float32.

bf16 on a CPU needs oneDNN's bfloat16 kernels (AVX-512 or AMX): on an AVX2-only CPU its LSTM has none at all (the
forward fails: "could not create a primitive descriptor"), and what else runs is emulated, slower than float32, so
asking for bf16 there is refused up front.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from core.config import check_choice


def check_precision(precision: str, device: torch.device) -> None:
    """ValueError for an unknown precision, or for bf16 on a CPU without oneDNN's bfloat16 kernels."""
    check_choice("precision", precision)
    if precision == "bf16" and device.type == "cpu" and not native_bf16_cpu():
        raise ValueError(f"precision bf16 needs a CPU with AVX-512 or AMX (oneDNN's bfloat16 kernels; this one has "
                         f"{torch.backends.cpu.get_cpu_capability()}, where the LSTM has no bfloat16 kernel): "
                         "train in fp32")


def native_bf16_cpu() -> bool:
    """Whether oneDNN runs bfloat16 on this CPU (its own check: AVX-512's bw/vl/dq, or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def precisions_on(device: torch.device) -> tuple[str, ...]:
    """The training precisions this device runs."""
    return ("fp32", "bf16") if device.type != "cpu" or native_bf16_cpu() else ("fp32",)


def prepare_module(module: torch.nn.Module, precision: str) -> None:
    """The module's 4-D weights in the memory layout its precision trains fastest in (in place)."""
    if precision == "bf16":
        _layout(module, torch.channels_last)


def standard_layout(module: torch.nn.Module) -> None:
    """The module's weights back in the standard (contiguous) layout, as export and checkpoints expect (in place)."""
    _layout(module, torch.contiguous_format)


def _layout(module: torch.nn.Module, memory_format: torch.memory_format) -> None:
    module.to(memory_format=memory_format)  # type: ignore[call-overload]  # torch's stubs omit the keyword


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """The training forward's context: bfloat16 autocast under "bf16", nothing under "fp32"."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
