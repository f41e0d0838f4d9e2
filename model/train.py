"""The paper's three-phase training of the star model.

1. Full-model learning: every input and output channel on.
2. Partial-model learning: per sample, inputs (v,s), (v,0), (0,s) with probabilities 0.5/0.25/0.25
   (channel-level dropout), every output kept, learning rate / 10.
3. Optional task fine-tuning (video-to-sentence), learning rate / 100.
Adam, gradients clipped to L2 norm 35, L = lv * L_video + ls * L_sentence + lp * KL.
"""
from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from core import channels
from core.config import ModelConfig, Preset, TrainConfig
from core.vocab import Vocab
from model.data.corpus import Clip, Corpus
from model.data.dataset import Augment, BatchStream, SplitTensors, tensorize
from model.star import StarModel, load_checkpoint, save_checkpoint, star_losses, total_loss

CHECKPOINT = "checkpoint.pt"
VAL_CLIPS = 256  # validation clips captioned every eval_every steps
MaskFn = Callable[[int, torch.Generator], tuple[Tensor, Tensor]]


@dataclass
class Phase:
    name: str
    steps: int
    lr_scale: float
    masks: MaskFn
    outputs: frozenset[str] = field(default_factory=lambda: frozenset(channels.MEDIA))


def full_masks(b: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.ones(b), torch.ones(b)


def mixed_masks(mix: tuple[float, float, float]) -> MaskFn:
    """Channel dropout: each sample's input configuration (v+s, v, s) drawn with the probabilities `mix`."""
    keys = ("vs", "v", "s")
    probs = torch.tensor([float(p) for p in mix])
    has_v = torch.tensor(["v" in k for k in keys], dtype=torch.float32)
    has_s = torch.tensor(["s" in k for k in keys], dtype=torch.float32)

    def masks(b: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        pick = torch.multinomial(probs, b, replacement=True, generator=gen)
        return has_v[pick], has_s[pick]

    return masks


# The paper's partial-model learning: inputs (v,s), (v,0), (0,s) with probabilities 0.5 / 0.25 / 0.25.
partial_masks = mixed_masks(tuple(channels.PARTIAL_LEARNING_PROBS[k] for k in ("vs", "v", "s")))


def fixed_masks(config: channels.ChannelConfig) -> MaskFn:
    """Masks of one task's input configuration (task fine-tuning and the single-task baselines)."""
    v, s = (float(x) for x in config.mask)
    return lambda b, gen: (torch.full((b,), v), torch.full((b,), s))


def phases_for(tc: TrainConfig) -> list[Phase]:
    phases = [Phase("full", tc.full_steps, 1.0, full_masks),
              Phase("partial", tc.partial_steps, tc.partial_lr_scale, mixed_masks(tuple(tc.partial_mix)))]
    if tc.finetune_steps:
        caption = channels.get("caption")
        phases.append(Phase("finetune", tc.finetune_steps, 0.01, fixed_masks(caption), caption.outputs))
    return [p for p in phases if p.steps > 0]


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def model_config_for(corpus: Corpus, base: ModelConfig, vocab: Vocab) -> ModelConfig:
    """The preset's sizes, with the data's own shape: frame size and T, or feature width."""
    cfg = ModelConfig.from_dict({**base.to_dict(), "vocab_size": len(vocab), "video_input": corpus.video_input})
    clip = corpus.splits["train"][0]
    if corpus.video_input == "frames":
        cfg.frames, cfg.height, cfg.width = (int(x) for x in clip.frames.shape[:3])
    else:
        cfg.feature_dim = int(np.asarray(clip.features).shape[-1])
        cfg.video_output = clip.frames is not None
    return cfg


def select_losses(losses: dict[str, Tensor], outputs: frozenset[str]) -> dict[str, Tensor]:
    keep = {"kl", "align"} | set(outputs)
    return {k: v for k, v in losses.items() if k in keep}


class Trainer:
    """Runs phases on one model with one optimiser; checkpoints (resumable) and logs as it goes."""

    def __init__(self, model: StarModel, vocab: Vocab, tc: TrainConfig, out: Path, progress: bool = True,
                 vae: bool = True, val_clips: list[Clip] | None = None) -> None:
        self.model, self.vocab, self.tc, self.out, self.progress, self.vae = model, vocab, tc, out, progress, vae
        self.val_clips = val_clips or []
        self.opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
        self.global_step = 0
        self.done_phases: list[str] = []
        self.log_path = out / "train_log.jsonl"

    def kl_weight(self) -> float:
        if not self.vae:
            return 0.0
        ramp = min(1.0, self.global_step / max(1, self.tc.kl_ramp_steps))
        return self.tc.lambda_kl * ramp

    def train_step(self, batch: dict[str, Tensor], phase: Phase, gen: torch.Generator) -> dict[str, float]:
        self.model.train()
        mask_v, mask_s = phase.masks(batch["video"].size(0), gen)
        losses = select_losses(star_losses(self.model, batch, mask_v, mask_s, gen if self.vae else None,
                                           sample=self.vae), phase.outputs)
        loss = total_loss(losses, self.tc, self.kl_weight())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip)
        self.opt.step()
        self.global_step += 1
        return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}

    def run_phase(self, phase: Phase, stream: BatchStream, gen: torch.Generator, budget_s: float | None) -> dict[str, Any]:
        for g in self.opt.param_groups:
            g["lr"] = self.tc.lr * phase.lr_scale
        start, last, step = time.monotonic(), {}, 0
        bar = tqdm(range(phase.steps), desc=f"{phase.name:>8}", disable=not self.progress, dynamic_ncols=True)
        for step in bar:
            last = self.train_step(stream.next(), phase, gen)
            if step % 10 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()})
                self.log({"phase": phase.name, "step": self.global_step, **last})
            if self.tc.eval_every and self.global_step % self.tc.eval_every == 0:
                self.validate(phase.name)
            if budget_s is not None and time.monotonic() - start > budget_s:
                break
        bar.close()
        self.done_phases.append(phase.name)
        summary = {"phase": phase.name, "steps": step + 1, "seconds": round(time.monotonic() - start, 1), **last}
        self.log({"summary": summary})
        self.save()
        return summary

    def validate(self, phase: str) -> dict[str, float]:
        """Caption attribute accuracy on a few validation clips: is the video channel learning yet?"""
        if not self.val_clips or not self.val_clips[0].attributes:
            return {}
        from model.evaluate import attribute_accuracy, caption_clips

        self.model.eval()
        hyps = caption_clips(self.model, self.vocab, self.val_clips)
        acc = attribute_accuracy(hyps, [c.attributes for c in self.val_clips])
        self.log({"phase": phase, "step": self.global_step, "val_caption_attributes": acc})
        if self.progress:
            tqdm.write(f"step {self.global_step}: val caption " + " ".join(f"{k} {v:.2f}" for k, v in acc.items()))
        return acc

    def log(self, record: dict[str, Any]) -> None:
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def save(self) -> None:
        extra = {"global_step": self.global_step, "done_phases": self.done_phases, "vae": self.vae}
        save_checkpoint(self.out / CHECKPOINT, self.model, self.vocab, self.tc, extra, self.opt)

    def restore(self, path: Path) -> None:
        ck = load_checkpoint(path)
        self.model.load_state_dict(ck.model.state_dict())
        if ck.optimizer_state:
            self.opt.load_state_dict(ck.optimizer_state)
        self.global_step = int(ck.extra.get("global_step", 0))
        self.done_phases = list(ck.extra.get("done_phases", []))


