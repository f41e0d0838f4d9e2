"""`slr refit`: a new version whose video decoder (export/refit.py; then recalibrated) or sentence decoder
(export/refit_sentence.py) is refitted on an exported version's frozen encoders, or whose video encoder is distilled to
read scenes over any background as over the corpus' own (export/refit_encoder.py; then recalibrated), published
beside it; `slr merge-heads` and `slr redraw` derive one from exported versions without training; `slr release` then
decides whether it becomes `latest`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import PRECISIONS

if TYPE_CHECKING:
    import numpy as np


CHECK_DATA = "the saved corpus whose validation clips check the graphs"


def new_version_args(parser: argparse.ArgumentParser, data_help: str = CHECK_DATA) -> argparse.ArgumentParser:
    """The arguments every command deriving a version shares: the root, the new version's name, the corpus."""
    parser.add_argument("root", help="artifacts root (e.g. models/default); the new version is published beside")
    parser.add_argument("--version", required=True, help="the new version's folder name")
    parser.add_argument("--data-dir", required=True, help=data_help)
    return parser


def add_refit_parser(sub: Any) -> None:
    ref = sub.add_parser(
        "refit", help="retrain one part of an exported version from its own graphs, the others byte-identical: its "
                      "video decoder (sentence-to-video's own heads included) or its sentence decoder (captions, "
                      "paraphrases) on its frozen encoders, or its video encoder (distilled from itself to read "
                      "scenes over backgrounds of any colour as over the corpus' own) under its frozen decoders")
    new_version_args(ref, "the saved corpus the version was trained on (slr data synth)")
    ref.add_argument("--from-version", required=True, help="the version whose encoders and decoder start the refit")
    ref.add_argument("--preset", default="quality", help="whose loss weights and grad clip to train with")
    ref.add_argument("--part", "--decoder", dest="part", choices=("video", "sentence", "video-encoder"),
                     default="video", help="which part to refit: the video or the sentence decoder, or the video "
                                           "encoder")
    ref.add_argument("--steps", type=int, help="training steps (default: 6000 video, 3000 sentence and encoder)")
    ref.add_argument("--lr", type=float, help="learning rate, decayed linearly to 0 (default: 1e-3; 3e-4 the encoder)")
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--ramp-share", type=float, help="video decoder: share of video-to-video rows trained on a steep "
                                                      "colour ramp across the picture (default 0)")
    ref.add_argument("--sentence-alpha-gain", type=float, help="video decoder: sentence-to-video's sprite alpha "
                                                               "made this much steeper before training (default 1)")
    ref.add_argument("--heads", choices=("both", "sentence"),
                     help="video decoder: which drawing heads learn (default both); sentence: sentence-to-video's "
                          "alone, from sentence rows, video-to-video and the familiarity calibration kept exactly")
    ref.add_argument("--sprite-mask-weight", type=float,
                     help="video decoder: weight of the sprite alpha's term against its shape's mask (default: the "
                          "preset's)")
    ref.add_argument("--caption-weight", type=float, help="video encoder: weight of the caption loss through the "
                                                          "version's own caption decoder beside the distillation "
                                                          "(default 0)")
    ref.add_argument("--precision", choices=PRECISIONS,
                     help="the training forward's precision (default: the preset's; model/precision.py)")
    ref.add_argument("--train-clips", type=int, help="the first N training clips only (default: all)")
    ref.add_argument("--validation-clips", type=int, default=1000, help="validation clips that pick the best weights")
    ref.add_argument("--calibration-clips", type=int, help="validation clips to recalibrate on (default: all)")
    ref.set_defaults(func=cmd_refit)
    merge = sub.add_parser(
        "merge-heads", help="a version whose video decoder draws video-to-video with one version's heads and "
                            "sentence-to-video with another's (two refits of the same encoders): each task from the "
                            "version that does it best, exactly as that version computes it")
    new_version_args(merge)
    merge.add_argument("--video-from", required=True, help="the version whose video-to-video heads (reconstruct, "
                                                           "the familiarity rebuild) are kept")
    merge.add_argument("--sentence-from", required=True, help="the version whose sentence-to-video heads are kept")
    merge.set_defaults(func=cmd_merge_heads)
    redraw = sub.add_parser(
        "redraw", help="a version whose video decoder draws video-to-video over the first frame's own scene (its "
                       "objects filled in) with another version's weights; sentence-to-video and the familiarity "
                       "rebuild stay that version's. With --rebuild-stride, only the familiarity rebuild graph is "
                       "drawn anew, every n-th frame, and the version must be recalibrated (slr calibrate)")
    new_version_args(redraw).add_argument("--from-version", required=True,
                                          help="the version whose graphs and weights are kept")
    how = redraw.add_mutually_exclusive_group()
    how.add_argument("--rebuild-stride", type=int,
                     help="the familiarity rebuild draws every n-th frame (ending on the last), the score's "
                          "rebuild-miss signal reads those: cheaper per cache miss (docs/performance.md)")
    how.add_argument("--reexport", action="store_true",
                     help="the video graphs exported anew from the version's weights by today's drawing code: the "
                          "same pixels to float rounding, through faster graphs where the code has them (calibration "
                          "kept)")
    how.add_argument("--clear-sentence-track", action="store_true",
                     help="sentence-to-video's background without the smear of the object along its track (the "
                          "track's pixels filled from the rest of the background); video-to-video, the familiarity "
                          "rebuild and the calibration kept")
    redraw.set_defaults(func=cmd_redraw)


