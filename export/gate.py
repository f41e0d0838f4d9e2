"""The release gate: a version becomes a root's `latest` only when no figure its users rely on falls past noise.

Both versions are run through their own exported graphs (what the service runs; a shipped version may have no
checkpoint) on the same clips: the corpus' test split, the outside set's files and the out-of-domain set (the
familiarity score must keep flagging it: a calibration that passes more familiar clips may flag fewer unfamiliar
ones, and both are watched). Every figure is a per-clip
outcome (right or wrong), so the two versions are compared clip by clip with an exact one-sided McNemar test
(core/stats.py): a figure regresses when the candidate is lower *and* chance alone would make its losses outnumber
its wins so far less than 5% of the time. Three clips of 596 is noise; a fall the clips agree on is a loss. A
refusal can be overridden only with a reason, which the manifest records (`release`) and /readyz shows.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnxruntime as ort

from core.graph_contract import VIDEO_DECODER
from core.manifest import MANIFEST, Manifest, resolve_version_dir
from core.stats import ALPHA, paired
from export.graph_model import BATCH, GraphModel
from export.publish import read_latest, rewrite_manifest, write_latest
from model.data.attributes import attribute_hits, binding_hits
from model.data.corpus import Clip
from model.data.ood import model_input, ood_set
from model.data.outside import decode_clip_file, outside_box, outside_truth
from model.familiarity import clip_boxes
from model.probes import STAIN_CLEAN, probe_hits, stain

ATTRIBUTE_KEYS = ("colour", "shape", "motion", "all")
PROBE_KEYS = ("colour", "shape", "motion")


class GateRefused(Exception):
    """The candidate regressed on at least one figure and no reason was given."""


def _named(prefix: str, hits: dict[str, np.ndarray], keys: Sequence[str]) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": hits[k] for k in keys}


def not_flagged(model: GraphModel, video: np.ndarray, mu: np.ndarray, boxes: Sequence[Any],
                drawn: np.ndarray | None = None) -> np.ndarray:
    """Per clip (its frames and mu), True where the familiarity score lets it pass (a false alarm is False): the
    clip rebuilt by the graph the service scores with (`drawn`, the video decoder's frames of the same clips, where
    that graph is the video decoder)."""
    calibration = model.calibration
    assert calibration is not None
    if drawn is None or model.rebuild_graph != VIDEO_DECODER:
        drawn = model.frames(mu, video[:, 0], model.rebuild_graph)
    return calibration.score(video, drawn, boxes) >= calibration.threshold


# Clips read at a time: a multiple of the graphs' batch (the same batches as one pass, so the same numbers), and
# arrays under glibc's 32 MiB mmap ceiling, whose pages the allocator reuses: fresh pages for a whole split's float
# frames and drawings (gigabytes) were most of a version's reading, the kernel zeroing them (sys 139 s of 254).
SPLIT_CHUNK = 2 * BATCH


def split_outcomes(model: GraphModel, clips: Sequence[Clip]) -> dict[str, np.ndarray]:
    """Per-clip outcomes on corpus clips, SPLIT_CHUNK clips at a time (_chunk_outcomes), in the clips' order."""
    parts = [_chunk_outcomes(model, clips[i:i + SPLIT_CHUNK]) for i in range(0, len(clips), SPLIT_CHUNK)]
    names = dict.fromkeys(name for part in parts for name in part)  # a part may lack one: no one-object clip in it
    return {name: np.concatenate([part[name] for part in parts if name in part]) for name in names}


def _chunk_outcomes(model: GraphModel, clips: Sequence[Clip]) -> dict[str, np.ndarray]:
    """Per-clip outcomes: captions (every clip; one-object clips; two-object first clause), the video probe of both
    video tasks on one-object clips, and the familiarity score's passes."""
    truths = [c.attributes for c in clips]
    video = np.stack([c.frames for c in clips]).astype(np.float32) / 255.0
    mu = model.video_mu(video)
    hyps = model.captions(mu)
    one = np.array([len(t.get("objects", [None])) == 1 for t in truths])
    out = _named("caption", attribute_hits(hyps, truths), ATTRIBUTE_KEYS)
    out.update(_named("caption_one_object", attribute_hits([h for h, o in zip(hyps, one) if o],
                                                           [t for t, o in zip(truths, one) if o]), ATTRIBUTE_KEYS))
    out["two_objects.first_clause"] = binding_hits(hyps, truths)["first"]
    if VIDEO_DECODER not in model.manifest.graphs:
        return out
    idx = np.flatnonzero(one)
    rebuilt = model.frames(mu, video[:, 0])
    if len(idx):
        out.update(_named("reconstruct", probe_hits(list(rebuilt[idx]), [truths[i] for i in idx]), PROBE_KEYS))
        s_mu = model.sentence_mu([clips[i].captions[0] for i in idx])
        drawn = model.frames(s_mu, np.zeros_like(video[idx, 0]))
        full = [{k: v for k, v in truths[i].items() if k != "frame_box"} for i in idx]  # a sentence names no box
        out.update(_named("sentence_to_video", probe_hits(list(drawn), full), PROBE_KEYS))
        # its background clean of the object's colour away from the object (no smear along the track)
        out["sentence_to_video.clean"] = np.array([stain(v, t["colour"]) < STAIN_CLEAN for v, t in zip(drawn, full)])
    if model.calibration is not None:
        passes = not_flagged(model, video, mu, clip_boxes(clips), rebuilt)
        out["familiarity.passes_one_object"] = passes[one]
        out["familiarity.passes_two_objects"] = passes[~one]
    return out


