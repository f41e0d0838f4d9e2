"""export_run: a trained checkpoint -> a checked, atomically published artifacts version.

Order matters: graphs are written into a hidden staging dir, checked by onnx.checker, run against
PyTorch (ExportParityError on any mismatch, staging removed), optionally quantised, and only then get
their manifest; the dir is renamed into place and `latest` moved to it last.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.manifest import VOCAB, Manifest, default_version
from export.graphs import OPSET, GraphSpec, Samples, export_graph, graph_specs
from export.parity import FP32_ATOL, check_parity, compare_graph_sets
from export.publish import new_version_name, publish_version
from export.quantize import MODES, quantize_graph
from model.checkpoint import load_checkpoint
from model.data.corpus import Clip
from model.familiarity import familiarity_calibration
from model.star import StarModel
from model.train import CHECKPOINT


def checkpoint_path(run: str | Path) -> Path:
    """A run dir holding its checkpoint (model/train.py: CHECKPOINT), or the checkpoint file itself."""
    p = Path(run)
    path = p / CHECKPOINT if p.is_dir() else p
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (pass a run dir holding {CHECKPOINT}, or a checkpoint file)")
    return path


def export_run(run: str | Path, out_root: str | Path, version: str | None = None, *,
               sample_video: np.ndarray | None = None, sample_sentences: Sequence[str] | None = None,
               quantize: str | None = None, opset: int = OPSET, atol: float = FP32_ATOL,
               update_latest: bool = True, calibration_clips: Sequence[Clip] | None = None) -> Path:
    """Export the checkpoint of `run` to `out_root/<version>/` and point `out_root/latest` at it.

    sample_video [N,T,H,W,3] float32 in [0,1] and sample_sentences (e.g. from the test split) are the
    real inputs of the parity check, next to random ones. quantize: None, "int8" or "fp16"; the served
    graphs are then the quantised ones, and their cost against fp32 is recorded in the manifest.
    calibration_clips (clips like the training data: the validation split) calibrate the familiarity score
    (core/familiarity.py) into the manifest; without them the served model answers `familiarity: null`.
    Returns the version dir. Raises ExportParityError (nothing written) when ONNX differs from PyTorch.
    """
    if quantize is not None and quantize not in MODES:
        raise ValueError(f"quantize must be None or one of {MODES}, got {quantize!r}")
    ckpt = load_checkpoint(checkpoint_path(run))
    model, cfg = ckpt.model.eval(), ckpt.model.cfg
    root = Path(out_root)
    version = new_version_name(root, version or default_version(ckpt.sha256))
    specs = graph_specs(cfg)
    samples = Samples.build(ckpt.vocab, cfg, sample_video, sample_sentences)

    def build(staging: Path) -> None:
        for spec in specs.values():
            export_graph(model, spec, staging / spec.file, opset)
        parity = check_parity(model, specs, staging, samples, atol)
        quantization = quantize_in_place(staging, specs, quantize, model, samples) if quantize else None
        (staging / VOCAB).write_text(ckpt.vocab.to_json(), encoding="utf-8")
        Manifest.build(version=version, cfg=cfg, graphs={name: spec.manifest_entry() for name, spec in specs.items()},
                       directory=staging, checkpoint_sha256=ckpt.sha256, opset=opset, parity=parity,
                       precision=quantize or "fp32", quantization=quantization,
                       familiarity=familiarity_calibration(model, calibration_clips)
                       ).write(staging)

    return publish_version(root, version, build, update_latest)


def quantize_in_place(directory: Path, specs: dict[str, GraphSpec], mode: str, model: StarModel,
                      samples: Samples) -> dict[str, Any]:
    """Replace every fp32 graph by its `mode` copy; return the accuracy cost measured against fp32."""
    reduced = directory / f".{mode}"
    reduced.mkdir()
    for spec in specs.values():
        quantize_graph(directory / spec.file, reduced / spec.file, mode)
    report = {"mode": mode, **compare_graph_sets(specs, directory, reduced, model, samples)}
    for spec in specs.values():
        (reduced / spec.file).replace(directory / spec.file)
    reduced.rmdir()
    return report
