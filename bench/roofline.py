"""Roofline of a caption: FLOPs of one caption counted from the exported graphs, the achieved FLOP/s of the
engine captioning a batch, as a share of this machine's measured fp32 matrix-multiply peak.

    python -m bench.roofline --artifacts /tmp/a [--batch 32] [--threads 1,2] [--json out.json]

FLOPs: every node of encoder_v, sentence_init and sentence_step is run once in onnxruntime with all its
intermediate tensors exposed, so each node's real input/output shapes are known; Conv, ConvTranspose, Gemm,
MatMul, LSTM and GRU are counted as 2 x multiply-adds (elementwise ops, softmax and reductions are left out:
they are memory-bound and small next to these). A caption is the encoder, sentence_init, and one
sentence_step per word plus the <eos> step. A batch of B runs max(length)+1 steps for all B rows, so the
FLOPs executed are counted the same way (rows that already finished still cost their step).

Peak: numpy's sgemm (the BLAS it was built with) on 2048 x 2048 float32 matrices, best of several runs,
with the BLAS thread count set to the same thread count as onnxruntime's intra-op threads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.graph_contract import (
    ENCODER_V,
    SENTENCE_INIT,
    SENTENCE_INIT_IO,
    SENTENCE_STEP,
    SENTENCE_STEP_IO,
    decode_length,
    encoder_io,
)
from core.tables import md_table


def _prod(xs: Any) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def node_flops(op: str, inputs: list[tuple[int, ...] | None], outputs: list[tuple[int, ...] | None],
               attrs: dict[str, Any]) -> int:
    """2 x multiply-adds of the compute-heavy ops; 0 for everything else."""
    if op == "Conv" and inputs[1] is not None and outputs[0] is not None:
        w = inputs[1]  # [Cout, Cin/group, k...]
        return 2 * _prod(outputs[0]) * _prod(w[1:])
    if op == "ConvTranspose" and inputs[0] is not None and inputs[1] is not None:
        w = inputs[1]  # [Cin, Cout/group, k...]
        return 2 * _prod(inputs[0]) * _prod(w[1:])
    if op == "Gemm" and inputs[0] is not None and outputs[0] is not None:
        a = inputs[0]
        k = a[0] if attrs.get("transA", 0) else a[1]
        return 2 * _prod(outputs[0]) * int(k)
    if op == "MatMul" and inputs[0] is not None and outputs[0] is not None:
        return 2 * _prod(outputs[0]) * int(inputs[0][-1])
    if op in ("LSTM", "GRU") and inputs[0] is not None and inputs[1] is not None:
        seq, batch, feat = inputs[0]  # layout 0: [T, B, I]
        if attrs.get("layout", 0) == 1:
            batch, seq = seq, batch
        dirs, gates_h, _ = inputs[1]  # W [dirs, G*H, I]
        hidden = inputs[2][2] if inputs[2] is not None else gates_h // (4 if op == "LSTM" else 3)
        return 2 * dirs * seq * batch * gates_h * (int(feat) + int(hidden))
    return 0


def graph_flops(path: Path, feed: dict[str, np.ndarray]) -> tuple[int, dict[str, int]]:
    """FLOPs of one run of the graph on `feed`, total and per op type, from the shapes of a real run."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    shapes: dict[str, tuple[int, ...]] = {i.name: tuple(numpy_helper.to_array(i).shape) for i in graph.initializer}
    known_outputs = {o.name for o in graph.output}
    wanted = []
    for node in graph.node:
        for name in node.output:
            if name and name not in known_outputs and name not in shapes:
                graph.output.append(helper.ValueInfoProto(name=name))
                known_outputs.add(name)
                wanted.append(name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node's output
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, feed)
    shapes.update({n: tuple(np.shape(v)) for n, v in zip(names, values)})
    shapes.update({k: tuple(v.shape) for k, v in feed.items()})
    for node in graph.node:  # Constant nodes' outputs
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    shapes[node.output[0]] = tuple(numpy_helper.to_array(a.t).shape)
    total, by_op = 0, {}
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        f = node_flops(node.op_type, [shapes.get(i) if i else None for i in node.input],
                       [shapes.get(o) if o else None for o in node.output], attrs)
        if f:
            total += f
            by_op[node.op_type] = by_op.get(node.op_type, 0) + f
    return total, by_op


PEAK_SCRIPT = """
import sys, time, numpy as np
n, repeats = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).random((n, n), dtype=np.float32)
b = np.random.default_rng(1).random((n, n), dtype=np.float32)
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(repeats))
print(2 * n ** 3 / best)
"""


