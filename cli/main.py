"""`slr`: generate data, train, evaluate, export and serve the star model.

  slr data synth --out data/synthetic --preset demo      generate the synthetic corpus
  slr data prepare my_videos --out data/mine --preset demo   your own video files + captions -> a frame store
  slr train --data synthetic --preset demo --out runs/demo
  slr train --data store --data-dir data/mine --preset demo --out runs/mine
  slr eval runs/demo --split test                        BLEU/METEOR/MSE/attribute tables
  slr export runs/demo --out artifacts                   ONNX graphs + manifest, parity-checked
  slr export-variant artifacts --variant int8-static --version v-int8   a cheaper encoder beside a version
  slr serve --artifacts models/default --port 8000       the HTTP service and web page (no torch in this process)
  slr caption clip.mp4 other.gif                         caption local files with the same engine, no server
  slr generate "a red square moves to the right" -o out.gif
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.refit import add_refit_parser
from cli.release import add_release_parser
from core.config import PRESET_TABLE, PRESETS, preset

if TYPE_CHECKING:  # numpy is imported by the commands that need it: `slr --version` stays light
    import numpy as np

CORPORA = ("synthetic", "msvd", "msrvtt", "store")
VARIANT_CHOICES = ("int8-static", "int8", "fp16", "optimized")  # export/quantize.py: VARIANTS (imported lazily)


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
        from model.data.augment import roundtrip_corpus_share

        # Real codecs (h264, vp8/vp9, mpeg4, GIF) on a share of the training clips, once, at data time.
        corpus.splits["train"] = roundtrip_corpus_share(corpus.splits["train"], args.codec_share, args.seed)
        corpus.meta["codec_share"] = args.codec_share
    path = corpus.save(args.out)
    print(f"wrote {sum(len(v) for v in corpus.splits.values())} clips "
          f"({', '.join(f'{k} {len(v)}' for k, v in corpus.splits.items())}) to {path}")
    return 0


def cmd_data_outside(args: argparse.Namespace) -> int:
    from model.data.outside import build_outside_set

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


def check_video_data(corpus: Any, sentences_only: bool) -> None:
    """A corpus without video refuses to train unless the person asked for the sentence tasks alone."""
    from model.data.corpus import DataError

    if corpus.meta.get("sentences_only") and not sentences_only:
        raise DataError(f"{corpus.name}: no video data (no feature folder or video files): the video channel would "
                        "learn nothing; pass --sentences-only to train on the captions alone (paraphrase only)")


def cmd_train(args: argparse.Namespace) -> int:
    import warnings

    from model.train import train

    source = corpus_source(args)
    with warnings.catch_warnings():  # what a loader warns of is checked and said below
        warnings.simplefilter("ignore", UserWarning)
        corpus = load_source(source)
    check_video_data(corpus, args.sentences_only)
    if args.min_count is not None:
        corpus.meta["vocab_min_count"] = args.min_count
    if args.word_percentile is not None:
        corpus.meta["word_percentile"] = args.word_percentile
    p = preset(args.preset)
    if args.steps:
        p.train.full_steps, p.train.partial_steps = args.steps, max(1, args.steps // 3)
    if args.finetune_steps:
        p.train.finetune_steps = args.finetune_steps
    if args.time_budget is not None:
        p.train.time_budget_s = args.time_budget or None
    if args.threads is not None:
        p.train.threads = args.threads
    apply_overrides(p, args.set or [])
    # Under torchrun every rank runs this command; rank 0 alone writes and reports (model/train.py).
    if args.again and not args.resume:
        print("slr train: --again runs a finished phase of a run once more: pass --resume with it", file=sys.stderr)
        return 2
    ckpt = train(corpus, p, args.out, seed=args.seed, resume=args.resume, source=source, device=args.device,
                 again=tuple(args.again or ()))
    if os.environ.get("RANK", "0") == "0":
        print(f"checkpoint: {ckpt}")
    return 0


def apply_overrides(p: Any, pairs: list[str]) -> None:
    """`--set name=value` on a preset: a ModelConfig or TrainConfig field, the value parsed as JSON (a bare word
    as a string), e.g. `--set lambda_pose=0 --set video_decoder=layers`."""
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        target = next((c for c in (p.train, p.model) if name in c.__dataclass_fields__), None)
        if not sep or target is None:
            raise SystemExit(f"--set {pair!r}: expected name=value with a ModelConfig or TrainConfig field name")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        setattr(target, name, tuple(value) if isinstance(value, list) else value)


def cmd_eval(args: argparse.Namespace) -> int:
    from model.evaluate import evaluate_checkpoint
    from model.reports import markdown_table, write_report

    run = Path(args.run)
    source = corpus_source(args) if args.data else run_source(run)
    if args.outside and not (Path(args.outside) / "labels.json").exists():
        from model.data.outside import build_outside_set

        build_outside_set(args.outside, seed=0)
    corpus = load_source(source)
    results = evaluate_checkpoint(run / "checkpoint.pt", corpus, args.split, args.beam,
                                  args.max_clips, meteor=not args.no_meteor, outside=args.outside, ood=args.ood)
    js, md = write_report(results, run, f"eval_{args.split}")
    print(markdown_table(results))
    print(f"wrote {js} and {md}")
    if args.sheet and corpus.splits[args.split] and corpus.splits[args.split][0].frames is not None:
        from model.reports import caption_sheet

        print(caption_sheet(run / "checkpoint.pt", corpus.splits[args.split][:args.sheet_clips], args.sheet,
                            args.beam))
    return 0


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
                              f"{len(val)} validation clips of {Path(args.data_dir).name}")
    print(f"calibrated {args.artifacts} ({args.model_version or 'latest'}) on {calibration.source}: "
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


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("star-slr")
    except PackageNotFoundError:
        return "unknown (not installed)"


CHECKOUT = Path(__file__).resolve().parents[1]  # an editable install (make install) runs from the checkout
SHIPPED = "models/default"
BAD_INPUT = 2  # exit status of a local command given a bad file, sentence or output path (1: other failures)


def default_artifacts(given: str | None) -> str:
    """The artifacts root a command serves: --artifacts, else SLR_ARTIFACTS, else models/default in the working
    folder, else the checkout's own shipped model, whatever folder `slr` runs from."""
    import os

    if given:
        return given
    if os.environ.get("SLR_ARTIFACTS"):
        return os.environ["SLR_ARTIFACTS"]
    here = Path(SHIPPED)
    return str(here if (here / "latest").exists() else CHECKOUT / SHIPPED)


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    args.artifacts = default_artifacts(args.artifacts)
    if args.artifacts:
        if not Path(args.artifacts).is_dir():
            raise SystemExit(f"slr serve: --artifacts {args.artifacts} is not a folder (it holds `latest` and "
                             "version folders, as written by slr export)")
        os.environ["SLR_ARTIFACTS"] = str(Path(args.artifacts).resolve())  # read by the app factory's settings
    if args.model_version:
        os.environ["SLR_MODEL_VERSION"] = args.model_version
    from service.server import run

    run(host=args.host, port=args.port)
    return 0


