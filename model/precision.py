"""Training precision: float32, or the training forward under bfloat16 autocast (TrainConfig.precision).

Autocast runs matrix products and convolutions in bfloat16 and keeps reductions, losses and the weights' float32
master copies: the optimiser steps float32 weights, so checkpoints and exported graphs are float32 either way. Under
"bf16" the model's 4-D weights are channels-last too, the layout oneDNN's bfloat16 convolutions run fastest in
(on the quality preset, with avx512_bf16: 1.27x steps/s for autocast alone, 1.37x with channels-last). Validation and
export always run in float32.

A CPU without native bfloat16 (no avx512_bf16 or AMX) emulates it, slower than float32: asking for it there warns.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

from core.config import check_choice


def check_precision(precision: str, device: torch.device) -> None:
    """ValueError for an unknown precision; a warning where bf16 would run emulated (slower than fp32)."""
    check_choice("precision", precision)
    if precision == "bf16" and device.type == "cpu" and not native_bf16_cpu():
        warnings.warn("precision bf16 on a CPU without avx512_bf16 or AMX: bfloat16 is emulated there, slower than "
                      "fp32", RuntimeWarning, stacklevel=2)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 itself (oneDNN's check: avx512_bf16, or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


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
