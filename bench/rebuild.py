"""What the familiarity score costs a cache miss, part by part: the rebuild through the whole video decoder (both
tasks' heads) against the rebuild graph (video-to-video's heads only, `video_rebuild.onnx`), and the signals read
from the rebuild, per clip at batch 1 and 8, in alternating rounds (a drifting background load hits every part).

    python -m bench.rebuild --artifacts models/default [--version V] [--against W] [--rounds 7] [--calls 200]
                            [--mmap-threshold-kib 4096]

--against W times version W's two video graphs in the same rounds, on the same clips, and prints V's cost over W's
(a re-exported version against its source: `slr redraw --reexport`).

--mmap-threshold-kib pins glibc's mmap threshold as the server does (SLR_MMAP_THRESHOLD_KIB, service/heap.py): below
a batch's buffers, each call pays the page faults of fresh mmaps (0: malloc's own, the default here).

The engine is the service's own (one intra-op thread, as served). Medians of the rounds, microseconds per clip.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.familiarity import video_signals
from core.graph_contract import VIDEO_DECODER, VIDEO_REBUILD
from service.engine import Engine
from service.heap import fix_mmap_threshold

Part = Callable[[np.ndarray, np.ndarray, np.ndarray], object]


def clips(engine: Engine, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video [n,T,H,W,3], mu, rebuilt): noise clips at the model's size, their mu and rebuild."""
    video = np.random.default_rng(seed).random((n, *engine.video_shape()), dtype=np.float32)
    mu, _ = engine.encode(video, None)
    return video, mu, engine.decode_video(mu, video[:, 0])


def graph_parts(engine: Engine, suffix: str = "") -> dict[str, Part]:
    return {
        f"rebuild, video_decoder{suffix}": lambda v, mu, _: engine.decode_video(mu, v[:, 0]),
        f"rebuild, video_rebuild{suffix}": lambda v, mu, _: engine.rebuild_video(mu, v[:, 0]),
    }


def parts(engine: Engine, against: Engine | None = None) -> dict[str, Part]:
    return {
        **graph_parts(engine),
        **(graph_parts(against, f" ({against.version})") if against is not None else {}),
        # the signals the model's calibration names (a model without one: today's default signals)
        "signals": lambda v, _, rebuilt: (engine.manifest.familiarity.measure(v, rebuilt) if engine.manifest.familiarity
                                          else video_signals(v, rebuilt)),
    }


def per_clip_us(fn: Part, inputs: tuple[np.ndarray, np.ndarray, np.ndarray], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(*inputs)
    return (time.perf_counter() - start) / calls / len(inputs[0]) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", type=Path, default=Path("models/default"))
    ap.add_argument("--version", default=None)
    ap.add_argument("--against", default=None, help="another version whose video graphs are timed in the same rounds")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200, help="calls per part per round at batch 1 (fewer at 8)")
    ap.add_argument("--mmap-threshold-kib", type=int, default=0,
                    help="pin glibc's mmap threshold as the server does (0: leave malloc's own)")
    args = ap.parse_args(argv)
    fix_mmap_threshold(args.mmap_threshold_kib * 1024)
    engine = Engine.load(args.artifacts, args.version, intra_op_threads=1)
    if VIDEO_REBUILD not in engine.sessions:
        print(f"{engine.version} has no {VIDEO_REBUILD} graph (a sprite decoder with sentence_heads exports one)",
              file=sys.stderr)
        return 2
    against = Engine.load(args.artifacts, args.against, intra_op_threads=1) if args.against else None
    threshold = f"{args.mmap_threshold_kib} KiB" if args.mmap_threshold_kib else "malloc's own"
    print(f"{engine.version}, {args.rounds} rounds, median microseconds per clip, mmap threshold {threshold}")
    print("| part | batch 1 | batch 8 |\n|---|---|---|")
    rows: dict[str, list[float]] = {}
    for batch in (1, 8):
        inputs = clips(engine, batch)
        calls = max(10, args.calls // batch)
        times: dict[str, list[float]] = {name: [] for name in parts(engine, against)}
        for _ in range(args.rounds):
            for name, fn in parts(engine, against).items():
                times[name].append(per_clip_us(fn, inputs, calls))
        for name, t in times.items():
            rows.setdefault(name, []).append(statistics.median(t))
    for name, (one, eight) in rows.items():
        print(f"| {name} | {one:,.0f} | {eight:,.0f} |")
    whole, own = rows["rebuild, video_decoder"], rows["rebuild, video_rebuild"]
    print(f"rebuild graph / whole decoder: {own[0] / whole[0]:.2f}x at batch 1, {own[1] / whole[1]:.2f}x at batch 8")
    if against is not None:
        for graph in (VIDEO_DECODER, VIDEO_REBUILD):
            ours, theirs = rows[f"rebuild, {graph}"], rows[f"rebuild, {graph} ({against.version})"]
            print(f"{graph}: {engine.version} / {against.version} {ours[0] / theirs[0]:.2f}x at batch 1, "
                  f"{ours[1] / theirs[1]:.2f}x at batch 8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
