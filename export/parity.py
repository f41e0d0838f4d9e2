"""Parity: every exported graph against PyTorch on the same random and real inputs, and greedy captions
from the ONNX path against PyTorch's, token for token. An export that fails here is never published."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor

from core.graph_contract import SENTENCE_INIT, SENTENCE_STEP, decode_length, encoder_graph
from core.search import decode_with_graphs
from export.graphs import Case, GraphSpec, Samples, example_inputs
from model.star import StarModel

FP32_ATOL = 1e-4
BEAM_SIZE = 3  # beam captions are compared and recorded too; only greedy gates the export (the contract)

class ExportParityError(RuntimeError):
    """The ONNX graphs do not compute what the PyTorch model computes; nothing was written."""


def open_cpu_session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- per-graph cases

def random_cases(model: StarModel, spec: GraphSpec, seed: int) -> list[Case]:
    """Shapes unlike the trace-time ones (batch 3 / L 7, and batch 1 / L 1) to exercise the dynamic axes."""
    g = torch.Generator().manual_seed(seed)
    return [spec.example_inputs(model.cfg, 3, 7, g), spec.example_inputs(model.cfg, 1, 1, g)]


@torch.no_grad()
def torch_outputs(model: StarModel, spec: GraphSpec, case: Case) -> list[np.ndarray]:
    out = spec.wrapper(model)(*(case[n] for n in spec.inputs))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def onnx_outputs(session: ort.InferenceSession, spec: GraphSpec,
                 case: Mapping[str, Tensor | np.ndarray]) -> list[np.ndarray]:
    feed = {n: np.asarray(case[n]) for n in spec.inputs}
    return session.run(list(spec.outputs), feed)


def max_abs_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Largest elementwise difference over all outputs; a NaN anywhere counts as infinitely different."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape:
            return float("inf")
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        worst = max(worst, float("inf") if not np.isfinite(d).all() else float(d.max(initial=0.0)))
    return worst


# ---------------------------------------------------------------- captions through the ONNX graphs

def onnx_encode(sessions: Mapping[str, ort.InferenceSession], video: Tensor | None, tokens: Tensor | None,
                lengths: Tensor | None) -> np.ndarray:
    key = ("v" if video is not None else "") + ("s" if tokens is not None else "")
    feed: dict[str, np.ndarray] = {}
    if video is not None:
        feed["video"] = video.numpy()
    if tokens is not None:
        if lengths is None:
            raise ValueError("tokens come with their lengths")
        feed["tokens"], feed["lengths"] = tokens.numpy(), lengths.numpy()
    return sessions[encoder_graph(key)].run(["mu"], feed)[0]


def onnx_sentences(sessions: Mapping[str, ort.InferenceSession], z: np.ndarray, beam_size: int,
                   max_len: int) -> list[list[int]]:
    """The same search the engine runs (core.search), over the init and step graphs."""
    return decode_with_graphs(sessions[SENTENCE_INIT], sessions[SENTENCE_STEP], z, beam_size, max_len)


def caption_inputs(model: StarModel, s: Samples, seed: int) -> list[tuple[Tensor | None, Tensor | None, Tensor | None]]:
    """(video, tokens, lengths) groups to caption: the real sample when given, random inputs otherwise."""
    groups: list[tuple[Tensor | None, Tensor | None, Tensor | None]] = []
    if s.video is not None:
        groups.append((s.video, None, None))
    if s.tokens is not None:
        groups.append((None, s.tokens, s.lengths))
    if not groups:
        g = torch.Generator().manual_seed(seed)
        case = example_inputs(model.cfg, ("video", "tokens", "lengths"), 4, 6, g)
        groups = [(case["video"], None, None), (None, case["tokens"], case["lengths"])]
    return groups


@torch.no_grad()
def caption_parity(model: StarModel, sessions: Mapping[str, ort.InferenceSession], s: Samples,
                   seed: int) -> dict[str, Any]:
    """Greedy (and beam) captions: ONNX encoder + ONNX search vs model.encode + model.generate_sentences."""
    max_len = decode_length(model.cfg.max_words)
    greedy_equal = beam_equal = True
    compared = mismatched = 0
    for video, tokens, lengths in caption_inputs(model, s, seed):
        z_torch = model.encode(video, tokens, lengths).mu
        z_onnx = onnx_encode(sessions, video, tokens, lengths)
        ref = model.generate_sentences(z_torch, beam_size=1, max_len=max_len)
        got = onnx_sentences(sessions, z_onnx, 1, max_len)
        mismatched += sum(a != b for a, b in zip(ref, got, strict=True))
        compared += len(ref)
        greedy_equal &= ref == got
        beam_equal &= (model.generate_sentences(z_torch, BEAM_SIZE, max_len)
                       == onnx_sentences(sessions, z_onnx, BEAM_SIZE, max_len))
    return {"greedy_captions_equal": bool(greedy_equal), "captions_compared": compared,
            "captions_mismatched": int(mismatched), f"beam{BEAM_SIZE}_captions_equal": bool(beam_equal)}


# ---------------------------------------------------------------- the whole check

def check_parity(model: StarModel, specs: Mapping[str, GraphSpec], graph_dir: Path, samples: Samples,
                 atol: float = FP32_ATOL, seed: int = 0) -> dict[str, Any]:
    """Run every graph against PyTorch; raise ExportParityError on any difference beyond atol or any
    greedy caption that differs. Returns the manifest "parity" figures."""
    model.eval()
    sessions = {name: open_cpu_session(graph_dir / spec.file) for name, spec in specs.items()}
    report: dict[str, Any] = {"atol": atol}
    failures: list[str] = []
    for name, spec in specs.items():
        cases = random_cases(model, spec, seed) + spec.real_cases(model, samples)
        diff = max(max_abs_diff(torch_outputs(model, spec, c), onnx_outputs(sessions[name], spec, c)) for c in cases)
        report[name] = {"max_abs_diff": diff, "cases": len(cases)}
        if not diff <= atol:
            failures.append(f"{name}: max abs diff {diff:.3g} > {atol:g}")
    report.update(caption_parity(model, sessions, samples, seed))
    if not report["greedy_captions_equal"]:
        failures.append(f"greedy captions differ on {report['captions_mismatched']} "
                        f"of {report['captions_compared']} inputs")
    if failures:
        raise ExportParityError("ONNX export does not match PyTorch: " + "; ".join(failures))
    return report


def compare_graph_sets(specs: Mapping[str, GraphSpec], ref_dir: Path, new_dir: Path, model: StarModel,
                       samples: Samples, seed: int = 0) -> dict[str, Any]:
    """Accuracy cost of quantised graphs: their outputs against the fp32 graphs on the parity inputs,
    and how many greedy captions stay the same."""
    ref = {n: open_cpu_session(ref_dir / s.file) for n, s in specs.items()}
    new = {n: open_cpu_session(new_dir / s.file) for n, s in specs.items()}
    report: dict[str, Any] = {}
    for name, spec in specs.items():
        cases = random_cases(model, spec, seed) + spec.real_cases(model, samples)
        report[name] = {"max_abs_diff_vs_fp32": max(
            max_abs_diff(onnx_outputs(ref[name], spec, c), onnx_outputs(new[name], spec, c)) for c in cases)}
    max_len = decode_length(model.cfg.max_words)
    same = total = 0
    for video, tokens, lengths in caption_inputs(model, samples, seed):
        a = onnx_sentences(ref, onnx_encode(ref, video, tokens, lengths), 1, max_len)
        b = onnx_sentences(new, onnx_encode(new, video, tokens, lengths), 1, max_len)
        same += sum(x == y for x, y in zip(a, b, strict=True))
        total += len(a)
    report["greedy_captions_equal_fraction"] = same / total if total else 1.0
    report["captions_compared"] = total
    return report
