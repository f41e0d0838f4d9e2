"""The familiarity score as the service computes it: exported graphs, the manifest's calibration, real encoded files
decoded by the service's own path (core.media.prepare_upload). Prints the share flagged unfamiliar per group.

    python -m bench.familiarity --artifacts models/default [--outside data/outside] [--data data/synthetic-quality]

Groups: the uploads the test suite sends (bench.support.moving_square_clip, a square of a random colour sliding over a
dark background, in every container), synthetic clips drawn at 240 x 320 and encoded as mp4 (what `make serve`'s
users send when they try the model as meant), the outside set's files (ffmpeg and Pillow, real encoders), and the
out-of-domain set (model/data/ood.py) encoded as mp4; with --data, the saved corpus' test split (its own frames,
one- and two-object clips apart). `slr eval --ood` measures the same score in PyTorch on
the corpus' own frames; this is the number a user of the service meets.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.support import encode_clip, moving_square_clip
from core.familiarity import Calibration
from core.media import VIDEO_FORMATS, MediaLimits, prepare_upload
from core.tables import md_table

TEST_FORMATS = ("mp4", "webm", "gif", "avi", "mov")


def scores(engine, calibration: Calibration, uploads: list[bytes]) -> np.ndarray:
    """Familiarity of each upload, decoded and scored as the service does on a cache miss."""
    prepared = [prepare_upload(data, engine.config, MediaLimits()) for data in uploads]
    out = []
    for i in range(0, len(prepared), 16):
        v = np.stack([p.array for p in prepared[i:i + 16]])
        mu, _ = engine.encode(v, None)
        rebuilt = engine.rebuild_video(mu, v[:, 0])
        out.append(calibration.score(v, rebuilt, [p.box for p in prepared[i:i + 16]]))
    return np.concatenate(out)


def frame_scores(engine, calibration: Calibration, video: np.ndarray, boxes: list) -> np.ndarray:
    """Familiarity of clips already in the model's frame (a corpus' own frames), through the exported graphs."""
    out = []
    for i in range(0, len(video), 64):
        v = video[i:i + 64]
        mu, _ = engine.encode(v, None)
        out.append(calibration.score(v, engine.rebuild_video(mu, v[:, 0]), boxes[i:i + 64]))
    return np.concatenate(out)


def test_uploads(n: int) -> list[bytes]:
    sizes = ((12, 48, 64), (24, 96, 128), (16, 120, 160))
    return [encode_clip(moving_square_clip(*sizes[i % len(sizes)], seed=1000 + i), TEST_FORMATS[i % len(TEST_FORMATS)])
            for i in range(n)]


def synthetic_uploads(n: int) -> list[bytes]:
    from model.data.synthetic import generate

    corpus = generate(n * 2, seed=20261204, frames=16, height=240, width=320)
    clips = [c for c in corpus.splits["test"] + corpus.splits["train"]][:n]
    return [encode_clip(c.frames, "mp4") for c in clips]


def sheet_rows(engine, calibration: Calibration, groups: dict[str, list[bytes]],
               per_group: int = 1) -> list[tuple[str, np.ndarray]]:
    """(label, frames) rows of the picture: per group its first uploads, four of the frames the model sees beside
    the same four of its rebuild, labelled with the score, the verdict and each signal's value."""
    rows = []
    for name, uploads in groups.items():
        for data in uploads[:per_group]:
            p = prepare_upload(data, engine.config, MediaLimits())
            v = p.array[None]
            mu, _ = engine.encode(v, None)
            rebuilt = engine.rebuild_video(mu, v[:, 0])
            signals = calibration.measure(v, rebuilt, [p.box])
            score = float(calibration.familiarity(signals)[0])
            verdict = "familiar" if score >= calibration.threshold else "UNFAMILIAR"
            values = ", ".join(f"{n} {x:.3f}" for n, x in zip(calibration.signals, signals[0]))
            picks = np.linspace(0, len(v[0]) - 1, 4).round().astype(int)
            rows.append((f"{name}\nfamiliarity {score:.3f}: {verdict}\n{values}",
                         np.concatenate([v[0][picks], rebuilt[0][picks]])))
    return rows


def video_files(folder: str) -> list[Path]:
    """A folder's video files (the formats core.media decodes), by name."""
    return [p for p in sorted(Path(folder).iterdir()) if p.suffix.lstrip(".") in VIDEO_FORMATS]


