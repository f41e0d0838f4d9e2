"""`slr data synth | outside | prepare` and `slr samples`: the corpora and clips the other commands read, and where a
command's corpus comes from (`--data` / `--data-dir`, or the source a run recorded in run.json)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from core.config import PRESETS, preset

CORPORA = ("synthetic", "msvd", "msrvtt", "store")


def synthetic_kwargs(preset_name: str, clips: int | None, seed: int) -> dict[str, Any]:
    """Generator arguments matching a preset's frame shape and corpus size."""
    p = preset(preset_name)
    return {"n_clips": clips or p.corpus_clips, "seed": seed, "frames": p.model.frames,
            "height": p.model.height, "width": p.model.width, "aspect_share": p.aspect_share}


def corpus_source(args: argparse.Namespace) -> dict[str, Any]:
    """Where a run's corpus comes from, recorded in run.json so eval and export can reload it."""
    if args.data == "synthetic" and not args.data_dir:
        return {"name": "synthetic", "root": None, "kw": synthetic_kwargs(args.preset, args.clips, args.data_seed)}
    return {"name": args.data, "root": str(Path(args.data_dir).resolve()) if args.data_dir else None, "kw": {}}


def load_source(source: dict[str, Any]):
    from model.data.load import load_corpus

    return load_corpus(source["name"], source.get("root"), **dict(source.get("kw") or {}))


def run_source(run: Path) -> dict[str, Any]:
    meta = json.loads((run / "run.json").read_text())
    if "source" not in meta:
        raise SystemExit(f"{run}/run.json does not record its corpus; pass --data/--data-dir")
    return meta["source"]


def cmd_data_synth(args: argparse.Namespace) -> int:
    from model.data.synthetic import generate

    corpus = generate(**synthetic_kwargs(args.preset, args.clips, args.seed), progress=True)
    if args.codec_share > 0:
        from model.data.codecs import roundtrip_corpus_share

        # Real codecs (h264, vp8/vp9, mpeg4, GIF) on a share of the training clips, once, at data time.
        corpus.splits["train"] = roundtrip_corpus_share(corpus.splits["train"], args.codec_share, args.seed)
        corpus.meta["codec_share"] = args.codec_share
    path = corpus.save(args.out)
    print(f"wrote {sum(len(v) for v in corpus.splits.values())} clips "
          f"({', '.join(f'{k} {len(v)}' for k, v in corpus.splits.items())}) to {path}")
    return 0


def cmd_data_outside(args: argparse.Namespace) -> int:
    from model.data.outside_writers import build_outside_set

    labels = build_outside_set(args.out, seed=args.seed, n_per_kind=args.per_kind)
    print(f"wrote {len(labels)} clips and labels.json to {args.out}")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    """A folder of video files + captions (MSR-VTT, MSVD or captions.csv) -> a frame store (model/data/store.py)."""
    from tqdm.auto import tqdm

    from model.data.folder import read_folder
    from model.data.store import REPORT, prepare_store

    plan = read_folder(args.folder, args.layout, args.annotations, args.seed, args.allow_missing, args.sentences_only)
    cfg = preset(args.preset).model
    sizes = {s: sum(e.split == s for e in plan.entries) for s in ("train", "val", "test")}
    print(f"{plan.layout} layout: {len(plan.entries)} clips ({', '.join(f'{k} {v}' for k, v in sizes.items())}; "
          f"splits from {plan.split_source}), {sum(len(e.captions) for e in plan.entries)} captions; frames "
          f"{cfg.frames}x{cfg.height}x{cfg.width} ({args.preset}, {cfg.frame_fit})"
          + (", captions only" if plan.sentences_only else ""))
    workers = args.workers or max(1, os.cpu_count() or 1)
    with tqdm(total=len(plan.entries), desc="prepare", unit="clip", dynamic_ncols=True) as bar:
        outcome = prepare_store(plan, args.out, cfg, args.preset, workers, args.force, args.retry_failed,
                                progress=bar.update)
        bar.update(outcome.skipped)
    print(f"{args.out}: decoded {outcome.decoded} clips in {outcome.seconds:.1f} s ({outcome.clips_per_s:.1f} clips/s, "
          f"{workers} workers), {outcome.skipped} already done, {outcome.failed} unreadable")
    if outcome.failed:
        print(f"unreadable files are listed with their reason in {Path(args.out) / REPORT} (skipped; "
              "--retry-failed tries them again)", file=sys.stderr)
    return 0


SAMPLE_CLIPS = (("red", "square", "right", "a red square moves to the right"),
                ("blue", "circle", "up", "a blue circle moves up"),
                ("green", "triangle", "grow", "a green triangle grows"),
                ("yellow", "star", "left", "a yellow star moves to the left"),
                ("purple", "diamond", "down", "a purple diamond moves down"),
                ("orange", "cross", "bounce", "an orange cross bounces"))


