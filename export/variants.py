"""A cheaper copy of an exported version, without its checkpoint: one graph (the video encoder by default) replaced
by a variant (export/quantize.py: VARIANTS), published beside its source as a new version.

    derive_version(root, "quality-v20", "quality-v20-int8", "int8-static", calibration={"video": clips})

Every other file is copied unchanged; the manifest is the source's with the new version name, the new checksums, a
`precision` naming what changed and a `quantization` entry that records the source version and what the variant
costs against it (max |difference| of the graph's outputs on the given clips and random inputs, and how many greedy
captions stay the same). A variant further than its tolerance from the source raises ExportParityError and publishes
nothing. Torch-free: the source graphs are the reference.

Whether a variant keeps the captions is `caption_falls`: each caption figure (a share of clips captioned right) of the
variant against its source's on the same clips, by a one-sided exact McNemar test at core.stats.ALPHA, so that a few
clips flipping either way (3 of 596 is 0.5 points) is noise and a fall that chance would rarely give is a loss
(`python -m bench.encoder_variants` applies it to the test split and the outside set).
"""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from core.graph_contract import ENCODER_V, SENTENCE_INIT, SENTENCE_STEP, decode_length
from core.manifest import MANIFEST, Manifest, resolve_version_dir, sha256_file
from core.search import decode_with_graphs
from core.stats import ALPHA, paired
from export.parity import ExportParityError
from export.publish import new_version_name, publish_version
from export.quantize import VARIANTS, quantize_graph

# The largest |difference| from the source graph a variant may show on any output (mu and sigma of a latent whose
# prior is N(0, 1)): fp32 rewrites agree to rounding; reduced precision moves the latent by a small fraction of its
# unit scale (measured on quality-v7's encoder_v: int8-static 0.02-0.05, fp16 under 0.01).
TOLERANCE = {"optimized": 1e-4, "fp16": 0.05, "int8": 0.25, "int8-static": 0.25}
VIDEO_GRAPHS = (ENCODER_V,)  # graphs whose only input is `video`: the ones calibration clips can feed


@dataclasses.dataclass(frozen=True)
class PairedFigure:
    """One caption figure of a variant against its source on the same clips: clips it got wrong that the source got
    right (lost), the reverse (won), the change in points and the one-sided exact McNemar p-value of a fall."""

    name: str
    clips: int
    lost: int
    won: int
    p_fall: float

    @property
    def delta_points(self) -> float:
        return 100.0 * (self.won - self.lost) / self.clips if self.clips else 0.0

    def falls(self, alpha: float = ALPHA) -> bool:
        return self.p_fall < alpha

    def text(self) -> str:
        return (f"{self.name} {self.delta_points:+.2f} points ({self.lost} clips lost, {self.won} won of "
                f"{self.clips}; p {self.p_fall:.3g})")


def paired_figures(source: Mapping[str, Sequence[bool]], variant: Mapping[str, Sequence[bool]]) -> list[PairedFigure]:
    """Per figure (its name -> whether each clip was captioned right, the same clips in the same order on both
    sides) the variant's change against the source's, with the p-value that it fell."""
    missing = sorted(set(source) ^ set(variant))
    if missing:
        raise ValueError(f"figures on one side only: {missing}")
    out = []
    for name, old in source.items():
        pair = paired(old, variant[name])
        out.append(PairedFigure(name, pair.n, pair.lost, pair.won, pair.p_fall))
    return out


def caption_falls(source: Mapping[str, Sequence[bool]], variant: Mapping[str, Sequence[bool]],
                  alpha: float = ALPHA) -> list[PairedFigure]:
    """The figures on which the variant is worse than its source beyond noise: one-sided exact McNemar p < alpha
    (95% by default). Empty: the variant keeps every caption figure."""
    return [f for f in paired_figures(source, variant) if f.falls(alpha)]


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compare_encoders(ref_dir: Path, new_dir: Path, manifest: Manifest, graph: str, video: np.ndarray,
                     seed: int = 0) -> dict[str, Any]:
    """A video encoder variant against its source: max |difference| of mu and sigma on `video` and on random clips
    (batches of 1 and 3), and the share of greedy captions (the source's sentence graphs) that stay the same."""
    entry = manifest.graphs[graph]
    ref, new = _session(ref_dir / entry.file), _session(new_dir / entry.file)
    shape = video.shape[1:]
    rng = np.random.default_rng(seed)
    cases = [rng.random((3, *shape), dtype=np.float32), rng.random((1, *shape), dtype=np.float32)]
    cases += [video[i: i + 32] for i in range(0, len(video), 32)]
    worst = 0.0
    mus: list[tuple[np.ndarray, np.ndarray]] = []
    for x in cases:
        a, b = ref.run(entry.outputs, {"video": x}), new.run(entry.outputs, {"video": x})
        if any(u.shape != v.shape for u, v in zip(a, b)):
            raise ExportParityError(f"{graph}: output shapes differ from the source graph's")
        worst = max(worst, *(float(np.max(np.abs(u - v))) for u, v in zip(a, b)))
        mus.append((a[0], b[0]))
    report: dict[str, Any] = {"max_abs_diff_vs_source": worst, "clips_compared": int(len(video))}
    if SENTENCE_INIT in manifest.graphs and len(video):
        init = _session(ref_dir / manifest.graphs[SENTENCE_INIT].file)
        step = _session(ref_dir / manifest.graphs[SENTENCE_STEP].file)
        max_len = decode_length(manifest.model.max_words)
        same = total = 0
        for a, b in mus[2:]:
            ca, cb = decode_with_graphs(init, step, a, 1, max_len), decode_with_graphs(init, step, b, 1, max_len)
            same += sum(x == y for x, y in zip(ca, cb, strict=True))
            total += len(ca)
        report["greedy_captions_equal_fraction"] = same / total
    return report


