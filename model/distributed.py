"""Training past one process (model/train.py under `torchrun`): where a rank stands (Dist), its device, the process
group brought up and torn down, a rank's shard of each global batch, the loss forward DDP wraps, and the parameter
digest that checks the ranks stay in step."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from model.data.dataset import Augment, BatchStream, SplitTensors, make_batch
from model.losses import star_losses
from model.star import StarModel


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a torchrun job; world 1 is a plain single process."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def wants_cuda(device: str) -> bool:
    """Whether --device (auto, cpu or cuda) trains on a GPU."""
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    if wants_cuda(device):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda, but torch sees no usable GPU")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> Dist:
    """torchrun sets WORLD_SIZE, RANK, LOCAL_RANK and the rendezvous variables; without them: one process.
    The backend follows the device: nccl for GPUs (one per local rank), gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world <= 1:
        return Dist(device=dev)
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, dev)


def rank_seed(seed: int, rank: int) -> int:
    """A rank's own seed (augmentation of its own rows); rank 0 keeps the run's."""
    return seed + 1_000_003 * rank


def parameter_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes in order: equal on every rank while DDP keeps them in step."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class ShardStream(BatchStream):
    """One rank's share of the single process's batches. Every rank draws what one process would draw (the
    split's permutation each epoch, the caption pairs, word dropout) from the same seed, and keeps rows
    rank::world of each global batch of `batch_size`: the shards are disjoint and together they are exactly the
    batch one process would train on. Only augmentation, applied to the rank's own rows, draws per rank."""

    def __init__(self, data: SplitTensors, batch_size: int, seed: int, rank: int, world: int,
                 augment: Augment | None = None, word_dropout: float = 0.0) -> None:
        super().__init__(data, batch_size, seed, None, word_dropout)
        if self.batch_size % world:
            raise ValueError(f"global batch {self.batch_size} does not split over {world} processes")
        self.rank, self.world, self.rank_augment = rank, world, augment
        self.augment_gen = torch.Generator().manual_seed(rank_seed(seed, rank))

    def next(self) -> dict[str, Tensor]:
        if self._pos + self.batch_size > len(self._order):
            self._order, self._pos = torch.randperm(len(self.data), generator=self.gen), 0
        idx = self._order[self._pos: self._pos + self.batch_size]
        self._pos += self.batch_size
        batch = make_batch(self.data, idx, self.gen, None, self.word_dropout, rows=slice(self.rank, None, self.world))
        if self.rank_augment is not None and "frames" in batch:
            batch["video"] = self.rank_augment(batch["frames"], self.augment_gen)
        return batch


class LossModule(torch.nn.Module):
    """The training forward (all loss terms of a batch) as one module call: DDP synchronises the gradients
    of what runs inside its wrapper's forward, and StarModel's training path is star_losses, not forward."""

    def __init__(self, model: StarModel, video_z_grad: float = 1.0) -> None:
        super().__init__()
        self.model, self.video_z_grad = model, video_z_grad

    def forward(self, batch: dict[str, Tensor], mask_v: Tensor, mask_s: Tensor, noise: Tensor | None,
                sample: bool, inputs: frozenset[str], outputs: frozenset[str]) -> dict[str, Tensor]:
        return star_losses(self.model, batch, mask_v, mask_s, sample=sample, noise=noise, inputs=inputs,
                           outputs=outputs, video_z_grad=self.video_z_grad)


def close_distributed() -> None:
    """Tear the process group down while the interpreter is whole. Without it (issue 36: 1 run in 17 ended with
    rank 1 killed by SIGABRT, "terminate called without an active exception", after the checkpoint was written),
    the last collective's tensors can still be held by gloo's worker thread when the rank's interpreter finalises:
    releasing a tensor that holds a Python object then needs the GIL of a dying interpreter, and C++ aborts. So:
    every rank waits for the others (no rank tears down while a peer's last send is in flight), frees what Python
    still holds of the run's tensors, and shuts gloo down before returning to the caller."""
    import gc

    import torch.distributed as tdist

    tdist.barrier()
    gc.collect()
    tdist.destroy_process_group()
    gc.collect()  # the process group's Python wrapper, if a cycle held it: its C++ side goes now, not at exit


def distributed_backend(dist: Dist) -> str | None:
    if not dist.active:
        return None
    import torch.distributed

    return torch.distributed.get_backend()