def local_predictor(artifacts: str | None) -> Any:
    """The service's own Predictor (engine, in-process cache, no Redis, no batching wait), for the local commands."""
    from service.app import load_engine
    from service.metrics import Metrics
    from service.predictor import build_predictor
    from service.settings import Settings

    settings = Settings(redis_url="", max_wait_ms=0.0, artifacts=default_artifacts(artifacts))
    return build_predictor(load_engine(settings), settings, Metrics(), local=True)


def local_error(exc: Exception, name: str | None = None, head: bytes = b"") -> str | None:
    """The message the HTTP service would give for a bad file or sentence; None for anything else."""
    from core.media import MediaError
    from service.errors import ServiceError, explain_media_error

    if isinstance(exc, MediaError):
        return explain_media_error(exc, name, head)
    return exc.message if isinstance(exc, ServiceError) else None


async def caption_files(args: argparse.Namespace) -> int:
    from service.errors import ServiceError
    from service.predictor import Upload

    predictor, failed = local_predictor(args.artifacts), 0
    try:
        for path in args.files:
            data = b""
            try:
                data = Path(path).read_bytes()
                latent = await predictor.encode(Upload(data, Path(path).name), None)
                out = await predictor.describe(latent, args.num - 1, args.seed, args.beam, None, distinct=True)
            except (OSError, ValueError, ServiceError) as e:
                failed += 1
                print(f"{path}: error: {local_error(e, Path(path).name, data[:64]) or e}", file=sys.stderr)
                continue
            print(f"{path}: " + " | ".join([out.caption, *out.samples]))
            for w in [*predictor.verdict(latent).warnings, *out.cut_off()]:
                print(f"{path}: warning: {w.message}", file=sys.stderr)
            if len(out.samples) < args.num - 1:
                print(f"{path}: note: {1 + len(out.samples)} distinct captions of {args.num} asked", file=sys.stderr)
    finally:
        await predictor.close()
    return BAD_INPUT if failed else 0


