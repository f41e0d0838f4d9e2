"""The cache-miss floor: how long an upload takes to become the model's input, against what PyAV alone needs.

    python -m bench.decode [--artifacts models/default] [--repeat 30] [--json]

Side by side in one run, per clip (48 frames at 320x240 as in issue 20, plus a small and a VGA one, and the peers'
benchmark clip of bench/peers, `bench.support.make_clip(48, 240, 320)`):
- `decode only`: PyAV decoding every frame, no conversion (the floor of any path that reads the file), with the
  slice threads libavcodec opens by default and with one thread (core.media's since 2026-12-07);
- `old path`: every frame decoded and converted (rgb24 at up to 4x the model size, frame threads on), then
  sampled by `prepare_clip` (what `core.media` did before);
- `issue 35's path`: every frame of the window decoded in order, the sampled ones converted to up to 4x the model
  size and box-filtered by prepare_clip (core.media when issue 35 was filed);
- `today's decode` (`decode_video`) and `prepare_upload`: the frames no pick needs skipped at skip_frame NONREF, the
  picked ones shrunk straight to their place by swscale (core.media.DIRECT_SCALE), and the two-step scaling of
  issue 35's path beside them;
- the same path with frame threads forced on and off, which is how THREAD_MIN_PIXELS was chosen.
Figures are medians of --repeat runs; the ratios are the point (the machine is shared and noisy).

    python -m bench.decode --files data/outside --files-repeat 5 [--artifacts models/default --captions]

checks real files instead: each one's sampled frames from today's path against the in-order decode's, bit for bit,
and the time of each; with --captions (a folder of `slr data outside`), also the release gate's figures of those files
(captions, reconstructions, familiarity) with the picked frames scaled in two steps against in one (DIRECT_SCALE),
tested for a fall on the same files as the gate tests a new version (bench/preprocess.py, which does the same for
any preprocessing setting).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.preprocess import gate_table, setting
from bench.support import make_clip
from core import media
from core.config import ModelConfig
from core.frames import prepare_clip
from core.manifest import Manifest, resolve_version_dir
from core.tables import md_table

CLIPS = {"160x120": (160, 120), "320x240": (320, 240), "640x480": (640, 480)}
PEERS_CLIP = "peers' 320x240"  # bench.support.make_clip(48, 240, 320): the upload of bench/peers
FRAMES = 48


def moving_clip_mp4(width: int, height: int, n_frames: int = FRAMES) -> bytes:
    """An h264 mp4 of a square crossing a textured background (texture keeps the encoder honest)."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 64, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        size = height // 4
        for t in range(n_frames):
            frame = background.copy()
            x = (width - size) * t // max(1, n_frames - 1)
            frame[height // 3: height // 3 + size, x: x + size] = (220, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def decode_only(data: bytes, one_thread: bool = False) -> int:
    """Every frame decoded, none converted: the floor, as PyAV opens a codec (libavcodec's slice threads, one per
    core) or with `one_thread` as core.media opens one (since 2026-12-07)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        if one_thread:
            stream.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def decode_everything(data: bytes, cfg: ModelConfig, threads: bool = True) -> np.ndarray:
    """The previous decode path, kept as the reference: convert every frame, then sample T of them."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        w, h = media._decode_size(stream.codec_context.width, stream.codec_context.height, cfg)
        frames = [f.to_ndarray(width=w, height=h, format="rgb24") for f in container.decode(stream)]
    return prepare_clip(np.stack(frames), cfg.frames, cfg.height, cfg.width)


def decode_in_order(data: bytes, cfg: ModelConfig, limits: media.MediaLimits) -> np.ndarray:
    """The reference of the skipping decode: T frames sampled from the count of frames an in-order decode gives."""
    return media._sample_in_order(data, cfg, limits, media.probe(data, limits), time.monotonic())


def check_files(folder: Path, cfg: ModelConfig, repeat: int) -> list[dict[str, Any]]:
    """Per video file of a folder: whether today's decode gives the in-order decode's frames, and both times."""
    limits = media.MediaLimits()
    rows = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lstrip(".") in media.VIDEO_FORMATS):
        data = path.read_bytes()
        today = lambda: media.decode_video(data, cfg, limits)  # noqa: E731
        reference = lambda: decode_in_order(data, cfg, limits)  # noqa: E731
        rows.append({"file": path.name, "identical": bool(np.array_equal(today(), reference())),
                     "in_order_ms": median_ms(reference, repeat, warm=False),
                     "today_ms": median_ms(today, repeat, warm=False)})
    return rows


def files_table(rows: list[dict[str, Any]]) -> str:
    by_format: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_format.setdefault(Path(r["file"]).suffix.lstrip("."), []).append(r)
    groups = [("all", rows), *sorted(by_format.items())]
    return "\n".join(md_table(
        ["files", "n", "frames identical", "in order (ms, median)", "today (ms, median)", "today / in order"],
        [[name, len(g), sum(r["identical"] for r in g),
          f"{statistics.median(r['in_order_ms'] for r in g):.2f}", f"{statistics.median(r['today_ms'] for r in g):.2f}",
          f"{statistics.median(r['today_ms'] / r['in_order_ms'] for r in g):.2f}x"] for name, g in groups]))