def cmd_samples(args: argparse.Namespace) -> int:
    """The web page's sample clips: GIFs drawn by the synthetic generator, and samples.json with their captions."""
    import numpy as np
    from PIL import Image

    from model.data.shapes import render_clip

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    listed = []
    for i, (colour, shape, motion, caption) in enumerate(SAMPLE_CLIPS):
        clip = render_clip({"colour": colour, "shape": shape, "motion": motion}, frames=args.frames,
                           height=args.height, width=args.width, rng=np.random.default_rng(args.seed + i))
        name = f"{colour}-{shape}-{motion}"
        images = [Image.fromarray(f) for f in clip]
        images[0].save(out / f"{name}.gif", save_all=True, append_images=images[1:], duration=125, loop=0)
        listed.append({"name": name, "file": f"{name}.gif", "caption": caption})
    (out / "samples.json").write_text(json.dumps(listed, indent=1) + "\n")
    print(f"wrote {len(listed)} clips and samples.json to {out}")
    return 0


def add_data_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--data", choices=CORPORA, required=required, default=None if not required else "synthetic",
                   help="which corpus: the generated synthetic one, or MSVD / MSR-VTT annotation + feature files")
    p.add_argument("--data-dir", help="a saved corpus (slr data synth), a frame store (slr data prepare), or the "
                                      "MSVD / MSR-VTT folder (video_corpus.csv or AllVideoDescriptions.txt / "
                                      "train_val_videodatainfo.json + test_videodatainfo.json, and "
                                      "features/<clip>.npy)")
    p.add_argument("--clips", type=int, help="synthetic clips to generate when no --data-dir (default: the preset's)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated synthetic corpus")


def add_prepare_parser(data: Any) -> None:
    from model.data.folder import LAYOUTS

    prep = data.add_parser(
        "prepare", help="decode a folder of your own video files + captions once into a frame store to train on",
        description="Layouts: MSR-VTT (videos/<video_id>.mp4 + train_val_videodatainfo.json / "
                    "test_videodatainfo.json), MSVD (YouTubeClips/<VideoID>_<Start>_<End>.avi + video_corpus.csv "
                    "or AllVideoDescriptions.txt), or plain (captions.csv: file,caption[,split], several rows per "
                    "file). Each file is decoded as the service decodes an upload, at the preset's frame size.")
    prep.add_argument("folder", help="the folder holding the videos and their annotations")
    prep.add_argument("--out", required=True, help="the frame store to write (a second run resumes it)")
    prep.add_argument("--preset", choices=PRESETS, default="demo", help="the model whose frame size to decode to")
    prep.add_argument("--layout", choices=LAYOUTS, help="the folder's layout (default: from what it holds)")
    prep.add_argument("--annotations", action="append", metavar="FILE",
                      help="annotation file(s) under another name (repeatable)")
    prep.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    prep.add_argument("--seed", type=int, default=0, help="seed of the split where the annotations name none")
    prep.add_argument("--allow-missing", action="store_true", help="prepare the videos present when some are absent")
    prep.add_argument("--sentences-only", action="store_true", help="captions alone when the folder has no videos")
    prep.add_argument("--retry-failed", action="store_true", help="try the files reported unreadable again")
    prep.add_argument("--force", action="store_true", help="start the store over")
    prep.set_defaults(func=cmd_data_prepare)


def add_data_parser(sub: Any) -> None:
    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="generate the synthetic video-caption corpus (deterministic by seed)")
    synth.add_argument("--out", required=True, help="folder to write (split .npz files + corpus.json)")
    synth.add_argument("--preset", choices=PRESETS, default="demo", help="frame shape and corpus size to match")
    synth.add_argument("--clips", type=int, help="number of clips (default: the preset's)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--codec-share", type=float, default=0.0,
                       help="share of training clips passed through real lossy codecs (robustness to real uploads)")
    synth.set_defaults(func=cmd_data_synth)
    outside = data.add_parser("outside", help="build the outside test set: clips drawn by ffmpeg and Pillow, "
                                              "encoded by real encoders, with their true attributes")
    outside.add_argument("--out", required=True)
    outside.add_argument("--seed", type=int, default=0)
    outside.add_argument("--per-kind", type=int, default=8, help="clips per (drawing source, container)")
    outside.set_defaults(func=cmd_data_outside)
    add_prepare_parser(data)


def add_samples_parser(sub: Any) -> None:
    smp = sub.add_parser("samples", help="draw the web page's sample clips (GIFs + samples.json)")
    smp.add_argument("--out", default="service/static/samples")
    smp.add_argument("--frames", type=int, default=16)
    smp.add_argument("--height", type=int, default=72)
    smp.add_argument("--width", type=int, default=128)
    smp.add_argument("--seed", type=int, default=0)
    smp.set_defaults(func=cmd_samples)