def phase_budgets(phases: list[Phase], total_s: float | None) -> Iterator[float | None]:
    """Split a time budget over phases in proportion to their steps."""
    steps = sum(p.steps for p in phases)
    for p in phases:
        yield None if total_s is None else total_s * p.steps / steps


def train(corpus: Corpus, preset: Preset, out: str | Path, seed: int = 0, progress: bool = True,
          resume: bool = False, phases: list[Phase] | None = None, vae: bool = True,
          source: dict[str, Any] | None = None) -> Path:
    """Train the star model on a corpus; returns the checkpoint path. Resumes after the last finished phase."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tc = TrainConfig.from_dict({**preset.train.to_dict(), "seed": seed})
    gen = seed_everything(seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    vocab = Vocab.build(corpus.all_captions("train"))
    cfg = model_config_for(corpus, preset.model, vocab)
    model = StarModel(cfg)
    trainer = Trainer(model, vocab, tc, out, progress, vae, corpus.splits.get("val", [])[:VAL_CLIPS])
    if resume and (out / CHECKPOINT).exists():
        trainer.restore(out / CHECKPOINT)
    vocab.save(out / "vocab.json")
    data = tensorize(corpus.splits["train"], vocab, cfg)
    stream = BatchStream(data, tc.batch_size, seed, augment=augmenter(tc, cfg), word_dropout=tc.word_dropout)
    todo = phases if phases is not None else phases_for(tc)
    (out / "run.json").write_text(json.dumps({
        "corpus": corpus.name, "source": source, "corpus_meta": corpus.meta, "seed": seed, "model_config": cfg.to_dict(),
        "train_config": tc.to_dict(), "phases": [p.name for p in todo], "parameters": count_parameters(model),
    }, indent=2, default=str))
    for phase, budget in zip(todo, phase_budgets(todo, tc.time_budget_s)):
        if phase.name in trainer.done_phases:
            continue
        trainer.run_phase(phase, stream, gen, budget)
    if not todo:
        trainer.save()
    return out / CHECKPOINT


def augmenter(tc: TrainConfig, cfg: ModelConfig) -> Augment | None:
    """The real-encoder degradations, on frame inputs only (features are already past any codec)."""
    if tc.augment_strength <= 0 or cfg.video_input != "frames":
        return None
    from model.data.augment import augment_batch

    return lambda video, gen: augment_batch(video, gen, tc.augment_strength)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate_loss(model: StarModel, data: SplitTensors, tc: TrainConfig, masks: MaskFn, batches: int = 4,
                  seed: int = 0) -> float:
    """Mean total loss (z = mu, no sampling) over a few batches: a cheap progress signal and a test hook."""
    model.eval()
    stream = BatchStream(data, tc.batch_size, seed)
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for _ in range(batches):
            batch = stream.next()
            mv, ms = masks(batch["video"].size(0), gen)
            total += float(total_loss(star_losses(model, batch, mv, ms, sample=False), tc, tc.lambda_kl))
    return total / batches