def outside_outcomes(model: GraphModel, files: Sequence[tuple[Path, dict[str, Any]]]) -> dict[str, np.ndarray]:
    """Per-file outcomes on the outside set (files drawn and encoded by other software, decoded as an upload is):
    captions of the one-object files, their reconstructions' probe and the familiarity score's passes."""
    cfg = model.manifest.model
    files = [(p, label) for p, label in files if not label.get("objects")]
    video = np.stack([decode_clip_file(p, cfg.frames, cfg.height, cfg.width, cfg.frame_fit) for p, _ in files])
    truths = [outside_truth(label, cfg) for _, label in files]
    mu = model.video_mu(video)
    out = _named("outside", attribute_hits(model.captions(mu), truths), ATTRIBUTE_KEYS)
    if VIDEO_DECODER not in model.manifest.graphs:
        return out
    rebuilt = model.frames(mu, video[:, 0])
    out.update(_named("outside_reconstruct", probe_hits(list(rebuilt), truths), PROBE_KEYS))
    if model.calibration is not None:
        out["familiarity.passes_outside"] = not_flagged(model, video, mu,
                                                        [outside_box(label, cfg) for _, label in files], rebuilt)
    return out


def ood_outcomes(model: GraphModel) -> dict[str, np.ndarray]:
    """Per out-of-domain clip (model/data/ood.py, framed as `slr eval --ood` frames it), True where the familiarity
    score flags it."""
    if model.calibration is None or VIDEO_DECODER not in model.manifest.graphs:
        return {}
    cfg = model.manifest.model
    video, boxes = model_input(ood_set(), cfg)
    return {"familiarity.flags_out_of_domain": ~not_flagged(model, video, model.video_mu(video), boxes)}


def outcomes(model: GraphModel, clips: Sequence[Clip], files: Sequence[tuple[Path, dict[str, Any]]]
             ) -> dict[str, np.ndarray]:
    return {**split_outcomes(model, clips), **(outside_outcomes(model, files) if files else {}),
            **ood_outcomes(model)}


# The modules whose code decides a version's outcomes: a change to any of them reads every version anew.
OUTCOME_READERS = ("export.gate", "export.graph_model", "model.probes", "model.data.attributes", "model.data.ood",
                   "model.data.outside", "model.familiarity", "core.familiarity", "core.media", "core.frames")


def inputs_digest(clips: Sequence[Clip], files: Sequence[tuple[Path, dict[str, Any]]]) -> str:
    """What every version's outcomes on these inputs depend on, hashed: every clip (frames and truth), every outside
    file (bytes and label), the readers' code and onnxruntime's version. Once per gate: both versions share it."""
    h = hashlib.sha256()
    for clip in clips:
        h.update(clip.clip_id.encode())
        h.update(np.ascontiguousarray(clip.frames).tobytes() if clip.frames is not None else b"")
        h.update(json.dumps(clip.attributes, sort_keys=True, default=str).encode())
    for path, label in files:
        h.update(Path(path).read_bytes())
        h.update(json.dumps(label, sort_keys=True, default=str).encode())
    for name in OUTCOME_READERS:
        h.update(Path(str(importlib.import_module(name).__file__)).read_bytes())
    h.update(ort.__version__.encode())
    return h.hexdigest()


def outcomes_key(model: GraphModel, clips: Sequence[Clip], files: Sequence[tuple[Path, dict[str, Any]]],
                 inputs: str | None = None) -> str:
    """A version's outcomes' key: its manifest but the release record (graphs' sha256s, config, calibration) and
    the inputs' digest (`inputs`, where the caller has it already)."""
    manifest = json.loads((model.directory / MANIFEST).read_text())
    manifest.pop("release", None)  # written by the release itself: the same graphs read the same before and after
    h = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    h.update((inputs or inputs_digest(clips, files)).encode())
    return h.hexdigest()[:32]


