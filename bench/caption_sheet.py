"""Captions of outside files, as one picture: files drawn by ffmpeg and Pillow (real encoders), the frames the model
sees, and each model's caption beside them. Two-object files, each caption marked right when its first clause names
colour, shape and motion of one of the objects (issue 18's binding score); or, with --one-object, one-object files
whose captions the models get right (colour, shape and motion all named) on different files, each marked.

    python -m bench.caption_sheet --artifacts /tmp/v5_default models/default --outside data/outside \
        --out docs/video/two_objects.png
    python -m bench.caption_sheet --artifacts models/default@quality-v17 models/default@quality-v20 \
        --outside data/outside --one-object --out docs/video/outside_captions.png

A model is an artifacts root (its latest) or root@version. Every model is run through the exported graphs (the
engine the service runs) on the same files.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.contact_sheet import save_sheet, sheet


def caption_rows(artifacts: list[str | Path], outside: Path, n_clips: int,
                 one_object: bool = False) -> tuple[list[tuple[str, np.ndarray]], dict]:
    """(label, frames) rows: per file its truth, then each model's caption; and each model's score over the files
    shown. Two-object files by the first clause's binding; with `one_object`, one-object files by all three
    attributes, only those whose verdicts differ between the models."""
    from model.data.attributes import attribute_hits, object_binding
    from model.data.outside import decode_clip_file, load_outside_set, outside_truth
    from service.engine import Engine

    engines = [Engine.load(*model_spec(a)) for a in artifacts]
    files = [(p, lab) for p, lab in load_outside_set(outside) if bool(lab.get("objects")) != one_object]
    rows: list[tuple[str, np.ndarray]] = []
    right = {e.version: 0 for e in engines}
    for path, label in files:
        if len(rows) == n_clips:
            break
        objects = label["objects"] if not one_object else [label]
        lines = ["truth: " + " + ".join(f"{o['colour']} {o['shape']} {o['motion']}" for o in objects)]
        frames, verdicts = None, []
        for engine in engines:
            cfg = engine.config
            video = decode_clip_file(path, cfg.frames, cfg.height, cfg.width, cfg.frame_fit)
            frames = video if frames is None else frames
            mu, _ = engine.encode(video[None], None)
            caption = engine.vocab.decode(engine.decode_sentence(mu)[0])
            ok = (bool(attribute_hits([caption], [outside_truth(label, cfg)])["all"][0]) if one_object
                  else object_binding([caption], [label])["first"] == 1.0)
            verdicts.append(ok)
            lines.append(f"{engine.version} {'RIGHT' if ok else 'wrong'}: {caption}")
        if one_object and len(set(verdicts)) == 1:
            continue  # every model alike: nothing to compare
        for engine, ok in zip(engines, verdicts):
            right[engine.version] += ok
        rows.append(("\n".join(_wrap(line) for line in lines), frames))
    return rows, {v: f"{n} of {len(rows)}" for v, n in right.items()}


def model_spec(text: str | Path) -> tuple[Path, str | None]:
    """An artifacts root and a version: "root@version", or a root alone (its latest)."""
    root, _, version = str(text).partition("@")
    return Path(root), version or None


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
    parser.add_argument("--artifacts", nargs="+", default=["models/default"], help="roots, or root@version")
    parser.add_argument("--outside", default="data/outside", help="an outside set (`slr data outside`)")
    parser.add_argument("--out", default="docs/video/two_objects.png")
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--one-object", action="store_true",
                        help="one-object files whose captions the models get right on different files")
    args = parser.parse_args(argv)
    rows, score = caption_rows(args.artifacts, Path(args.outside), args.clips, args.one_object)
    what = "colour, shape and motion named" if args.one_object else "first clause binds an object"
    print(f"{save_sheet(sheet(rows, label_w=340), args.out)}; {what}: {score}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
