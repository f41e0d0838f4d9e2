"""ONNX engine vs PyTorch eager, per task: latency at batch 1 and throughput at batch 32, same inputs, one run.

    python -m bench.engine runs/demo --artifacts artifacts [--version V] [--threads 2] [--json]

Without --artifacts the run is exported (parity-checked) into a temporary directory first. Nothing is
trained here. Both sides get the same thread count; the table's ratios are PyTorch time / ONNX time
(above 1: ONNX is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.channels import REGISTRY, ChannelConfig  # torch-free
from core.config import ModelConfig

TASKS = tuple(REGISTRY)


@dataclass
class Inputs:
    video: np.ndarray  # [N,T,H,W,3] float32 (or [N,T,D] features)
    tokens: list[list[int]]

    def head(self, n: int) -> "Inputs":
        return Inputs(self.video[:n], self.tokens[:n])


def make_inputs(cfg: ModelConfig, n: int, seed: int = 0) -> Inputs:
    """Random clips and random sentences of 4 .. max_words real words (ids past the specials)."""
    rng = np.random.default_rng(seed)
    video = rng.random((n, *cfg.video_shape), dtype=np.float32)
    lengths = rng.integers(min(4, cfg.max_words), cfg.max_words + 1, size=n)
    tokens = [rng.integers(4, cfg.vocab_size, size=int(k)).tolist() for k in lengths]
    return Inputs(video, tokens)


# ---------------------------------------------------------------- the two implementations of every task

def onnx_task(engine: Any, task: ChannelConfig) -> Callable[[Inputs], Any]:
    def run(x: Inputs) -> Any:
        video = x.video if "video" in task.inputs else None
        mu, _ = engine.encode(video, x.tokens if "sentence" in task.inputs else None)
        if "sentence" in task.outputs:
            return engine.decode_sentence(mu)
        if "video" in task.outputs:  # video-to-video starts from the first true frame, sentence-to-video from zeros
            return engine.decode_video(mu, x.video[:, 0] if video is not None else None)
        return mu
    return run


def torch_task(model: Any, task: ChannelConfig) -> Callable[[Inputs], Any]:
    import torch

    def padded(rows: list[list[int]]) -> tuple[Any, Any]:
        tokens = torch.zeros(len(rows), max(1, max(len(r) for r in rows)), dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return tokens, torch.tensor([max(1, len(r)) for r in rows], dtype=torch.long)

    @torch.inference_mode()
    def run(x: Inputs) -> Any:
        video = torch.from_numpy(x.video) if "video" in task.inputs else None
        tokens, lengths = padded(x.tokens) if "sentence" in task.inputs else (None, None)
        mu = model.encode(video, tokens, lengths).mu
        if "sentence" in task.outputs:
            return model.generate_sentences(mu)
        if "video" in task.outputs:
            return model.decode_video(mu, video[:, 0] if video is not None else None)
        return mu
    return run


# ---------------------------------------------------------------- timing

def paired_medians(torch_fn: Callable[[Inputs], Any], onnx_fn: Callable[[Inputs], Any], x: Inputs,
                   repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median seconds of each side, timed alternately so that load from other processes hits both alike."""
    for _ in range(warmup):
        torch_fn(x)
        onnx_fn(x)
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    for _ in range(repeats):
        for side, fn in (("torch", torch_fn), ("onnx", onnx_fn)):
            t = time.perf_counter()
            fn(x)
            times[side].append(time.perf_counter() - t)
    return statistics.median(times["torch"]), statistics.median(times["onnx"])


def bench_task(task: str, engine: Any, model: Any, inputs: Inputs, batch: int, repeats: int) -> dict[str, Any]:
    onnx_fn, torch_fn = onnx_task(engine, REGISTRY[task]), torch_task(model, REGISTRY[task])
    t1_torch, t1_onnx = paired_medians(torch_fn, onnx_fn, inputs.head(1), repeats)
    tb_torch, tb_onnx = paired_medians(torch_fn, onnx_fn, inputs.head(batch), repeats)
    return {
        "task": task,
        "batch1": {"torch_ms": 1e3 * t1_torch, "onnx_ms": 1e3 * t1_onnx, "ratio": t1_torch / t1_onnx},
        f"batch{batch}": {"torch_items_s": batch / tb_torch, "onnx_items_s": batch / tb_onnx,
                          "ratio": tb_torch / tb_onnx},
    }


def format_table(results: list[dict[str, Any]], batch: int) -> str:
    head = (f"{'task':<18} {'b1 torch ms':>12} {'b1 onnx ms':>11} {'ratio':>6}   "
            f"{f'b{batch} torch it/s':>15} {f'b{batch} onnx it/s':>14} {'ratio':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        a, b = r["batch1"], r[f"batch{batch}"]
        lines.append(f"{r['task']:<18} {a['torch_ms']:>12.2f} {a['onnx_ms']:>11.2f} {a['ratio']:>5.2f}x   "
                     f"{b['torch_items_s']:>15.1f} {b['onnx_items_s']:>14.1f} {b['ratio']:>5.2f}x")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run dir holding checkpoint.pt, or a checkpoint file")
    p.add_argument("--artifacts", help="artifacts root exported from that checkpoint (default: export to a temp dir)")
    p.add_argument("--version", help="artifacts version (default: the root's latest)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads, both sides")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--tasks", nargs="*", default=None, help=f"subset of {TASKS}")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from export.onnx_export import checkpoint_path, export_run
    from model.checkpoint import load_checkpoint
    from service.engine import Engine

    torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(checkpoint_path(args.run))
    with tempfile.TemporaryDirectory(prefix="slr-bench-") as tmp:
        root = Path(args.artifacts) if args.artifacts else Path(tmp)
        if not args.artifacts:
            export_run(args.run, root, version="bench")
        engine = Engine.load(root, args.version, device="auto", intra_op_threads=args.threads)
        if engine.manifest.source_checkpoint_sha256 != ckpt.sha256:
            print(f"artifacts {engine.version} were not exported from {args.run}: the comparison would be unfair",
                  file=sys.stderr)
            return 2
        engine.warmup()
        inputs = make_inputs(engine.config, args.batch)
        tasks = [t for t in (args.tasks or TASKS) if engine.has_task(t)]
        results = [bench_task(t, engine, ckpt.model.eval(), inputs, args.batch, args.repeats) for t in tasks]
    report = {"version": engine.version, "precision": engine.manifest.precision,
              "threads": args.threads, "providers": sorted({p for ps in engine.providers.values() for p in ps}),
              "machine": f"{platform.machine()} {platform.processor() or ''} x{os.cpu_count()}".strip(),
              "torch": torch.__version__, "model": engine.manifest.dims, "batch": args.batch,
              "repeats": args.repeats, "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {report['version']} ({report['precision']}), {args.threads} threads, "
              f"providers {report['providers']}, median of {args.repeats}")
        print(format_table(results, args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
