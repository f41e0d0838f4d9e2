"""The paper's three-phase training of the star model.

1. Full-model learning: every input and output channel on.
2. Partial-model learning: per sample, inputs (v,s), (v,0), (0,s) with probabilities 0.5/0.25/0.25
   (channel-level dropout), every output kept, learning rate / 10.
3. Optional task fine-tuning (video-to-sentence), learning rate / 100.
Adam, gradients clipped to L2 norm 35, L = lv * L_video + ls * L_sentence + lp * KL.

Past one process: `torchrun --nproc_per_node=N [--nnodes=M ...] --no-python slr train ...` runs this same code
under DistributedDataParallel (gloo on CPU, nccl on GPU). `TrainConfig.batch_size` is then the *global* batch:
every rank takes batch_size / world rows of each step's global batch, DDP averages the gradients, and the
learning rate is the single process's, unchanged (the same global batch makes the same update). Rank 0 alone
writes the log, run.json, the checkpoint and the progress bar; the checkpoint is the plain model's, so it
resumes and exports under any number of processes.
"""
from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from core import channels
from core.config import ModelConfig, Preset, TrainConfig
from core.vocab import Vocab, word_cap
from model.checkpoint import load_checkpoint, save_checkpoint
from model.data.corpus import Clip, Corpus, caption_policy, has_truth
from model.data.dataset import Augment, BatchStream, SplitTensors, split_tensors, tensorize
from model.distributed import (
    Dist,
    LossModule,
    ShardStream,
    close_distributed,
    distributed_backend,
    init_distributed,
    parameter_digest,
)
from model.losses import star_losses, total_loss
from model.phases import MaskFn, Phase, fixed_masks, phase_budgets, phases_for
from model.precision import autocast, check_precision, prepare_module
from model.star import StarModel

CHECKPOINT = "checkpoint.pt"
Score = tuple[float, float]  # a validation: (figure, tie-break), compared as a tuple, higher is better


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def model_config_for(corpus: Corpus, base: ModelConfig, vocab: Vocab) -> ModelConfig:
    """The preset's sizes, with the data's own shape: frame size and T, or feature width; and a sentence cap of at
    least the training split's longest caption plus room (core/vocab.py: word_cap), so none is cut mid-clause."""
    cfg = ModelConfig.from_dict({**base.to_dict(), "vocab_size": len(vocab), "video_input": corpus.video_input})
    # a real corpus's policy (a frame store's meta) may cut its rare run-on captions at a percentile
    cfg.max_words = max(cfg.max_words, word_cap(corpus.all_captions("train"), caption_policy(corpus)[1]))
    clip = corpus.splits["train"][0]
    if corpus.video_input == "frames":
        cfg.frames, cfg.height, cfg.width = (int(x) for x in clip.frames.shape[:3])
    else:
        cfg.feature_dim = int(np.asarray(clip.features).shape[-1])
        cfg.video_output = clip.frames is not None
    return cfg


VIDEO_TERMS = frozenset({"foreground", "pose", "sprite_mask", "anchor"})  # the video decoder's terms beside "video"


def select_losses(losses: dict[str, Tensor], outputs: frozenset[str]) -> dict[str, Tensor]:
    keep = {"kl", "align"} | set(outputs) | (VIDEO_TERMS if "video" in outputs else set())
    return {k: v for k, v in losses.items() if k in keep}