def cmd_caption(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(caption_files(args))


async def generate_gif(args: argparse.Namespace) -> int:
    from service.errors import ServiceError
    from service.media import display_scale

    out = Path(args.out)
    if not out.parent.is_dir():
        print(f"error: cannot write {out}: the folder {out.parent} does not exist", file=sys.stderr)
        return BAD_INPUT
    predictor = local_predictor(args.artifacts)
    try:
        latent = await predictor.encode(None, args.sentence)
        frames = await predictor.video(latent, condition_on_first_frame=False)
        scale = display_scale(frames.shape[2], args.scale)
        gif = await predictor.render(frames, "gif", scale, args.fps)
    except (ValueError, ServiceError) as e:
        print(f"error: {local_error(e) or e}", file=sys.stderr)
        return BAD_INPUT
    finally:
        await predictor.close()
    try:
        out.write_bytes(gif)
    except OSError as e:
        print(f"error: cannot write {out}: {e.strerror}", file=sys.stderr)
        return BAD_INPUT
    unknown = predictor.engine.vocab.unknown_words(args.sentence)
    if unknown:
        print(f"note: words the model does not know (read as <unk>): {', '.join(unknown)}", file=sys.stderr)
    for warning in predictor.verdict(latent).warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.out} ({len(gif)} bytes, {frames.shape[0]} frames, "
          f"{frames.shape[2] * scale}x{frames.shape[1] * scale})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(generate_gif(args))


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

    from model.data.synthetic import render_clip

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"slr (star-slr) {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

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

    train = sub.add_parser("train", help="train the star model: full-model, partial-model, optional fine-tuning")
    add_data_args(train, required=True)
    train.add_argument("--preset", choices=PRESETS, default="demo",
                       help="; ".join(f"{name}: {spec.description}" for name, spec in PRESET_TABLE.items()))
    train.add_argument("--out", required=True, help="run folder: checkpoint.pt, vocab.json, run.json, train_log.jsonl")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps", type=int, help="override full-model steps (partial = steps / 3)")
    train.add_argument("--finetune-steps", type=int, help="add task fine-tuning (video-to-sentence) steps")
    train.add_argument("--time-budget", type=float, help="seconds for all phases (0 = no budget)")
    train.add_argument("--resume", action="store_true", help="continue after the last finished phase")
    train.add_argument("--again", action="append", metavar="PHASE", choices=("full", "partial", "finetune",
                                                                          "finetune_video"),
                       help="with --resume: run this finished phase once more from the checkpoint's weights, with the "
                            "preset's and --set's settings (e.g. finetune_video with a new term; repeatable)")
    train.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="override a ModelConfig / TrainConfig field of the preset (repeatable; value as JSON)")
    train.add_argument("--threads", type=int,
                       help="torch threads (default: all cores; 1 is steadier on a busy machine)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="auto: a GPU when torch sees one (under torchrun: one per local rank, nccl), else the "
                            "CPU (gloo); the preset's batch size is the global batch over all processes")
    train.add_argument("--sentences-only", action="store_true",
                       help="train on captions alone where the corpus has no video data (otherwise refused)")
    train.add_argument("--min-count", type=int,
                       help="words seen fewer times in the training split are read as <unk> (store default: 2)")
    train.add_argument("--word-percentile", type=float,
                       help="captions are cut at this percentile of their lengths, plus room (store default: 99)")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a run: BLEU@1-4, METEOR, MSE, attribute accuracy")
    ev.add_argument("run", help="run folder from slr train")
    ev.add_argument("--split", default="test", choices=("train", "val", "test"))
    ev.add_argument("--beam", type=int, default=1, help="beam size (1 = greedy)")
    ev.add_argument("--max-clips", type=int, help="evaluate the first N clips only")
    ev.add_argument("--no-meteor", action="store_true", help="skip METEOR (needs Java)")
    ev.add_argument("--outside", help="also caption the outside test set in this folder (built there if missing): "
                                      "clips drawn by ffmpeg and Pillow, encoded to mp4/webm/avi/mov/gif")
    add_data_args(ev, required=False)
    ev.add_argument("--ood", action="store_true",
                    help="also measure the familiarity score: the share flagged on the split, the outside set and an "
                         "out-of-domain set (photos, textures, crowds, text, a road, a UI, empty clips)")
    ev.add_argument("--sheet", help="also write a contact sheet (PNG): clips of the split with their captions")
    ev.add_argument("--sheet-clips", type=int, default=12, help="clips on the contact sheet")
    ev.set_defaults(func=cmd_eval, preset="demo")

    ex = sub.add_parser("export", help="export a run to ONNX per channel configuration, parity-checked")
    ex.add_argument("run", help="run folder (or checkpoint file)")
    ex.add_argument("--out", required=True, help="artifacts root: <out>/<version>/ and <out>/latest")
    ex.add_argument("--version", help="version name (default: UTC time + checkpoint hash)")
    ex.add_argument("--quantize", choices=("int8", "fp16"),
                    help="also quantise the graphs; accuracy cost in the manifest")
    ex.add_argument("--parity-clips", type=int, default=16, help="test clips used for the parity check")
    ex.add_argument("--calibration-clips", type=int, default=1000,
                    help="validation clips that calibrate the familiarity score (core/familiarity.py)")
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
    cal.add_argument("--calibration-clips", type=int, default=1000, help="validation clips to calibrate on")
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

    add_release_parser(sub)
    add_refit_parser(sub)

    serve = sub.add_parser("serve", help="serve the exported model over HTTP (settings: SLR_* environment)")
    serve.add_argument("--host", help="bind address (default SLR_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default SLR_PORT or 8000)")
    serve.add_argument("--artifacts", help="artifacts root to serve (default SLR_ARTIFACTS, else models/default here "
                                            "or in the checkout)")
    serve.add_argument("--model-version", help="version folder to serve (default: the root's `latest`)")
    serve.set_defaults(func=cmd_serve)

    cap = sub.add_parser("caption", help="caption local video files with the service's engine (no server)")
    cap.add_argument("files", nargs="+", help="mp4, webm, avi, mov, gif or .npy files")
    cap.add_argument("--artifacts",
                     help="artifacts root (default SLR_ARTIFACTS, else models/default here or in the checkout)")
    cap.add_argument("--num", type=int, default=1, help="distinct captions per file (the mean's first)")
    cap.add_argument("--seed", type=int, default=0)
    cap.add_argument("--beam", type=int, default=1, help="beam size (1 = greedy)")
    cap.set_defaults(func=cmd_caption)

    gen = sub.add_parser("generate", help="generate a GIF from a sentence with the service's engine (no server)")
    gen.add_argument("sentence")
    gen.add_argument("-o", "--out", required=True, help="GIF to write")
    gen.add_argument("--artifacts",
                     help="artifacts root (default SLR_ARTIFACTS, else models/default here or in the checkout)")
    gen.add_argument("--scale", type=int, choices=range(1, 9), metavar="1..8",
                     help="upsampling (default: at least 256 px wide)")
    gen.add_argument("--fps", type=float, default=8.0)
    gen.set_defaults(func=cmd_generate)

    smp = sub.add_parser("samples", help="draw the web page's sample clips (GIFs + samples.json)")
    smp.add_argument("--out", default="service/static/samples")
    smp.add_argument("--frames", type=int, default=16)
    smp.add_argument("--height", type=int, default=72)
    smp.add_argument("--width", type=int, default=128)
    smp.add_argument("--seed", type=int, default=0)
    smp.set_defaults(func=cmd_samples)
    return parser


def main(argv: list[str] | None = None) -> int:
    from model.data.corpus import DataError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DataError as e:  # a folder or corpus not as expected: one line, the usage error status
        print(f"slr: error: {e}", file=sys.stderr)
        return BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
