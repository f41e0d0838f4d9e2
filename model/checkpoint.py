"""Star-model checkpoints: config, vocabulary and weights in one file of tensors and plain types, replaced
atomically and loaded with weights_only=True, so a checkpoint always says how to rebuild its model (model/star.py)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.config import ModelConfig, TrainConfig
from core.vocab import Vocab
from model.star import StarModel

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, model: StarModel, vocab: Vocab, train_cfg: TrainConfig,
                    extra: dict[str, Any] | None = None, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Config + vocabulary + weights in one file of tensors and plain types (loads with weights_only=True)."""
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "kind": "star",
        "model_config": model.cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "vocab": vocab.to_json(),
        "state_dict": model.state_dict(),
        "extra": json.dumps(extra or {}),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    tmp = Path(str(path) + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a torn checkpoint


@dataclass
class Checkpoint:
    model: StarModel
    vocab: Vocab
    train_config: TrainConfig
    extra: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    sha256: str


def load_checkpoint(path: str | Path) -> Checkpoint:
    raw = Path(path).read_bytes()
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT or payload.get("kind") != "star":
        raise ValueError(f"{path} is not a star-slr star-model checkpoint")
    model = StarModel(ModelConfig.from_dict(payload["model_config"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return Checkpoint(model, Vocab.from_json(payload["vocab"]), TrainConfig.from_dict(payload["train_config"]),
                      json.loads(payload.get("extra", "{}")), payload.get("optimizer"),
                      hashlib.sha256(raw).hexdigest())
