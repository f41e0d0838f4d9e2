"""The training phases (model/train.py runs them): each phase's steps, learning-rate scale, input masks (full,
channel dropout, one task's), the outputs it trains and the submodule it moves; the paper's schedule from a
TrainConfig, and a time budget split over the phases."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from core import channels
from core.config import TrainConfig

MaskFn = Callable[[int, torch.Generator], tuple[Tensor, Tensor]]
LR_FLOOR = 0.05  # a cosine-scheduled phase's last rate, a share of its first (TrainConfig.lr_schedule)


@dataclass
class Phase:
    name: str
    steps: int
    lr_scale: float
    masks: MaskFn
    outputs: frozenset[str] = field(default_factory=lambda: frozenset(channels.MEDIA))
    trainable: str | None = None  # a submodule's name: only its weights move in this phase (None: all)
    # The inputs its masks ever switch on: an encoder outside them is not run (model/losses.py: star_losses).
    inputs: frozenset[str] = field(default_factory=lambda: frozenset(channels.MEDIA))
    converge: bool = False  # early stopping (TrainConfig.patience) and the best validation's weights kept
    cosine: bool = False  # the rate falls along a half cosine to LR_FLOOR of its start (TrainConfig.lr_schedule)

    def lr(self, base: float, step: int) -> float:
        """The learning rate of this phase's `step` (0-based), from the run's base rate."""
        start = base * self.lr_scale
        if not self.cosine or self.steps <= 1:
            return start
        fall = 0.5 * (1.0 + math.cos(math.pi * step / (self.steps - 1)))  # 1 at the first step, 0 at the last
        return start * (LR_FLOOR + (1.0 - LR_FLOOR) * fall)


def full_masks(b: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.ones(b), torch.ones(b)


MIX_KEYS = ("vs", "v", "s")  # the order of a mix's probabilities (TrainConfig.partial_mix)


def mixed_masks(mix: tuple[float, float, float]) -> MaskFn:
    """Channel dropout: each sample's input configuration (v+s, v, s) drawn with the probabilities `mix`."""
    probs = torch.tensor([float(p) for p in mix])
    has_v = torch.tensor([channels.has_video(k) for k in MIX_KEYS], dtype=torch.float32)
    has_s = torch.tensor([channels.has_sentence(k) for k in MIX_KEYS], dtype=torch.float32)

    def masks(b: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        pick = torch.multinomial(probs, b, replacement=True, generator=gen)
        return has_v[pick], has_s[pick]

    return masks


def fixed_masks(config: channels.ChannelConfig) -> MaskFn:
    """Masks of one task's input configuration (task fine-tuning and the single-task baselines)."""
    v, s = (float(x) for x in config.mask)
    return lambda b, gen: (torch.full((b,), v), torch.full((b,), s))


def phases_for(tc: TrainConfig) -> list[Phase]:
    # Full-model learning runs its steps; partial-model learning runs to convergence when patience is set.
    phases = [Phase("full", tc.full_steps, 1.0, full_masks),
              Phase("partial", tc.partial_steps, tc.partial_lr_scale, mixed_masks(tuple(tc.partial_mix)),
                    converge=tc.patience > 0, cosine=tc.lr_schedule == "cosine")]
    if tc.finetune_steps:
        caption = channels.get("caption")
        phases.append(Phase("finetune", tc.finetune_steps, 0.01, fixed_masks(caption), caption.outputs,
                            inputs=caption.inputs))
    if tc.finetune_video_steps:
        # The paper's task fine-tuning for the two video tasks at once (reconstruct: video in; sentence-to-video:
        # sentence in), the video decoder alone: the encoders and the latent the captions read stay as they are.
        phases.append(Phase("finetune_video", tc.finetune_video_steps, tc.finetune_video_lr_scale,
                            mixed_masks((0.0, 0.5, 0.5)), frozenset({"video"}), trainable="video_decoder"))
    return [p for p in phases if p.steps > 0]


def phase_budgets(phases: list[Phase], total_s: float | None) -> Iterator[float | None]:
    """Split a time budget over phases in proportion to their steps."""
    steps = sum(p.steps for p in phases)
    for p in phases:
        yield None if total_s is None else total_s * p.steps / steps
