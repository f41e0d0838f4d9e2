"""Phone-sized uploads (issue 37): what one cache miss costs to decode, per upload size, old and new side by side.

    python -m bench.upload_sizes [--artifacts models/default] [--repeat 3] [--json]

Clips are made at bench time by ffmpeg (testsrc2, H.264 yuv420p, 30 fps, a keyframe every 48 frames = 1.6 s):
2 s 320x240, 10 s 1280x720, 30 s 1920x1080, 60 s 1920x1080. Per clip, in this process, the model's T, H, W taken
from the artifacts' `latest`:
- `old`: every frame decoded, the sampled ones converted (the decode before issue 37: its cost grows with length);
- `new`: core.media.prepare_upload from a spooled file, as the service runs it (a long clip: its first WINDOW_S s);
- decode CPU time (process time, median of --repeat) and the peak RSS of a fresh process decoding the clip once.
CPU time, not wall time, is the figure on a shared machine; run it nice'd beside other work and say so.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av

from bench.decode import median_ms, model_config
from core import media
from core.tables import md_table

SIZES = {"2 s 320x240": (2, 320, 240), "10 s 1280x720": (10, 1280, 720), "30 s 1920x1080": (30, 1920, 1080),
         "60 s 1920x1080": (60, 1920, 1080)}


def make_clip(folder: Path, seconds: int, width: int, height: int) -> Path:
    path = folder / f"{seconds}s-{width}x{height}.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={width}x{height}:r=30:d={seconds}", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", "48", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def old_decode(path: Path, cfg: Any) -> int:
    """The previous path's work: every frame decoded (only the sampled few were converted)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def new_decode(path: Path, cfg: Any) -> Any:
    with path.open("rb") as f:
        return media.prepare_upload(f, cfg, media.MediaLimits(max_frames=10**6, max_decode_s=1e9))


def cpu_ms(fn: Any, repeat: int) -> float:
    return median_ms(fn, repeat, clock=time.process_time, warm=False)


def peak_rss_mib(path: Path, which: str, artifacts: str | None) -> float:
    """Peak RSS of a fresh process that imports core.media and decodes the clip once (ru_maxrss, KiB on Linux)."""
    code = (f"import resource; from pathlib import Path; from bench.upload_sizes import *; "
            f"{which}_decode(Path({str(path)!r}), model_config({artifacts!r})); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024


def measure(artifacts: str | None, repeat: int) -> list[dict[str, Any]]:
    cfg = model_config(artifacts)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (seconds, w, h) in SIZES.items():
            path = make_clip(Path(folder), seconds, w, h)
            rows.append({"upload": name, "mib": path.stat().st_size / 2**20,
                         "old_cpu_ms": cpu_ms(lambda: old_decode(path, cfg), 1),
                         "new_cpu_ms": cpu_ms(lambda: new_decode(path, cfg), repeat),
                         "old_rss_mib": peak_rss_mib(path, "old", artifacts),
                         "new_rss_mib": peak_rss_mib(path, "new", artifacts)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(md_table(
        ["upload", "MiB", "decode CPU old / new (ms)", "old / new", "peak RSS old / new (MiB)"],
        [[r["upload"], f"{r['mib']:.1f}", f"{r['old_cpu_ms']:.0f} / {r['new_cpu_ms']:.0f}",
          f"{r['old_cpu_ms'] / r['new_cpu_ms']:.1f}x", f"{r['old_rss_mib']:.0f} / {r['new_rss_mib']:.0f}"]
         for r in rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="models/default", help="T, H, W from this root's latest version")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = measure(args.artifacts, args.repeat)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