def shading_rows(engine, folder: str, n: int = 4) -> list[tuple[str, np.ndarray]]:
    """The outside files the flat rebuild signal finds worst: each one's frames, the model's rebuild, and the pixels
    it misses with the cast alone and with the shading forgiven (the contact sheet behind `rebuild_miss_shaded`)."""
    from core.familiarity import missed_pixels, rebuild_miss, rebuild_miss_shaded

    def white(missed: np.ndarray) -> np.ndarray:
        return np.repeat(missed[..., None].astype(np.float32), 3, axis=-1)

    rows = []
    for path in video_files(folder):
        p = prepare_upload(path.read_bytes(), engine.config, MediaLimits())
        v = p.array[None]
        rebuilt = engine.rebuild_video(engine.encode(v, None)[0], v[:, 0])
        rows.append((float(rebuild_miss(v, rebuilt, [p.box])[0]), float(rebuild_miss_shaded(v, rebuilt, [p.box])[0]),
                     path.name, v[0], rebuilt[0], p.box))
    out = []
    for flat, shaded, name, video, rebuilt, box in sorted(rows, reverse=True)[:n]:
        picks = np.linspace(0, len(video) - 1, 3).round().astype(int)
        flat_map, shaded_map = (white(missed_pixels(video, rebuilt, box, shading)) for shading in (False, True))
        out.append((f"{name}\nclip | rebuild | missed (cast) | missed (shading)\nrebuild_miss {flat:.3f}\n"
                    f"rebuild_miss_shaded {shaded:.3f}",
                    np.concatenate([video[picks], rebuilt[picks], flat_map[picks], shaded_map[picks]])))
    return out


def split_scores(engine, calibration: Calibration, data: str) -> dict[str, np.ndarray]:
    """The corpus' test split by number of objects."""
    from model.data.corpus import load_split
    from model.familiarity import clip_boxes

    clips = load_split(data, "test")
    s = frame_scores(engine, calibration, np.stack([c.frames for c in clips]).astype(np.float32) / 255.0,
                     clip_boxes(clips))
    one = np.array([len(c.attributes.get("objects", [None])) == 1 for c in clips])
    return {"synthetic test split, one object": s[one], "synthetic test split, two objects": s[~one]}


def main(argv: list[str] | None = None) -> int:
    from model.data.ood import ood_set
    from service.engine import Engine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", default="models/default")
    ap.add_argument("--version", help="a version of the artifacts root (default: its latest)")
    ap.add_argument("--outside", help="the outside set's folder (slr data outside)")
    ap.add_argument("--per-kind", type=int, default=8, help="out-of-domain clips per kind")
    ap.add_argument("--clips", type=int, default=60, help="test-suite-style and synthetic uploads each")
    ap.add_argument("--data", help="a saved synthetic corpus (slr data synth): score its test split too")
    ap.add_argument("--sheet", help="also draw one clip per group, the clip and the model's rebuild, to this PNG")
    ap.add_argument("--shading-sheet", help="with --outside: draw the files the flat rebuild signal finds worst, what "
                                           "each signal counts as missed, to this PNG")
    ap.add_argument("--also-at", default="", help="comma-separated other thresholds: the share each would flag, "
                                                  "beside the calibrated one (e.g. 0.005,0.0025)")
    args = ap.parse_args(argv)
    engine = Engine.load(args.artifacts, args.version)
    calibration = engine.manifest.familiarity
    if calibration is None:
        raise SystemExit(f"{args.artifacts}: this model carries no familiarity calibration")
    groups: dict[str, list[bytes]] = {"test-suite uploads (5 containers)": test_uploads(args.clips),
                                      "synthetic clips, 240x320 mp4": synthetic_uploads(args.clips)}
    if args.outside:
        groups["outside set files"] = [p.read_bytes() for p in video_files(args.outside)]
    ood = ood_set(args.per_kind)
    for kind in dict.fromkeys(c.kind for c in ood):
        groups[f"out of domain: {kind}, mp4"] = [encode_clip(c.frames, "mp4") for c in ood if c.kind == kind]
    print(f"model {engine.version}, threshold {calibration.threshold} (calibrated on {calibration.source})")
    results = {name: scores(engine, calibration, uploads) for name, uploads in groups.items()}
    if args.data:
        results.update(split_scores(engine, calibration, args.data))
    results["out of domain, all kinds"] = np.concatenate([s for n, s in results.items() if n.startswith("out of")])
    others = [float(t) for t in args.also_at.split(",") if t.strip()]
    print("\n".join(md_table(["inputs", "n", "flagged unfamiliar", *(f"flagged at {t:g}" for t in others),
                               "median familiarity"], [
        [name, len(s), *(f"{100 * np.mean(s < t):.1f}%" for t in [calibration.threshold, *others]),
         f"{np.median(s):.3f}"] for name, s in results.items()])))
    if args.sheet or args.shading_sheet:
        from bench.contact_sheet import save_sheet, sheet

        if args.sheet:
            print(save_sheet(sheet(sheet_rows(engine, calibration, groups), label_w=330), args.sheet))
        if args.shading_sheet and args.outside:
            print(save_sheet(sheet(shading_rows(engine, args.outside), label_w=330), args.shading_sheet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
