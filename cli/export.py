"""`slr export`, `slr calibrate` and `slr export-variant`: a run frozen into ONNX graphs beside the other versions,
an exported version's familiarity recalibrated from its own graphs, and a cheaper encoder derived from a version."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.data import load_source, run_source

if TYPE_CHECKING:  # numpy is imported by the commands that need it: `slr --version` stays light
    import numpy as np

VARIANT_CHOICES = ("int8-static", "int8", "fp16", "optimized")  # export/quantize.py: VARIANTS (imported lazily)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """The familiarity calibration of an exported version, from its own graphs and the corpus' validation clips."""

    from export.calibrate import recalibrate
    from model.data.corpus import load_split
    from model.familiarity import clip_boxes

    val = load_split(args.data_dir, "val", args.calibration_clips)  # the training split (a gigabyte) stays on disk
    if not val or val[0].frames is None:
        raise SystemExit(f"{args.data_dir}: calibrate needs a saved corpus of frames with a validation split")
    video = clip_frames(val)
    calibration = recalibrate(Path(args.artifacts), args.model_version, video, clip_boxes(val),
                              f"{len(val)} validation clips of {Path(args.data_dir).name}", args.as_version)
    where = f"as {args.as_version}, beside it (slr release makes it latest)" if args.as_version else "in place"
    print(f"calibrated {args.artifacts} ({args.model_version or 'latest'}) on {calibration.source}, {where}: "
          f"threshold {calibration.threshold}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from export.onnx_export import export_run

    run = Path(args.run)
    sample_video, sample_sentences, calibration = None, None, None
    if (run / "run.json").exists():
        corpus = load_source(run_source(run))
        clips = corpus.splits["test"][: args.parity_clips]
        if clips and clips[0].frames is not None:
            sample_video = np.stack([c.frames for c in clips]).astype(np.float32) / 255.0
            calibration = corpus.splits["val"][: args.calibration_clips]
        sample_sentences = [c.captions[0] for c in clips]
    if args.check and not args.latest:
        raise SystemExit("--check measures the root's latest: slr release rewrites check.json when latest moves")
    path = export_run(run, args.out, version=args.version, sample_video=sample_video,
                      sample_sentences=sample_sentences, quantize=args.quantize, calibration_clips=calibration,
                      update_latest=args.latest)
    print(f"exported {path}")
    if args.check:
        from cli.check import write_check

        check = write_check(args.out)
        print(f"check figures (through the ONNX engine) in {check}:\n{check.read_text()}")
    return 0


def variant_clips(cfg: Any, data: str | None, split: str, n: int, seed: int) -> Any:
    """[N,T,H,W,3] float32 clips at the model's frame shape: the first n of a saved corpus's split, or (no corpus)
    n synthetic clips generated from `seed`."""

    if data:
        from model.data.corpus import load_split

        clips = load_split(data, split, n)
    else:
        from model.data.synthetic import generate

        corpus = generate(n, seed=seed, frames=cfg.frames, height=cfg.height, width=cfg.width)
        clips = [c for s in ("train", "val", "test") for c in corpus.splits[s]][:n]
    if not clips or clips[0].frames is None:
        raise SystemExit(f"no frames in the {split} split of {data}")
    if clips[0].frames.shape != (cfg.frames, cfg.height, cfg.width, 3):
        raise SystemExit(f"{data}: clips of {clips[0].frames.shape}, the model reads "
                         f"{(cfg.frames, cfg.height, cfg.width, 3)}")
    return clip_frames(clips)


def clip_frames(clips: list[Any]) -> np.ndarray:
    """[N,T,H,W,3] float32 in [0, 1] of clips that all carry frames (their callers checked the corpus reads frames)."""
    import numpy as np

    frames = [c.frames for c in clips if c.frames is not None]
    if len(frames) != len(clips):
        raise SystemExit("some clips carry no frames: this needs a corpus of frames")
    return np.stack(frames).astype(np.float32) / 255.0


VARIANT_CALIBRATION_SEED = 20261204  # generated calibration clips (no --calibration-data): a seed no run uses


def cmd_export_variant(args: argparse.Namespace) -> int:
    from core.graph_contract import ENCODER_V
    from core.manifest import Manifest, resolve_version_dir
    from export.variants import derive_version

    if args.check and not args.latest:
        raise SystemExit("--check measures the root's latest version: pass --latest with it")
    root = Path(args.root)
    cfg = Manifest.read(resolve_version_dir(root, args.source)).model
    calibration = None
    if args.variant == "int8-static":
        calibration = variant_clips(cfg, args.calibration_data, "train", args.calibration_clips,
                                    VARIANT_CALIBRATION_SEED)
    sample = variant_clips(cfg, args.calibration_data, "test", args.parity_clips, VARIANT_CALIBRATION_SEED + 1)
    path = derive_version(root, args.source, args.version, args.variant, calibration=calibration,
                          sample_video=sample, update_latest=args.latest)
    report = Manifest.read(path).quantization or {}
    print(f"exported {path} ({args.variant} encoder_v of {report.get('source_version')}): "
          f"{json.dumps(report.get(ENCODER_V))}")
    if args.check:
        from cli.check import write_check

        check = write_check(root)
        print(f"check figures (through the ONNX engine) in {check}:\n{check.read_text()}")
    return 0


def add_export_parsers(sub: Any) -> None:
    ex = sub.add_parser("export", help="export a run to ONNX per channel configuration, parity-checked")
    ex.add_argument("run", help="run folder (or checkpoint file)")
    ex.add_argument("--out", required=True, help="artifacts root: <out>/<version>/ and <out>/latest")
    ex.add_argument("--version", help="version name (default: UTC time + checkpoint hash)")
    ex.add_argument("--quantize", choices=("int8", "fp16"),
                    help="also quantise the graphs; accuracy cost in the manifest")
    ex.add_argument("--parity-clips", type=int, default=16, help="test clips used for the parity check")
    ex.add_argument("--calibration-clips", type=int,
                    help="validation clips that calibrate the familiarity score (default: all; core/familiarity.py)")
    ex.add_argument("--no-latest", dest="latest", action="store_false",
                    help="publish the version beside the others without moving `latest` (slr release does, "
                         "through the release gate)")
    ex.add_argument("--check", action="store_true",
                    help="write check.json: caption accuracy of the exported graphs on a fixed check set "
                         "(what a shipped model is re-tested against)")
    ex.set_defaults(func=cmd_export)

    cal = sub.add_parser("calibrate", help="recalibrate an exported version's familiarity score from its own graphs "
                                           "(the manifest's `familiarity` entry; the graphs are untouched)")
    cal.add_argument("artifacts", help="artifacts root (or a version folder)")
    cal.add_argument("--model-version", help="version folder to recalibrate (default: the root's `latest`)")
    cal.add_argument("--data-dir", required=True, help="a saved corpus (slr data synth): its validation clips")
    cal.add_argument("--calibration-clips", type=int, help="validation clips to calibrate on (default: all)")
    cal.add_argument("--as-version", help="publish the recalibrated model as a new version beside it instead of "
                                          "rewriting it in place (latest untouched: slr release gates it)")
    cal.set_defaults(func=cmd_calibrate)

    var = sub.add_parser("export-variant",
                         help="publish a cheaper copy of an exported version beside it: its video encoder replaced "
                              "by a variant (no checkpoint needed)")
    var.add_argument("root", help="artifacts root holding the source version (e.g. models/default)")
    var.add_argument("--variant", required=True, choices=VARIANT_CHOICES,
                     help="int8-static: QDQ int8, calibrated on training clips; int8: dynamic int8 (the convolutions "
                          "stay fp32); fp16: fp16 weights; optimized: onnxruntime's extended optimisations, saved")
    var.add_argument("--version", required=True, help="name of the new version")
    var.add_argument("--from", dest="source", help="source version (default: the root's latest)")
    var.add_argument("--calibration-data",
                     help="a saved corpus (slr data synth): its train split calibrates, its test split is compared "
                          "(default: synthetic clips generated at the model's frame shape)")
    var.add_argument("--calibration-clips", type=int, default=512, help="training clips that calibrate int8-static")
    var.add_argument("--parity-clips", type=int, default=256,
                     help="test clips on which the variant is compared with its source")
    var.add_argument("--latest", action="store_true", help="point the root's latest at the new version")
    var.add_argument("--check", action="store_true", help="with --latest: rewrite the root's check.json")
    var.set_defaults(func=cmd_export_variant)