@torch.no_grad()
def loss_figures(model: StarModel, data: SplitTensors, tc: TrainConfig, tasks: tuple[str, ...]) -> dict[str, Any]:
    """Where clips have no attributes to read (real corpora): per task, the loss of its outputs on the validation
    clips (z = mu, the same caption pairs every time), and minus that loss as its figure."""
    model.eval()
    out: dict[str, Any] = {}
    for name in tasks:
        task = channels.get(name)
        if "video" in task.outputs and (model.video_decoder is None or data.frames is None):
            continue
        stream = BatchStream(data, tc.batch_size, 0)
        n = max(1, len(data) // stream.batch_size)
        total = 0.0
        for _ in range(n):
            batch = stream.next()
            mask_v, mask_s = fixed_masks(task)(batch["video"].size(0), stream.gen)
            losses = star_losses(model, batch, mask_v, mask_s, sample=False, inputs=task.inputs, outputs=task.outputs)
            total += float(sum(losses[k] for k in task.outputs if k in losses))
        out[name] = {"loss": total / n, "figure": -total / n}
    return out


@dataclass
class Best:
    """Early stopping of one converging phase: the best validation score yet, its step, the validations since,
    and its weights and optimiser state (restored when the phase ends)."""

    patience: int  # validations without improvement before the phase stops (0: it never stops early)
    min_steps: int  # the phase's steps before it may stop
    score: Score | None = None
    step: int = 0
    since: int = 0
    state: tuple[dict[str, Any], dict[str, Any]] | None = None

    def update(self, score: Score, step: int) -> bool:
        """True if `score` beats the best yet (strictly: a tie is no improvement)."""
        if self.score is None or score > self.score:
            self.score, self.step, self.since = score, step, 0
            return True
        self.since += 1
        return False

    def exhausted(self, steps_done: int) -> bool:
        return 0 < self.patience <= self.since and steps_done >= self.min_steps

    def keep(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        self.state = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))

    def restore(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        if self.state is not None:
            model.load_state_dict(self.state[0])
            opt.load_state_dict(self.state[1])


class Trainer:
    """Runs phases on one model with one optimiser; checkpoints (resumable) and logs as it goes."""

    def __init__(self, model: StarModel, vocab: Vocab, tc: TrainConfig, out: Path, progress: bool = True,
                 vae: bool = True, val_clips: list[Clip] | None = None, dist: Dist | None = None) -> None:
        self.model, self.vocab, self.tc, self.out, self.vae = model, vocab, tc, out, vae
        self.dist = dist or Dist()
        self.progress = progress and self.dist.main
        self.val_clips = val_clips or []
        self.model.to(self.dist.device)
        tc.check_choices()
        check_precision(tc.precision, self.dist.device)
        prepare_module(self.model, tc.precision)
        self.opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
        self.global_step = 0
        self.done_phases: list[str] = []
        self.best_steps: dict[str, int] = {}  # converging phase -> the step whose weights it kept
        self._val_data: SplitTensors | None = None  # validation clips as tensors (loss figures), made once
        self.log_path = out / "train_log.jsonl"
        self.forward: torch.nn.Module = LossModule(model, tc.video_z_grad)

    def distribute(self, find_unused_parameters: bool) -> None:
        """Wrap the training forward in DDP (after restore: DDP starts every rank from rank 0's weights).
        On GPUs, batch norm is synchronised over the ranks, so its statistics are the global batch's as in one
        process; gloo has no SyncBatchNorm, so on the CPU each rank normalises over its own shard."""
        d = self.dist
        if not d.active:
            return
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        # A resume must find the same checkpoint on every rank (a shared runs volume across nodes).
        states: list[Any] = [None] * d.world
        dist.all_gather_object(states, (self.global_step, self.done_phases))
        if any(s != states[0] for s in states):
            raise RuntimeError(f"ranks resumed from different checkpoints (step, phases): {states}; "
                               "the run folder must be one shared volume")
        if d.device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.forward = DDP(LossModule(self.model, self.tc.video_z_grad),
                           device_ids=[d.local_rank] if d.device.type == "cuda" else None,
                           find_unused_parameters=find_unused_parameters)

    def kl_weight(self) -> float:
        if not self.vae:
            return 0.0
        ramp = min(1.0, self.global_step / max(1, self.tc.kl_ramp_steps))
        return self.tc.lambda_kl * ramp

    def train_step(self, batch: dict[str, Tensor], phase: Phase, gen: torch.Generator) -> dict[str, Tensor]:
        """One optimiser step. Channel masks and the VAE's noise are drawn on the CPU for the global batch, as
        one process draws them, and each rank keeps its rows (the same rows as its shard of the batch)."""
        self.model.train()
        d = self.dist
        if d.device.type != "cpu":
            batch = {k: v.to(d.device, non_blocking=True) for k, v in batch.items()}
        n = batch["video"].size(0) * d.world
        mine = slice(d.rank, None, d.world)
        mask_v, mask_s = (m[mine].to(d.device) for m in phase.masks(n, gen))
        noise = torch.randn((n, self.model.cfg.latent_dim), generator=gen)[mine].to(d.device) if self.vae else None
        with autocast(self.tc.precision, d.device):
            losses = select_losses(self.forward(batch, mask_v, mask_s, noise, self.vae, phase.inputs, phase.outputs),
                                   phase.outputs)
            loss = total_loss(losses, self.tc, self.kl_weight())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: the gradients are averaged over the ranks here
        if phase.trainable:  # after the all-reduce, so every rank drops the same gradients
            for name, param in self.model.named_parameters():
                if not name.startswith(phase.trainable + "."):
                    param.grad = None
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip)
        self.opt.step()
        self.global_step += 1
        return {"loss": loss.detach(), **{k: v.detach() for k, v in losses.items()}}

    def global_mean(self, values: dict[str, Tensor]) -> dict[str, float]:
        """The step's losses over the global batch: each rank's shard mean, averaged (shards are equal)."""
        names = sorted(values)
        flat = torch.stack([values[k].float() for k in names])
        if self.dist.active:
            import torch.distributed as dist

            dist.all_reduce(flat)
            flat /= self.dist.world
        return dict(zip(names, flat.tolist()))

    def agree(self, flag: bool) -> bool:
        """True on every rank if it is on any (rank 0 alone validates): every rank stops and keeps weights at the
        same step (a rank left alone in a collective would hang)."""
        if not self.dist.active:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.dist.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def converged(self, best: Best, score: Score | None, steps_done: int) -> bool:
        """After a validation of a converging phase: keep the weights if they are the best yet; True to stop."""
        improved = score is not None and best.update(score, self.global_step)
        if self.agree(improved):
            best.keep(self.model, self.opt)
        return self.agree(score is not None and best.exhausted(steps_done))

    def run_phase(self, phase: Phase, stream: BatchStream, gen: torch.Generator,
                  budget_s: float | None) -> dict[str, Any]:
        start, last, step, stopped = time.monotonic(), {}, 0, False
        best = Best(self.tc.patience, self.tc.min_steps) if phase.converge and self.tc.eval_every else None
        bar = tqdm(range(phase.steps), desc=f"{phase.name:>8}", disable=not self.progress, dynamic_ncols=True)
        for step in bar:
            for g in self.opt.param_groups:
                g["lr"] = phase.lr(self.tc.lr, step)
            losses = self.train_step(stream.next(), phase, gen)
            last_step = step == phase.steps - 1
            if step % 10 == 0 or last_step:
                last = self.global_mean(losses)
            if step % 10 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()})
                self.log({"phase": phase.name, "step": self.global_step, **last})
            # A converging phase validates its last step too: the weights at the cap compete for the best.
            if self.tc.eval_every and (self.global_step % self.tc.eval_every == 0 or (last_step and best is not None)):
                score = self.validate(phase.name)
                stopped = best is not None and self.converged(best, score, step + 1)
            if stopped or (budget_s is not None and self.agree(time.monotonic() - start > budget_s)):
                if not last_step:
                    last = self.global_mean(losses)
                break
        bar.close()
        summary = {"phase": phase.name, "steps": step + 1, "global_step": self.global_step,
                   "seconds": round(time.monotonic() - start, 1), **last}
        if best is not None:  # the weights of the best validation are the phase's result (the step count runs on)
            best.restore(self.model, self.opt)
            self.best_steps[phase.name] = best.step
            summary.update(best_step=best.step, best_figure=best.score[0] if best.score else None,
                           stopped_early=stopped and step + 1 < phase.steps)  # patience spent before the cap
        self.done_phases.append(phase.name)
        self.log({"summary": summary})
        self.check_in_step(phase.name)
        self.save()
        return summary

    def check_in_step(self, phase: str) -> None:
        """After each phase: every rank's parameters hash alike, or the run stops (DDP lost the ranks' step)."""
        if not self.dist.active:
            return
        import torch.distributed as dist

        digests: list[str | None] = [None] * self.dist.world
        dist.all_gather_object(digests, parameter_digest(self.model))
        self.log({"phase": phase, "step": self.global_step, "world": self.dist.world, "param_sha256": digests})
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks out of step after {phase}: parameter digests {digests}")

    def validate(self, phase: str) -> Score | None:
        """The val_tasks' figures on the validation clips, logged; returns the score (the mean figure over the
        tasks; the tie-break: minus the mean video MSE, which moves while the probe still reads nothing), or None
        where nothing is validated (no validation clips, not rank 0)."""
        if not self.dist.main or not self.val_clips:
            return None
        # inference.py feeds CPU tensors: a copy on the CPU where the model trains on a GPU
        model = self.model if self.dist.device.type == "cpu" else copy.deepcopy(self.model).cpu()
        figures = self.figures(model)
        if not figures:
            return None
        score = (float(np.mean([f["figure"] for f in figures.values()])),
                 -float(np.mean([f["MSE"] for f in figures.values() if "MSE" in f] or [0.0])))
        record = {"phase": phase, "step": self.global_step, "val": figures, "val_figure": score[0]}
        if "caption" in figures:  # the key of the logs before the figures (readers of older runs)
            record["val_caption_attributes"] = {k: v for k, v in figures["caption"].items() if k != "figure"}
        self.log(record)
        if self.progress:
            shown = " ".join(f"{t} {f['figure']:.2f}" for t, f in figures.items())
            tqdm.write(f"step {self.global_step}: val {shown}")
        return score

    def figures(self, model: StarModel) -> dict[str, dict[str, float]]:
        """Attribute and probe figures on synthetic clips; the negative loss where clips have no attributes."""
        if has_truth(self.val_clips[0]):
            from model.evaluate import validation_figures

            return validation_figures(model, self.vocab, self.val_clips, self.tc.val_tasks)
        if self._val_data is None:
            self._val_data = tensorize(self.val_clips, self.vocab, model.cfg)
        return loss_figures(model, self._val_data, self.tc, self.tc.val_tasks)

    def log(self, record: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def save(self) -> None:
        """Rank 0 writes; the others wait, so that no rank reads (resume, export) a checkpoint half-written."""
        if self.dist.main:
            extra = {"global_step": self.global_step, "done_phases": self.done_phases, "vae": self.vae,
                     "world": self.dist.world, "best_steps": self.best_steps}
            save_checkpoint(self.out / CHECKPOINT, self.model, self.vocab, self.tc, extra, self.opt)
        if self.dist.active:
            import torch.distributed as dist

            dist.barrier()

    def restore(self, path: Path) -> None:
        """Every rank reads the same checkpoint (whatever the number of processes that wrote it)."""
        ck = load_checkpoint(path)
        self.model.load_state_dict(ck.model.state_dict())
        if ck.optimizer_state:
            self.opt.load_state_dict(ck.optimizer_state)
        self.global_step = int(ck.extra.get("global_step", 0))
        self.done_phases = list(ck.extra.get("done_phases", []))
        self.best_steps = dict(ck.extra.get("best_steps", {}))


def train(corpus: Corpus, preset: Preset, out: str | Path, seed: int = 0, progress: bool = True,
          resume: bool = False, phases: list[Phase] | None = None, vae: bool = True,
          source: dict[str, Any] | None = None, device: str = "auto", again: tuple[str, ...] = ()) -> Path:
    """Train the star model on a corpus; returns the checkpoint path. Resumes after the last finished phase;
    the phases named in `again` run once more from the checkpoint's weights (e.g. the video decoder's own phase with
    new terms, the encoders and the latent the captions read untouched). Under torchrun, every rank runs this with
    the same arguments (see the module's docstring)."""
    out = Path(out)
    dist = init_distributed(device)
    if not dist.active:
        return _train(corpus, preset, out, seed, progress, resume, phases, vae, source, dist, again)
    checkpoint = _train(corpus, preset, out, seed, progress, resume, phases, vae, source, dist, again)
    close_distributed()  # only after a run every rank finished: on an error, tearing down could wait on a peer
    return checkpoint


def _train(corpus: Corpus, preset: Preset, out: Path, seed: int, progress: bool, resume: bool,
           phases: list[Phase] | None, vae: bool, source: dict[str, Any] | None, dist: Dist,
           again: tuple[str, ...] = ()) -> Path:
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
    tc = TrainConfig.from_dict({**preset.train.to_dict(), "seed": seed})
    gen = seed_everything(seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    vocab = Vocab.build(corpus.all_captions("train"), min_count=caption_policy(corpus)[0])
    cfg = model_config_for(corpus, preset.model, vocab)
    if dist.main and progress:
        tqdm.write(caption_note(corpus, vocab, cfg, preset.model.max_words > 0))
    model = StarModel(cfg)
    trainer = Trainer(model, vocab, tc, out, progress, vae, corpus.splits.get("val", [])[:tc.val_clips], dist)
    if resume and (out / CHECKPOINT).exists():
        trainer.restore(out / CHECKPOINT)
    todo = phases if phases is not None else phases_for(tc)
    # Phases that keep only some inputs or outputs (task fine-tuning, baselines) leave layers without gradients.
    media = frozenset(channels.MEDIA)
    trainer.distribute(any(p.outputs != media or p.inputs != media for p in todo))
    data = split_tensors(corpus, "train", vocab, cfg)  # a frame store's split stays memory-mapped
    augment = augmenter(tc, cfg)
    if dist.active:
        stream: BatchStream = ShardStream(data, tc.batch_size, seed, dist.rank, dist.world, augment, tc.word_dropout)
    else:
        stream = BatchStream(data, tc.batch_size, seed, augment=augment, word_dropout=tc.word_dropout)
    if dist.main:
        vocab.save(out / "vocab.json")
        (out / "run.json").write_text(json.dumps({
            "corpus": corpus.name, "source": source, "corpus_meta": corpus.meta, "seed": seed,
            "model_config": cfg.to_dict(), "train_config": tc.to_dict(), "phases": [p.name for p in todo],
            "parameters": count_parameters(model),
            "distributed": {"world": dist.world, "backend": distributed_backend(dist), "device": str(dist.device),
                            "global_batch": stream.batch_size, "per_rank_batch": stream.batch_size // dist.world,
                            "lr": tc.lr},
        }, indent=2, default=str))
    for phase, budget in zip(todo, phase_budgets(todo, tc.time_budget_s)):
        if phase.name in trainer.done_phases and phase.name not in again:
            continue
        trainer.run_phase(phase, stream, gen, budget)
    if not todo:
        trainer.save()
    return out / CHECKPOINT


def caption_note(corpus: Corpus, vocab: Vocab, cfg: ModelConfig, preset_cap: bool) -> str:
    """The caption policy of a run, in one line: vocabulary size and minimum count, the word cap and its source."""
    min_count, percentile = caption_policy(corpus)
    cap = "the preset's" if preset_cap else f"the {percentile:g}th percentile of caption lengths + room"
    return (f"captions: {len(vocab)} words (seen at least {min_count}x in the training split, others read as <unk>); "
            f"at most {cfg.max_words} words ({cap})")


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