def cmd_refit(args: argparse.Namespace) -> int:
    import torch

    from cli.release import no_saved_corpus
    from core.config import preset
    from export.calibrate import recalibrate
    from export.refit import RefitConfig, refit_version
    from export.refit_encoder import EncoderRefitConfig, refit_encoder_version
    from export.refit_sentence import SentenceRefitConfig, refit_sentence_version
    from model.data.corpus import load_split
    from model.familiarity import clip_boxes
    from model.inference import true_frames
    from model.precision import check_precision

    if no_saved_corpus(args.data_dir, "refit"):
        return 2
    try:  # before the corpus loads: a precision this CPU cannot train in is refused at once
        check_precision(args.precision or preset(args.preset).train.precision, torch.device("cpu"))
    except ValueError as e:
        print(f"slr refit: {e}", file=sys.stderr)
        return 2
    train = load_split(args.data_dir, "train", args.train_clips)
    every_val = load_split(args.data_dir, "val")
    val, familiar = every_val[:args.validation_clips], every_val[:args.calibration_clips]
    if not train or not val or train[0].frames is None or not train[0].attributes.get("track"):
        print(f"slr refit: {args.data_dir} holds no training and validation clips with frames and tracks "
              "(slr data synth)", file=sys.stderr)
        return 2
    root, tc = Path(args.root), preset(args.preset).train
    if args.precision:
        tc = dataclasses.replace(tc, precision=args.precision)
    configs: dict[str, Any] = {"video": RefitConfig, "sentence": SentenceRefitConfig,
                               "video-encoder": EncoderRefitConfig}
    try:
        rc = part_config(configs[args.part], args)
        if args.part == "sentence":
            directory, record = refit_sentence_version(root, args.from_version, args.version, train, val, tc, rc)
        elif args.part == "video-encoder":
            directory, record = refit_encoder_version(root, args.from_version, args.version, train, val, tc, rc)
        else:
            directory, record = refit_version(root, args.from_version, args.version, train, val, tc, rc)
    except (FileExistsError, ValueError) as e:
        print(f"slr refit: {e}", file=sys.stderr)
        return 2
    best = next(row for row in record["validation"] if row["step"] == record["best_step"])
    print(json.dumps(best))
    note = f"best validation at step {record['best_step']}"
    # The familiarity score reads the rebuild of the encoder's latent: recalibrate where the rebuild drew anew.
    if args.part != "sentence" and record.get("heads") != "sentence":
        calibration = recalibrate(root, args.version, true_frames(familiar), clip_boxes(familiar),
                                  f"{len(familiar)} validation clips of {Path(args.data_dir).name}")
        note += f"; familiarity threshold {calibration.threshold}"
    print(f"published {directory} ({note}); make it latest with: slr release {root} --model-version "
          f"{args.version} --data-dir {args.data_dir}")
    return 0


