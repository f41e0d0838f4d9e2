"""Captions of real encoded files through a running service, the way a user gets them.

Draws clips with the synthetic generator at an ordinary video size, encodes each to a real file (mp4 / webm /
avi / mov by PyAV, gif by Pillow), POSTs it to /caption and scores the caption's colour, shape and motion:

    make serve &   # or any deployment
    python -m bench.http_captions --url http://127.0.0.1:8000 --per-format 10
"""
from __future__ import annotations

import argparse

import httpx
import numpy as np

from core.tables import md_table
from model.data.attributes import attribute_accuracy
from model.data.codecs import encode_frames
from model.data.shapes import COLOURS, MOTIONS, SHAPES, render_clip

FORMATS: dict[str, str] = {"mp4": "h264", "webm": "vp9", "avi": "mpeg4", "mov": "h264_mov", "gif": "gif"}


def random_attributes(rng: np.random.Generator) -> dict[str, str]:
    return {"colour": str(rng.choice(COLOURS)), "shape": str(rng.choice(SHAPES)), "motion": str(rng.choice(MOTIONS))}


def encoded_clip(attrs: dict[str, str], fmt: str, size: tuple[int, int], rng: np.random.Generator) -> bytes:
    frames = render_clip(attrs, frames=24, height=size[0], width=size[1], rng=rng)
    return encode_frames(frames, FORMATS[fmt], quality=float(rng.uniform(0.5, 1.0)))


def caption(client: httpx.Client, data: bytes, fmt: str) -> str:
    r = client.post("/caption", files={"video": (f"clip.{fmt}", data, "application/octet-stream")})
    r.raise_for_status()
    return r.json()["caption"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--per-format", type=int, default=10, help="clips per container format")
    ap.add_argument("--size", default="240x320", help="frame size HxW of the encoded files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", action="store_true", help="print every clip's truth and caption")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    rng = np.random.default_rng(args.seed)
    rows, all_hyps, all_truths = [], [], []
    with httpx.Client(base_url=args.url, timeout=60) as client:
        for fmt in FORMATS:
            hyps, truths = [], []
            for _ in range(args.per_format):
                attrs = random_attributes(rng)
                hyps.append(caption(client, encoded_clip(attrs, fmt, size, rng), fmt))
                truths.append(attrs)
                if args.show:
                    print(f"{fmt:>4}  {attrs['colour']} {attrs['shape']} {attrs['motion']:<7} -> {hyps[-1]}")
            rows.append((fmt, len(hyps), attribute_accuracy(hyps, truths)))
            all_hyps += hyps
            all_truths += truths
    rows.append(("all", len(all_hyps), attribute_accuracy(all_hyps, all_truths)))
    print("\n".join(md_table(["format", "clips", "colour", "shape", "motion", "all three"],
                            [[fmt, n, *(f"{100 * acc[a]:.0f}" for a in ("colour", "shape", "motion", "all"))]
                             for fmt, n, acc in rows])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
