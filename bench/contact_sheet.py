"""What the video channel draws, as one picture: sentence-to-video for a dozen sentences, and reconstructions
beside the true frames, through the exported graphs (the engine the service runs).

    python -m bench.contact_sheet --artifacts models/default --out docs/contact_sheet.png

Rows of the sheet: each sentence's generated frames; then, for clips drawn by the synthetic generator from a
seed no training run uses, the true frames above their reconstruction. Frames are upscaled (nearest) so a
person can see them; the probe's figures for each row are written beside it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.sheet import frames_row, save_sheet, sheet  # noqa: F401  (bench.caption_sheet, bench.familiarity)
from core.vocab import tokenize

SENTENCES = (
    "a red circle moves to the right", "a blue square moves to the left", "a green triangle moves up",
    "a yellow star moves down", "an orange diamond grows", "a purple cross shrinks",
    "a white circle bounces", "a cyan square stays still", "a red triangle moves to the left",
    "a green square grows", "a blue star moves to the right", "a yellow cross moves down",
)
SHEET_SEED = 20261201  # a synthetic corpus no training run uses
def build_rows(artifacts: Path, n_clips: int) -> list[tuple[str, np.ndarray]]:
    from model.data.synthetic import generate
    from model.probes import contrast, probe_video
    from service.engine import Engine

    engine = Engine.load(artifacts)
    cfg = engine.config
    rows: list[tuple[str, np.ndarray]] = []
    for sentence in SENTENCES:
        mu, _ = engine.encode(None, [[engine.vocab.id(w) for w in tokenize(sentence)]])
        frames = engine.decode_video(mu)[0]
        p = probe_video(frames)
        colour = next((w for w in tokenize(sentence) if w in ("red", "blue", "green", "yellow", "orange", "purple",
                                                              "white", "cyan")), "red")
        rows.append((f"{sentence}\nprobe: {p.colour} {p.shape} / {p.motion},\ncontrast {contrast(frames, colour):.2f}",
                     frames))
    corpus = generate(n_clips * 4, seed=SHEET_SEED, frames=cfg.frames, height=cfg.height, width=cfg.width)
    clips = [c for c in corpus.splits["test"] if len(c.attributes.get("objects", [None])) == 1][:n_clips]
    video = np.stack([c.frames for c in clips]).astype(np.float32) / 255.0
    mu, _ = engine.encode(video, None)
    rebuilt = engine.decode_video(mu, video[:, 0])
    for clip, true, pred in zip(clips, video, rebuilt):
        a = clip.attributes
        p = probe_video(pred)
        rows.append((f"true: {a['colour']} {a['shape']} {a['motion']}", true))
        rows.append((f"reconstructed: probe {p.colour} {p.shape} / {p.motion},\n"
                     f"contrast {contrast(pred, a['colour']):.2f}", pred))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="models/default")
    parser.add_argument("--out", default="docs/contact_sheet.png")
    parser.add_argument("--clips", type=int, default=6, help="reconstructed clips")
    args = parser.parse_args(argv)
    print(save_sheet(sheet(build_rows(Path(args.artifacts), args.clips)), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
