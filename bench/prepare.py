"""Own videos (issue 34): what `slr data prepare` costs, and what training from its frame store costs against the
in-memory path.

    python -m bench.prepare throughput --clips 100 --seconds 10      clips/s and peak RSS, then twice the clips
    python -m bench.prepare train --clips 300 --preset demo --steps 40   steps/s, store (mapped) vs in memory

`throughput` writes a few distinct 320x240 H.264 clips of a moving square (`--fps` frames a second for `--seconds`)
and copies them to `--clips` files in the plain layout, then prepares them with `--workers` processes in a fresh
process per size, so each peak RSS (the main process and the largest worker) is that run's alone.
`train` writes generated clips as mp4 files, prepares them at the preset's size, and times the same training steps
(same clips, captions, vocabulary, model and seed) on the store's memory map and on the same split stacked in
memory, the two interleaved so that a busy machine slows both alike.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.support import encode_clip, moving_square_clip, write_video_folder

DISTINCT = 8  # distinct encoded clips; the others are copies (decoding costs the same, encoding is not measured)


def write_long_clips(root: Path, n: int, seconds: float, fps: int, height: int = 240, width: int = 320) -> None:
    """n mp4 files of `seconds` at `fps` in the plain layout (clips/ + captions.csv, seeded splits)."""
    (root / "clips").mkdir(parents=True, exist_ok=True)
    frames = int(seconds * fps)
    sources = [encode_clip(moving_square_clip(frames, height, width, seed), "mp4", fps) for seed in range(DISTINCT)]
    rows = ["file,caption"]
    for i in range(n):
        (root / "clips" / f"c{i:05d}.mp4").write_bytes(sources[i % DISTINCT])
        rows.append(f"clips/c{i:05d}.mp4,a square slides to the right number {i % DISTINCT}")
    (root / "captions.csv").write_text("\n".join(rows) + "\n")


def measure_prepare(folder: Path, store: Path, preset_name: str, workers: int) -> dict:
    """One prepare run in this process: its outcome and peak RSS (this process, the largest worker), MiB."""
    from core.config import preset
    from model.data.folder import read_folder
    from model.data.store import prepare_store

    plan = read_folder(folder)
    outcome = prepare_store(plan, store, preset(preset_name).model, preset_name, workers)
    return {"clips": outcome.decoded, "failed": outcome.failed, "seconds": round(outcome.seconds, 2),
            "clips_per_s": round(outcome.clips_per_s, 2),
            "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_worker_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "store_mib": round(sum(p.stat().st_blocks * 512 for p in store.iterdir()) / 2**20, 1)}


def cmd_throughput(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        for n in (args.clips, 2 * args.clips):
            folder = work / f"folder{n}"
            write_long_clips(folder, n, args.seconds, args.fps)
            out = subprocess.run([sys.executable, "-m", "bench.prepare", "_measure", str(folder), str(work / f"s{n}"),
                                  args.preset, str(args.workers)], capture_output=True, text=True, check=True)
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{n} clips of 320x240, {args.seconds:g} s at {args.fps} fps -> {args.preset} frames, "
                  f"{args.workers} workers: {json.dumps(figures)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def time_steps(data, cfg, vocab, preset_name: str, steps: int, seed: int = 0) -> float:
    """Seconds per training step (full-model phase) on one split's tensors, after a few warm-up steps."""
    import torch

    from core.config import preset
    from model.data.dataset import BatchStream
    from model.phases import phases_for
    from model.star import StarModel
    from model.train import Trainer, augmenter

    tc = preset(preset_name).train
    torch.manual_seed(seed)
    trainer = Trainer(StarModel(cfg), vocab, tc, Path(tempfile.mkdtemp()), progress=False)
    phase, gen = phases_for(tc)[0], torch.Generator().manual_seed(seed)
    stream = BatchStream(data, tc.batch_size, seed, augment=augmenter(tc, cfg), word_dropout=tc.word_dropout)
    for _ in range(3):
        trainer.train_step(stream.next(), phase, gen)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(stream.next(), phase, gen)
    return (time.perf_counter() - start) / steps


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from core.config import preset
    from core.vocab import Vocab
    from model.data.corpus import caption_policy
    from model.data.dataset import split_tensors, tensorize
    from model.data.folder import read_folder
    from model.data.store import load_store, prepare_store
    from model.data.synthetic import generate
    from model.train import model_config_for

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        corpus = generate(args.clips, seed=1, frames=8, height=72, width=128)
        clips = [(f"c{split}{i}", c.frames, c.captions, split)
                 for split in ("train", "val", "test") for i, c in enumerate(corpus.splits[split])
                 if c.frames is not None]  # the generator always draws frames
        write_video_folder(work / "folder", "plain", clips)
        prepare_store(read_folder(work / "folder"), work / "store", preset(args.preset).model, args.preset, 2)
        store = load_store(work / "store")
        vocab = Vocab.build(store.all_captions("train"), min_count=caption_policy(store)[0])
        cfg = model_config_for(store, preset(args.preset).model, vocab)
        before = rss_mib()
        mapped = split_tensors(store, "train", vocab, cfg)
        rss_mapped = rss_mib() - before
        memory = tensorize(store.splits["train"], vocab, cfg)
        rss_memory = rss_mib() - before - rss_mapped
        times: dict[str, list[float]] = {"store (memory-mapped)": [], "in memory": []}
        for _ in range(args.rounds):  # interleaved: load on shared cores falls on both alike
            times["store (memory-mapped)"].append(time_steps(mapped, cfg, vocab, args.preset, args.steps))
            times["in memory"].append(time_steps(memory, cfg, vocab, args.preset, args.steps))
        print(f"{len(store.splits['train'])} training clips, {args.preset} preset, {args.steps} steps x "
              f"{args.rounds} rounds, {args.threads} torch threads; tensors' RSS: store {rss_mapped:.1f} MiB, "
              f"in memory {rss_memory:.1f} MiB")
        rates = {k: 1.0 / float(np.median(v)) for k, v in times.items()}
        for name, rate in rates.items():
            print(f"  {name}: {rate:.2f} steps/s (median of {args.rounds})")
        ratio = rates["store (memory-mapped)"] / rates["in memory"]
        print(f"  store / in memory: {ratio:.3f} (target: >= 0.90)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_measure":  # one prepare run in its own process (peak RSS of that run alone)
        folder, store, preset_name, workers = argv[1:5]
        print(json.dumps(measure_prepare(Path(folder), Path(store), preset_name, int(workers))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    tp = sub.add_parser("throughput", help="slr data prepare: clips/s and peak RSS, at N and 2N clips")
    tp.add_argument("--clips", type=int, default=1000)
    tp.add_argument("--seconds", type=float, default=10.0)
    tp.add_argument("--fps", type=int, default=25)
    tp.add_argument("--workers", type=int, default=2)
    tp.add_argument("--preset", default="demo")
    tp.set_defaults(func=cmd_throughput)
    tr = sub.add_parser("train", help="training steps/s from the store against the in-memory path")
    tr.add_argument("--clips", type=int, default=300)
    tr.add_argument("--preset", default="demo")
    tr.add_argument("--steps", type=int, default=40)
    tr.add_argument("--rounds", type=int, default=3)
    tr.add_argument("--threads", type=int, default=1)
    tr.set_defaults(func=cmd_train)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