def matmul_peak(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 FLOP/s of numpy's sgemm with its BLAS limited to `threads` (a fresh interpreter: BLAS reads
    its thread count when it loads)."""
    env = {**os.environ, **{k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                      "BLIS_NUM_THREADS")}}
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(n), str(repeats)], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--version")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="onnxruntime intra-op threads to try")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json")
    args = p.parse_args(argv)

    from service.engine import Engine, resolve_version_dir

    directory = resolve_version_dir(args.artifacts, args.version)
    levels = sorted({int(t) for t in args.threads.split(",") if t})
    engine = Engine.load(args.artifacts, args.version, device="cpu", intra_op_threads=levels[0])
    cfg = engine.config
    rng = np.random.default_rng(0)
    video = rng.random((args.batch, *cfg.video_shape), dtype=np.float32)

    # FLOPs of one caption (batch 1): encoder, init, one step; then per step count of the real captions.
    enc1, enc_ops = graph_flops(directory / encoder_io("v").file, {"video": video[:1]})
    z1 = np.zeros((1, cfg.latent_dim), np.float32)
    init1, _ = graph_flops(directory / SENTENCE_INIT_IO.file, {"z": z1})
    h = np.zeros((1, 1, cfg.hidden), np.float32)
    step1, step_ops = graph_flops(directory / SENTENCE_STEP_IO.file,
                                  {"token": np.array([1], np.int64), "h": h, "c": h.copy(),
                                   "z_state": z1[None]})
    mu, _ = engine.encode(video, None)
    captions = engine.decode_sentence(mu)
    lengths = [len(c) + 1 for c in captions]  # words + the <eos> step
    steps_run = min(max(lengths), decode_length(cfg.max_words))
    per_caption = enc1 + init1 + step1 * float(np.mean(lengths))
    executed = args.batch * (enc1 + init1 + step1 * steps_run)

    peaks, runs = {}, []
    for threads in levels:
        engine = Engine.load(args.artifacts, args.version, device="cpu", intra_op_threads=threads)
        engine.warmup()

        def caption_batch() -> None:
            m, _ = engine.encode(video, None)
            engine.decode_sentence(m)

        def encode_only() -> None:
            engine.encode(video, None)

        caption_batch()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            caption_batch()
            times.append(time.perf_counter() - t)
        enc_times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            encode_only()
            enc_times.append(time.perf_counter() - t)
        best, enc_best = min(times), min(enc_times)
        peaks[threads] = matmul_peak(threads)
        runs.append({"threads": threads, "batch": args.batch, "seconds_best": round(best, 4),
                     "seconds_median": round(float(np.median(times)), 4),
                     "captions_per_s": round(args.batch / best, 1), "achieved_gflops": round(executed / best / 1e9, 2),
                     "encoder_seconds_best": round(enc_best, 4),
                     "encoder_gflops": round(args.batch * enc1 / enc_best / 1e9, 2),
                     "decoder_gflops": round((executed - args.batch * enc1) / max(1e-9, best - enc_best) / 1e9, 2),
                     "peak_gflops": round(peaks[threads] / 1e9, 1),
                     "share_of_peak": round(executed / best / peaks[threads], 3)})
    report = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "numpy_blas": _blas()},
              "model": {"version": engine.version, "frames": cfg.frames, "height": cfg.height, "width": cfg.width,
                        "hidden": cfg.hidden, "latent_dim": cfg.latent_dim, "vocab_size": cfg.vocab_size},
              "flops": {ENCODER_V: enc1, f"{ENCODER_V}_by_op": enc_ops, SENTENCE_INIT: init1, SENTENCE_STEP: step1,
                        "sentence_step_by_op": step_ops, "mean_steps": round(float(np.mean(lengths)), 2),
                        "one_caption": int(per_caption), f"batch_{args.batch}_executed": int(executed),
                        "steps_run": steps_run},
              "runs": runs}
    f = report["flops"]
    print(f"model {engine.version}: {cfg.frames}x{cfg.height}x{cfg.width} frames, hidden {cfg.hidden}, "
          f"vocab {cfg.vocab_size}")
    print(f"FLOPs of one caption: {per_caption / 1e6:.1f} M  (encoder_v {enc1 / 1e6:.1f} M, sentence_init "
          f"{init1 / 1e6:.2f} M, {f['mean_steps']} steps x {step1 / 1e6:.2f} M)")
    print(f"batch {args.batch}: {steps_run} decoder steps, {executed / 1e9:.2f} GFLOP executed\n")
    print("\n".join(md_table(
        ["ORT threads", "batch", "s / batch", "captions/s", "achieved GFLOP/s", "encoder GFLOP/s", "decoder GFLOP/s",
         "sgemm peak GFLOP/s", "share of peak"],
        [[r["threads"], r["batch"], f"{r['seconds_best']:.4f}", r["captions_per_s"], r["achieved_gflops"],
          r["encoder_gflops"], r["decoder_gflops"], r["peak_gflops"], f"{100 * r['share_of_peak']:.1f}%"]
         for r in runs], right=True)))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas() -> str:
    try:
        info = np.show_config(mode="dicts")
        blas = info["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()
