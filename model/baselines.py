"""The paper's baselines, trained on the same data as the star model, one model per task:

- LSTM: the task's input encoder straight into the output decoder (a deterministic code z = mu, no KL):
  the plain sequence-to-sequence mapping model.
- S2S+VAE: the same single-input mapping through a VAE latent (z sampled, KL term).

Both reuse the star model's encoders and decoders with one input channel fixed on, trained on that
task's output only, so that a difference in the tables comes from the shared latent and the joint
training, not from different layers.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from core import channels
from core.config import Preset, TrainConfig
from model.data.corpus import Corpus
from model.phases import Phase, fixed_masks
from model.train import train

BaselineKind = Literal["lstm", "vae"]
BASELINES: dict[str, str] = {"lstm": "LSTM", "vae": "S2S+VAE"}


def baseline_phase(task: channels.ChannelConfig, steps: int, converge: bool = False) -> Phase:
    """One phase: the task's input configuration only (the other encoder is not run), the task's output only."""
    if not task.outputs:
        raise ValueError(f"{task.name} produces no output medium; baselines are for decoding tasks")
    return Phase(f"{task.name}", steps, 1.0, fixed_masks(task), task.outputs, inputs=task.inputs, converge=converge)


def baseline_preset(preset: Preset, task_name: str) -> Preset:
    """The star model's preset for one baseline: validated on its own task, and without the alignment term, which
    is the star model's own addition (with one input on, it would pull the video's contribution to z towards an
    untrained sentence encoder's)."""
    tc = TrainConfig.from_dict({**preset.train.to_dict(), "lambda_align": 0.0, "val_tasks": (task_name,)})
    return replace(preset, train=tc)


def train_baseline(corpus: Corpus, preset: Preset, task_name: str, kind: BaselineKind, out: str | Path,
                   seed: int = 0, steps: int | None = None, progress: bool = True) -> Path:
    """Train one baseline for one task; the same step budget as the star model's phases unless given (a cap when
    the preset sets patience: the phase then stops early and keeps its best validation's weights)."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; known: {sorted(BASELINES)}")
    task = channels.get(task_name)
    n = steps if steps is not None else preset.train.full_steps + preset.train.partial_steps
    p = baseline_preset(preset, task_name)
    return train(corpus, p, out, seed=seed, progress=progress, phases=[baseline_phase(task, n, p.train.patience > 0)],
                 vae=(kind == "vae"), source={"baseline": kind, "task": task_name})
