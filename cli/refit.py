"""`slr refit`: a new version whose video decoder is refitted on an exported version's frozen encoders
(export/refit.py), recalibrated, and published beside it; `slr release` then decides whether it becomes `latest`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_refit_parser(sub: Any) -> None:
    ref = sub.add_parser(
        "refit", help="retrain an exported version's video decoder (sentence-to-video's own heads included) on its "
                      "frozen encoders, from its own graphs: captions and encoders stay byte-identical")
    ref.add_argument("root", help="artifacts root (e.g. models/default); the new version is published beside")
    ref.add_argument("--from-version", required=True, help="the version whose encoders and decoder start the refit")
    ref.add_argument("--version", required=True, help="the new version's folder name")
    ref.add_argument("--data-dir", required=True, help="the saved corpus the version was trained on (slr data synth)")
    ref.add_argument("--preset", default="quality", help="whose loss weights and grad clip to train with")
    ref.add_argument("--steps", type=int, default=6000)
    ref.add_argument("--lr", type=float, default=1e-3)
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--train-clips", type=int, help="the first N training clips only (default: all)")
    ref.add_argument("--calibration-clips", type=int, default=1000, help="validation clips to recalibrate on")
    ref.set_defaults(func=cmd_refit)


def cmd_refit(args: argparse.Namespace) -> int:
    from cli.release import no_saved_corpus
    from core.config import preset
    from export.calibrate import recalibrate
    from export.refit import RefitConfig, refit_version
    from model.data.corpus import load_split
    from model.familiarity import clip_boxes
    from model.inference import true_frames

    if no_saved_corpus(args.data_dir, "refit"):
        return 2
    train = load_split(args.data_dir, "train", args.train_clips)
    val = load_split(args.data_dir, "val", args.calibration_clips)
    if not train or not val or train[0].frames is None or not train[0].attributes.get("track"):
        print(f"slr refit: {args.data_dir} holds no training and validation clips with frames and tracks "
              "(slr data synth)", file=sys.stderr)
        return 2
    root = Path(args.root)
    rc = RefitConfig(steps=args.steps, lr=args.lr, seed=args.seed)
    try:
        directory, record = refit_version(root, args.from_version, args.version, train, val,
                                          preset(args.preset).train, rc)
    except (FileExistsError, ValueError) as e:
        print(f"slr refit: {e}", file=sys.stderr)
        return 2
    calibration = recalibrate(root, args.version, true_frames(val), clip_boxes(val),
                              f"{len(val)} validation clips of {Path(args.data_dir).name}")
    print(json.dumps(record["validation"][-1]))
    print(f"published {directory} (best validation at step {record['best_step']}; familiarity threshold "
          f"{calibration.threshold}); make it latest with: slr release {root} --model-version {args.version} "
          f"--data-dir {args.data_dir}")
    return 0