def with_threshold(pixels: int, fn: Callable[[], Any]) -> Any:
    """Run fn with core.media's frame-thread threshold set to `pixels` (0: always threads)."""
    with setting(media, "THREAD_MIN_PIXELS", pixels):
        return fn()


def median_ms(fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter,
              warm: bool = True) -> float:
    """The median of `repeat` calls in ms by `clock` (time.process_time: CPU time, the figure on a shared machine)."""
    if warm:
        fn()  # codec tables, allocator
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append((clock() - start) * 1000)
    return statistics.median(times)


def model_config(artifacts: str | None) -> ModelConfig:
    if artifacts:
        return Manifest.read(resolve_version_dir(Path(artifacts), None)).model
    return ModelConfig(frames=8, height=36, width=64)


def with_direct_scale(direct: bool, fn: Callable[[], Any]) -> Any:
    """Run fn with the picked frames shrunk in one step by swscale (True) or in two, as before (False)."""
    with setting(media, "DIRECT_SCALE", direct):
        return fn()


def bench_clips() -> dict[str, bytes]:
    clips = {f"{name} x {FRAMES} mp4": moving_clip_mp4(w, h) for name, (w, h) in CLIPS.items()}
    clips[f"{PEERS_CLIP} x {FRAMES} mp4"] = make_clip(FRAMES, 240, 320)
    return clips


def measure(cfg: ModelConfig, repeat: int) -> list[dict[str, Any]]:
    limits = media.MediaLimits()
    rows = []
    for name, data in bench_clips().items():
        prepare = lambda: media.prepare_upload(data, cfg, limits)  # noqa: E731
        row = {"clip": name,
               "decode_only_ms": median_ms(lambda: decode_only(data), repeat),
               "decode_one_thread_ms": median_ms(lambda: decode_only(data, one_thread=True), repeat),
               "old_path_ms": median_ms(lambda: decode_everything(data, cfg), repeat),
               "issue35_ms": median_ms(lambda: with_direct_scale(False, lambda: decode_in_order(data, cfg, limits)),
                                       repeat),
               "two_step_ms": median_ms(lambda: with_direct_scale(False, lambda: media.decode_video(data, cfg, limits)),
                                        repeat),
               "decode_video_ms": median_ms(lambda: media.decode_video(data, cfg, limits), repeat),
               "prepare_two_step_ms": median_ms(lambda: with_direct_scale(False, prepare), repeat),
               "prepare_upload_ms": median_ms(prepare, repeat),
               "threads_on_ms": median_ms(lambda: with_threshold(0, prepare), repeat),
               "threads_off_ms": median_ms(lambda: with_threshold(1 << 40, prepare), repeat)}
        row["issue35_over_today"] = row["issue35_ms"] / row["decode_video_ms"]
        row["prepare_over_floor"] = row["prepare_upload_ms"] / row["decode_only_ms"]
        row["old_over_new"] = row["old_path_ms"] / row["prepare_upload_ms"]
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(md_table(
        ["clip", "decode only, PyAV's threads / one thread (ms)", "old path (ms)", "issue 35's path (ms)",
         "today's decode, two-step / direct (ms)",
         "issue 35's / today's", "prepare_upload, two-step / direct (ms)", "threads on / off (ms)",
         "prepare / decode-only", "old / new"],
        [[r["clip"], f"{r['decode_only_ms']:.1f} / {r['decode_one_thread_ms']:.1f}", f"{r['old_path_ms']:.1f}",
          f"{r['issue35_ms']:.1f}",
          f"{r['two_step_ms']:.1f} / {r['decode_video_ms']:.1f}", f"{r['issue35_over_today']:.2f}x",
          f"{r['prepare_two_step_ms']:.1f} / {r['prepare_upload_ms']:.1f}",
          f"{r['threads_on_ms']:.1f} / {r['threads_off_ms']:.1f}", f"{r['prepare_over_floor']:.2f}x",
          f"{r['old_over_new']:.2f}x"] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", help="take T, H, W from this model (default: 8 x 36 x 64)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--files", type=Path, help="check this folder's video files instead (e.g. data/outside)")
    parser.add_argument("--files-repeat", type=int, default=5, help="timed decodes per file and path")
    parser.add_argument("--captions", action="store_true",
                        help="with --files and --artifacts: the gate's figures with two-step against direct scaling")
    args = parser.parse_args(argv)
    if args.captions and not (args.files and args.artifacts):
        parser.error("--captions needs --files (a labelled folder) and --artifacts")
    if args.files:
        checked = check_files(args.files, model_config(args.artifacts), args.files_repeat)
        print(json.dumps(checked, indent=2) if args.json else files_table(checked))
        kept = True
        if args.captions:
            text, kept = gate_table(args.artifacts, args.files, media, "DIRECT_SCALE", False, True)
            print(text)
        return 0 if kept and all(r["identical"] for r in checked) else 1
    rows = measure(model_config(args.artifacts), args.repeat)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
