"""The artifacts contract as one typed model: `<root>/<version>/manifest.json`, written by export, read by the
engine. What a version holds, which task needs which graphs, the preprocessing the model expects, and a
sha256 of every file; plus the `latest` pointer and version names. Numpy-free, torch-free, web-free.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.channels import REGISTRY, ChannelConfig
from core.config import ModelConfig
from core.graph_contract import SENTENCE_GRAPHS, VIDEO_DECODER, encoder_graph

if TYPE_CHECKING:  # numpy comes with the calibration only when a manifest carries one (from_dict imports it then)
    from core.familiarity import Calibration

FORMAT = 1
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
LATEST = "latest"

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ArtifactError(Exception):
    """The artifacts are missing, incomplete or do not match their manifest."""


# ---------------------------------------------------------------- names, checksums, the `latest` pointer

def sha256_file(path: Path) -> str:
    """One checksum definition for the writer (export) and the reader (engine)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_version(checkpoint_sha256: str, now: datetime | None = None) -> str:
    """UTC `YYYYMMDD-HHMMSS` plus the short checkpoint hash: sortable, and says what it came from."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{checkpoint_sha256[:8]}"


def check_version_name(version: str) -> str:
    """One plain directory name, never the pointer file's name."""
    if not _VERSION.fullmatch(version) or version == LATEST:
        raise ValueError(f"bad artifacts version {version!r}: use letters, digits, '.', '_', '-' (not {LATEST!r})")
    return version


def resolve_version_dir(root: Path, version: str | None) -> Path:
    """root/version, or the version named by root/latest (version None or "latest"); a version dir itself
    is accepted as root. Exports never name a version "latest", so the word is free to mean the pointer."""
    if version is None or version == LATEST:
        latest = root / LATEST
        if latest.is_file():
            version = latest.read_text(encoding="utf-8").strip()
        elif (root / MANIFEST).is_file():
            return root
        else:
            raise ArtifactError(f"no {latest} pointer and no {MANIFEST} in {root}: export a model first")
    if not version or "/" in version or version.startswith("."):
        raise ArtifactError(f"bad artifacts version name {version!r}")
    directory = root / version
    if not directory.is_dir():
        raise ArtifactError(f"artifacts version {directory} does not exist")
    return directory


# ---------------------------------------------------------------- the typed manifest

@dataclass(frozen=True)
class GraphEntry:
    file: str
    inputs: list[str]
    outputs: list[str]


@dataclass(frozen=True)
class TaskEntry:
    inputs: list[str]
    outputs: list[str]
    endpoint: str
    input_key: str
    description: str
    graphs: list[str]


def task_graphs(task: ChannelConfig) -> list[str]:
    graphs = [encoder_graph(task.input_key)]
    if "sentence" in task.outputs:
        graphs += SENTENCE_GRAPHS
    if "video" in task.outputs:
        graphs.append(VIDEO_DECODER)
    return graphs


def tasks_for(cfg: ModelConfig) -> tuple[dict[str, TaskEntry], dict[str, str]]:
    """(tasks, unsupported_tasks) from the channel registry for this model."""
    tasks: dict[str, TaskEntry] = {}
    unsupported: dict[str, str] = {}
    for name, task in REGISTRY.items():
        if "video" in task.outputs and not cfg.video_output:
            unsupported[name] = "the model has no video output channel (video_output=False)"
            continue
        tasks[name] = TaskEntry(sorted(task.inputs), sorted(task.outputs), task.endpoint, task.input_key,
                                task.description, task_graphs(task))
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


def _calibration(d: Any) -> Calibration | None:
    """The manifest's `familiarity` entry, typed; a calibration of another layout fails here, loudly (ValueError:
    `slr calibrate` rewrites it, reading the manifest with drop_calibration)."""
    if d is None:
        return None
    from core.familiarity import Calibration

    return Calibration.from_dict(d)


