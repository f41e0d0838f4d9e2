"""manifest.json: what an artifacts version holds, which task needs which graphs, and checksums;
plus the atomic publication of a version directory and of the `latest` pointer."""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from export.graphs import GraphSpec, encoder_name
from model.channels import REGISTRY, ChannelConfig
from model.config import ModelConfig
from service.engine import sha256_file  # one checksum definition for writer and reader

FORMAT = 1
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
LATEST = "latest"




def default_version(checkpoint_sha256: str, now: datetime | None = None) -> str:
    """UTC `YYYYMMDD-HHMMSS` plus the short checkpoint hash: sortable, and says what it came from."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{checkpoint_sha256[:8]}"


_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_version_name(version: str) -> str:
    """One plain directory name, never the pointer file's name."""
    if not _VERSION.fullmatch(version) or version == LATEST:
        raise ValueError(f"bad artifacts version {version!r}: use letters, digits, '.', '_', '-' (not {LATEST!r})")
    return version


def task_graphs(task: ChannelConfig) -> list[str]:
    graphs = [encoder_name(task.input_key)]
    if "sentence" in task.outputs:
        graphs += ["sentence_init", "sentence_step"]
    if "video" in task.outputs:
        graphs.append("video_decoder")
    return graphs


def tasks_for(cfg: ModelConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """(tasks, unsupported_tasks) from the channel registry for this model."""
    tasks: dict[str, Any] = {}
    unsupported: dict[str, str] = {}
    for name, task in REGISTRY.items():
        if "video" in task.outputs and not cfg.video_output:
            unsupported[name] = "the model has no video output channel (video_output=False)"
            continue
        tasks[name] = {"inputs": sorted(task.inputs), "outputs": sorted(task.outputs), "endpoint": task.endpoint,
                       "input_key": task.input_key, "description": task.description, "graphs": task_graphs(task)}
    return tasks, unsupported


def preprocess_contract(cfg: ModelConfig) -> dict[str, Any]:
    if cfg.video_input == "features":
        return {"input": "features", "frames": cfg.frames, "feature_dim": cfg.feature_dim, "layout": "TD"}
    return {"input": "frames", "frames": cfg.frames, "height": cfg.height, "width": cfg.width,
            "layout": "THWC", "value_range": [0.0, 1.0]}


def dims(cfg: ModelConfig) -> dict[str, Any]:
    return {"batch": "dynamic", "tokens_length": "dynamic", "latent_dim": cfg.latent_dim, "hidden": cfg.hidden,
            "vocab_size": cfg.vocab_size, "frames": cfg.frames, "height": cfg.height, "width": cfg.width,
            "max_words": cfg.max_words, "state_layers": 1}


def build_manifest(*, version: str, cfg: ModelConfig, specs: Mapping[str, GraphSpec], directory: Path,
                   checkpoint_sha256: str, opset: int, parity: dict[str, Any], precision: str,
                   quantization: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest of a finished version directory: checksums of every file already in it."""
    tasks, unsupported = tasks_for(cfg)
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": version, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_checkpoint_sha256": checkpoint_sha256, "opset": opset, "precision": precision,
        "model": cfg.to_dict(), "dims": dims(cfg), "preprocess": preprocess_contract(cfg),
        "vocab": VOCAB,
        "graphs": {name: spec.manifest_entry() for name, spec in specs.items()},
        "tasks": tasks, "unsupported_tasks": unsupported, "files": files, "parity": parity,
    }
    if quantization is not None:
        manifest["quantization"] = quantization
    return manifest


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- atomic publication

def staging_dir(root: Path, version: str) -> Path:
    """A hidden temp dir on the same filesystem as root, so the final rename is atomic."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))


def publish(staging: Path, root: Path, version: str) -> Path:
    """Rename the finished staging dir to root/version (never over an existing version)."""
    final = root / version
    if final.exists():
        raise FileExistsError(f"artifacts version {final} already exists; pass another version")
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a service under another user must read it
    os.rename(staging, final)
    return final


def write_latest(root: Path, version: str) -> None:
    """root/latest names `version`, replaced by rename so a reader sees the old name or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=".latest-", dir=root)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(version + "\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
    os.replace(tmp, root / LATEST)