def cached_outcomes(model: GraphModel, clips: Sequence[Clip], files: Sequence[tuple[Path, dict[str, Any]]],
                    cache: Path | None, inputs: str | None = None) -> dict[str, np.ndarray]:
    """`outcomes`, kept in `cache` (a folder; None: not kept) under the version and its `outcomes_key`: a release
    reads the current latest's from there, and `make quality-model`'s gates each version once rather than at every
    comparison it takes part in. Plain arrays (no pickle)."""
    if cache is None:
        return outcomes(model, clips, files)
    path = cache / f"{model.version}-{outcomes_key(model, clips, files, inputs)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as kept:
            return {name: kept[name] for name in kept.files}
    out = outcomes(model, clips, files)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + f".{os.getpid()}.partial.npz")
    np.savez(partial, **cast(dict[str, Any], out))  # names only: typed as if one might be allow_pickle
    os.replace(partial, path)  # whole or absent, whoever reads it
    return out


@dataclass(frozen=True)
class Comparison:
    """One figure, old against new on the same clips."""

    figure: str
    n: int
    old: float
    new: float
    lost: int  # clips the old version had right and the new one wrong
    won: int
    p: float  # one-sided exact McNemar: how likely losses this lopsided are by chance

    @property
    def regressed(self) -> bool:
        return self.new < self.old and self.p < ALPHA

    def row(self) -> list[str]:
        verdict = "REGRESSED" if self.regressed else ("better" if self.new > self.old else "same")
        return [self.figure, str(self.n), f"{100 * self.old:.1f}", f"{100 * self.new:.1f}", str(self.lost),
                str(self.won), f"{self.p:.3g}", verdict]


def compare(old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> list[Comparison]:
    """Every figure both versions have (a figure only one has, e.g. familiarity of a version without a calibration,
    is left out: there is nothing to pair)."""
    rows = []
    for figure in sorted(old.keys() & new.keys()):
        a, b = np.asarray(old[figure], bool), np.asarray(new[figure], bool)
        if len(a) != len(b) or len(a) == 0:
            continue
        pair = paired(a.tolist(), b.tolist())
        rows.append(Comparison(figure, pair.n, float(a.mean()), float(b.mean()), pair.lost, pair.won, pair.p_fall))
    return rows


@dataclass(frozen=True)
class GateResult:
    baseline: str | None
    candidate: str
    comparisons: tuple[Comparison, ...]
    reason: str | None = None

    @property
    def regressions(self) -> list[str]:
        return [c.figure for c in self.comparisons if c.regressed]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def table(self) -> str:
        head = ["figure", "clips", f"{self.baseline} %", f"{self.candidate} %", "lost", "won", "p", "verdict"]
        rows = [head, ["---"] * len(head)] + [c.row() for c in self.comparisons]
        return "\n".join("| " + " | ".join(r) + " |" for r in rows)

    def record(self) -> dict[str, Any]:
        """The manifest's `release` entry."""
        return {"baseline": self.baseline, "passed": self.passed, "regressions": self.regressions,
                "override_reason": self.reason if not self.passed else None, "alpha": ALPHA,
                "test": "exact one-sided McNemar on per-clip outcomes, same clips",
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "figures": {c.figure: {"n": c.n, "old": round(c.old, 4), "new": round(c.new, 4), "lost": c.lost,
                                       "won": c.won, "p": round(c.p, 6)} for c in self.comparisons}}


def run_gate(root: Path, candidate: str, clips: Sequence[Clip], files: Sequence[tuple[Path, dict[str, Any]]],
             reason: str | None = None, baseline: str | None = None, cache: Path | None = None) -> GateResult:
    """Compare `candidate` with `baseline` (default: the root's current latest; nothing to compare with: it
    passes); each version's outcomes kept in `cache` (cached_outcomes)."""
    baseline = baseline or read_latest(root)
    new = GraphModel.open(root, candidate)
    if baseline is None or baseline == new.version:
        return GateResult(baseline, new.version, (), reason)
    old = GraphModel.open(root, baseline)
    inputs = inputs_digest(clips, files) if cache is not None else None  # hashed once for both versions
    return GateResult(baseline, new.version, tuple(compare(cached_outcomes(old, clips, files, cache, inputs),
                                                           cached_outcomes(new, clips, files, cache, inputs))), reason)


def record_release(root: Path, result: GateResult) -> None:
    """Write the gate's record into the candidate's manifest (graphs and their sha256s untouched)."""
    version_dir = resolve_version_dir(root, result.candidate)
    rewrite_manifest(version_dir, dataclasses.replace(Manifest.read(version_dir), release=result.record()))


def release(root: Path, candidate: str, clips: Sequence[Clip], files: Sequence[tuple[Path, dict[str, Any]]],
            reason: str | None = None, cache: Path | None = None) -> GateResult:
    """The gate, then `latest` moved to the candidate when it passed or a reason overrides it; GateRefused (with the
    table) otherwise, `latest` untouched."""
    result = run_gate(root, candidate, clips, files, reason, cache=cache)
    if not result.passed and not reason:
        raise GateRefused(f"{result.candidate} regresses against {result.baseline} on "
                          f"{', '.join(result.regressions)}; `latest` not moved (give --reason to override)\n"
                          + result.table())
    record_release(root, result)
    write_latest(root, result.candidate)
    return result