def derive_version(root: str | Path, source: str | None, version: str, variant: str, *,
                   graphs: tuple[str, ...] = VIDEO_GRAPHS, calibration: np.ndarray | None = None,
                   sample_video: np.ndarray | None = None, tolerance: float | None = None,
                   update_latest: bool = False) -> Path:
    """Publish root/version: root/source (None: `latest`) with each of `graphs` replaced by its `variant`.

    calibration [N,T,H,W,3] float32 in [0,1]: clips like the training data (the training split), needed by
    "int8-static". sample_video [N,T,H,W,3]: the clips the variant is compared on (as well as random ones).
    Returns the new version dir; `latest` moves to it only with update_latest. Raises ExportParityError (nothing
    published) when a graph's outputs differ from the source's by more than `tolerance` (default TOLERANCE)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    root = Path(root)
    src = resolve_version_dir(root, source)
    manifest = Manifest.read(src)
    manifest.verify_files(src)
    version = new_version_name(root, version)
    unknown = [g for g in graphs if g not in manifest.graphs]
    if unknown or not graphs:
        raise ValueError(f"no graph {unknown or graphs} in {src}; it has {sorted(manifest.graphs)}")
    if any(g not in VIDEO_GRAPHS for g in graphs):
        raise ValueError(f"variants are made of the video-only graphs {VIDEO_GRAPHS}, not {list(graphs)}")
    if manifest.model.video_input != "frames":
        raise ValueError("encoder variants need a model that reads frames")
    if variant == "int8-static" and (calibration is None or len(calibration) == 0):
        raise ValueError("int8-static needs calibration clips (the training split)")
    tolerance = TOLERANCE[variant] if tolerance is None else tolerance
    cfg = manifest.model
    shape = (cfg.frames, cfg.height, cfg.width, 3)
    if sample_video is None:
        sample_video = np.zeros((0, *shape), dtype=np.float32)
    for name, clips in (("calibration", calibration), ("sample_video", sample_video)):
        if clips is not None and tuple(clips.shape[1:]) != shape:
            raise ValueError(f"{name} clips must be [N, {', '.join(map(str, shape))}], got {list(clips.shape)}")

    def build(staging: Path) -> None:
        for name in manifest.files:
            shutil.copy2(src / name, staging / name)
        report: dict[str, Any] = {"mode": variant, "graphs": list(graphs), "source_version": manifest.version,
                                  "source_precision": manifest.precision,
                                  "source_files": {manifest.graphs[g].file: manifest.files[manifest.graphs[g].file]
                                                   for g in graphs},
                                  "tolerance": tolerance}
        if manifest.quantization is not None:
            report["source_quantization"] = manifest.quantization
        if calibration is not None and variant == "int8-static":  # required (checked above) for int8-static
            report["calibration_clips"] = int(len(calibration))
        for g in graphs:
            file = manifest.graphs[g].file
            target = staging / file
            target.unlink()
            feed = {"video": np.ascontiguousarray(calibration, dtype=np.float32)} if calibration is not None else None
            quantize_graph(src / file, target, variant, feed)
            report[g] = compare_encoders(src, staging, manifest, g, np.asarray(sample_video, dtype=np.float32))
            if not report[g]["max_abs_diff_vs_source"] <= tolerance:
                raise ExportParityError(f"{g} ({variant}) differs from {manifest.version}'s by "
                                        f"{report[g]['max_abs_diff_vs_source']:.3g} > tolerance {tolerance:g}")
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file() and p.name != MANIFEST}
        precision = f"{manifest.precision}+{variant}:{','.join(graphs)}"
        derived = dataclasses.replace(manifest, version=version, files=files, precision=precision, quantization=report,
                                      created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        derived.write(staging)
        Manifest.read(staging).verify_files(staging)  # what the engine will check, before anyone can see it

    return publish_version(root, version, build, update_latest)