TUNING = ("steps", "lr", "seed", "ramp_share", "sentence_alpha_gain", "heads", "sprite_mask_weight",
          "caption_weight")  # each a config field


def part_config(cls: Any, args: argparse.Namespace) -> Any:
    """The refit's config (a dataclass) with the options given on the command line; ValueError for one given that
    the part does not take (--caption-weight for a decoder, say)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    given = {k: getattr(args, k) for k in TUNING if getattr(args, k) is not None}
    if unused := sorted(set(given) - fields):
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise ValueError(f"{flags} does not apply to --part {args.part}")
    return cls(**given)


def check_clips(data_dir: str, command: str) -> np.ndarray | None:
    """16 one-object validation clips [16,T,H,W,3] of a saved corpus that a derived version's graphs are checked on;
    None (said on stderr) where it has none."""
    from cli.release import no_saved_corpus
    from model.data.corpus import load_split
    from model.inference import single_object, true_frames

    if no_saved_corpus(data_dir, command):
        return None
    val = load_split(data_dir, "val", 256)
    if not val or val[0].frames is None:
        print(f"slr {command}: {data_dir} holds no validation clips with frames (slr data synth)", file=sys.stderr)
        return None
    return true_frames([val[i] for i in single_object(val)][:16])


def publish_derived(args: argparse.Namespace, command: str, build: Callable[[np.ndarray], Path], what: str) -> int:
    """A version derived from others without training: built from the corpus' check clips, then where it is and how
    to release it said; exit 2 on a usage error."""
    clips = check_clips(args.data_dir, command)
    if clips is None:
        return 2
    try:
        directory = build(clips)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"slr {command}: {e}", file=sys.stderr)
        return 2
    print(f"published {directory} ({what}); make it latest with: slr release {args.root} --model-version "
          f"{args.version} --data-dir {args.data_dir}")
    return 0


def cmd_merge_heads(args: argparse.Namespace) -> int:
    from export.merge_heads import merge_version

    return publish_derived(
        args, "merge-heads",
        lambda clips: merge_version(Path(args.root), args.video_from, args.sentence_from, args.version, clips),
        f"video-to-video from {args.video_from}, sentence-to-video from {args.sentence_from}; familiarity as "
        f"{args.video_from}'s")


def cmd_redraw(args: argparse.Namespace) -> int:
    from export.redraw import clear_track_version, redraw_version, reexport_version, restride_version

    if args.clear_sentence_track:
        return publish_derived(
            args, "redraw",
            lambda clips: clear_track_version(Path(args.root), args.from_version, args.version, clips),
            f"{args.from_version}'s weights; sentence-to-video drawn over its background with the track cleared")
    if args.reexport:
        return publish_derived(
            args, "redraw", lambda clips: reexport_version(Path(args.root), args.from_version, args.version, clips),
            f"{args.from_version}'s weights and calibration, its video graphs exported anew by today's drawing code")
    if args.rebuild_stride is not None:
        return publish_derived(
            args, "redraw",
            lambda clips: restride_version(Path(args.root), args.from_version, args.version, args.rebuild_stride,
                                           clips),
            f"{args.from_version}'s graphs, its familiarity rebuild drawing every {args.rebuild_stride} frame(s); "
            f"uncalibrated: first slr calibrate {args.root} --model-version {args.version} --data-dir {args.data_dir}")
    return publish_derived(
        args, "redraw", lambda clips: redraw_version(Path(args.root), args.from_version, args.version, clips),
        f"video-to-video over the first frame's scene, {args.from_version}'s weights; sentence-to-video and "
        f"familiarity as {args.from_version}'s")
