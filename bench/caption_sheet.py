"""Captions of two-object clips, as one picture: outside files (drawn by ffmpeg and Pillow, real encoders) with
both objects in them, the frames the model sees, and each model's caption beside them, marked right when its
first clause names colour, shape and motion of one of the objects (issue 18's binding score).

    python -m bench.caption_sheet --artifacts /tmp/v5_default models/default --outside data/outside \
        --out docs/video/two_objects.png

Every model is run through the exported graphs (the engine the service runs) on the same files.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.contact_sheet import save_sheet, sheet


def caption_rows(artifacts: list[Path], outside: Path, n_clips: int) -> tuple[list[tuple[str, np.ndarray]], dict]:
    """(label, frames) rows: per two-object file its truth, then each model's caption; and each model's score."""
    from model.data.attributes import object_binding
    from model.data.outside import decode_clip_file, load_outside_set
    from service.engine import Engine

    engines = [Engine.load(a) for a in artifacts]
    clips = [(p, lab) for p, lab in load_outside_set(outside) if lab.get("objects")][:n_clips]
    rows: list[tuple[str, np.ndarray]] = []
    bound = {e.version: 0 for e in engines}
    for path, label in clips:
        lines = ["truth: " + " + ".join(f"{o['colour']} {o['shape']} {o['motion']}" for o in label["objects"])]
        frames = None
        for engine in engines:
            cfg = engine.config
            video = decode_clip_file(path, cfg.frames, cfg.height, cfg.width, cfg.frame_fit)
            frames = video if frames is None else frames
            mu, _ = engine.encode(video[None], None)
            caption = engine.vocab.decode(engine.decode_sentence(mu)[0])
            ok = object_binding([caption], [label])["first"] == 1.0
            bound[engine.version] += ok
            lines.append(f"{engine.version} {'RIGHT' if ok else 'wrong'}: {caption}")
        rows.append(("\n".join(_wrap(line) for line in lines), frames))
    return rows, {v: f"{n} of {len(clips)}" for v, n in bound.items()}


def _wrap(line: str, width: int = 46) -> str:
    words, out, cur = line.split(), [], ""
    for w in words:
        if cur and len(cur) + len(w) + 1 > width:
            out.append(cur)
            cur = "  " + w
        else:
            cur = f"{cur} {w}" if cur else w
    return "\n".join(out + [cur])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", nargs="+", default=["models/default"])
    parser.add_argument("--outside", default="data/outside", help="an outside set (`slr data outside`)")
    parser.add_argument("--out", default="docs/video/two_objects.png")
    parser.add_argument("--clips", type=int, default=10)
    args = parser.parse_args(argv)
    rows, score = caption_rows([Path(a) for a in args.artifacts], Path(args.outside), args.clips)
    print(f"{save_sheet(sheet(rows, label_w=340), args.out)}; first clause binds an object: {score}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