@dataclass(frozen=True)
class Manifest:
    """manifest.json, field for field (CONTRIBUTING.md, "The artifacts contract")."""

    version: str
    created: str
    source_checkpoint_sha256: str
    opset: int
    precision: str
    model: ModelConfig
    graphs: dict[str, GraphEntry]
    tasks: dict[str, TaskEntry]
    files: dict[str, str]
    parity: dict[str, Any]
    unsupported_tasks: dict[str, str] = field(default_factory=dict)
    vocab: str = VOCAB
    quantization: dict[str, Any] | None = None
    # The familiarity calibration (core/familiarity.py); None: the model answers familiarity null.
    familiarity: Calibration | None = None
    # The release gate's record when the version was made `latest` (export/gate.py): the figures against the
    # version before it, and the reason where a regression was let through.
    release: dict[str, Any] | None = None
    # Where the video decoder was refitted on an earlier version's frozen encoders (export/refit.py): that version,
    # the steps and the validation figures.
    refit: dict[str, Any] | None = None
    format: int = FORMAT

    @property
    def dims(self) -> dict[str, Any]:
        return dims(self.model)

    @property
    def preprocess(self) -> dict[str, Any]:
        return preprocess_contract(self.model)

    @classmethod
    def build(cls, *, version: str, cfg: ModelConfig, graphs: dict[str, GraphEntry], directory: Path,
              checkpoint_sha256: str, opset: int, parity: dict[str, Any], precision: str = "fp32",
              quantization: dict[str, Any] | None = None, familiarity: Calibration | None = None) -> "Manifest":
        """The manifest of a finished version directory: checksums of every file already in it."""
        tasks, unsupported = tasks_for(cfg)
        files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
        return cls(version=version, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   source_checkpoint_sha256=checkpoint_sha256, opset=opset, precision=precision, model=cfg,
                   graphs=graphs, tasks=tasks, files=files, parity=parity, unsupported_tasks=unsupported,
                   quantization=quantization, familiarity=familiarity)

    # -- JSON ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": self.format, "version": self.version, "created": self.created,
            "source_checkpoint_sha256": self.source_checkpoint_sha256, "opset": self.opset,
            "precision": self.precision, "model": self.model.to_dict(), "dims": self.dims,
            "preprocess": self.preprocess, "vocab": self.vocab,
            "graphs": {k: asdict(g) for k, g in self.graphs.items()},
            "tasks": {k: asdict(t) for k, t in self.tasks.items()},
            "unsupported_tasks": self.unsupported_tasks, "files": self.files, "parity": self.parity,
        }
        if self.quantization is not None:
            d["quantization"] = self.quantization
        if self.familiarity is not None:
            d["familiarity"] = self.familiarity.to_dict()
        if self.release is not None:
            d["release"] = self.release
        if self.refit is not None:
            d["refit"] = self.refit
        return d

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: Any, where: str = MANIFEST, drop_calibration: bool = False) -> "Manifest":
        """drop_calibration: read the manifest without its familiarity entry (recalibration replaces it, whatever
        its layout)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else None
            raise ArtifactError(f"{where}: unsupported manifest format {found!r}")
        for key in ("version", "model", "graphs", "tasks", "files"):
            if key not in d:
                raise ArtifactError(f"{where} has no {key!r}")
        try:
            return cls(
                version=str(d["version"]), created=str(d.get("created", "")),
                source_checkpoint_sha256=str(d.get("source_checkpoint_sha256", "")), opset=int(d.get("opset", 0)),
                precision=str(d.get("precision", "fp32")), model=ModelConfig.from_dict(d["model"]),
                graphs={k: GraphEntry(**g) for k, g in d["graphs"].items()},
                tasks={k: TaskEntry(**t) for k, t in d["tasks"].items()},
                files={str(k): str(v) for k, v in d["files"].items()}, parity=dict(d.get("parity", {})),
                unsupported_tasks=dict(d.get("unsupported_tasks", {})), vocab=str(d.get("vocab", VOCAB)),
                quantization=d.get("quantization"), release=d.get("release"), refit=d.get("refit"),
                familiarity=None if drop_calibration else _calibration(d.get("familiarity")))
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            raise ArtifactError(f"{where} does not match the artifacts contract: {e}") from None

    @classmethod
    def read(cls, directory: Path, drop_calibration: bool = False) -> "Manifest":
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"{path} is missing") from None
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path} is unreadable: {e}") from None
        return cls.from_dict(data, str(path), drop_calibration)

    def verify_files(self, directory: Path) -> None:
        """Every graph and the vocabulary must be listed with a checksum, exist, and match it."""
        for name in [g.file for g in self.graphs.values()] + [self.vocab]:
            if name not in self.files:
                raise ArtifactError(f"{name} has no checksum in {directory / MANIFEST}")
        for name, expected in self.files.items():
            path = directory / name
            if not path.is_file():
                raise ArtifactError(f"{path} is missing")
            actual = sha256_file(path)
            if actual != expected:
                raise ArtifactError(f"{path}: sha256 {actual[:12]}... does not match the manifest's {expected[:12]}...")
