"""`slr serve` (the HTTP service), and `slr caption` / `slr generate`: the service's own predictor on local files and
sentences, in process, with no server."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
            for w in [*(await predictor.verdict(latent)).warnings, *out.cut_off()]:
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
    for warning in (await predictor.verdict(latent)).warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.out} ({len(gif)} bytes, {frames.shape[0]} frames, "
          f"{frames.shape[2] * scale}x{frames.shape[1] * scale})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(generate_gif(args))


def add_serve_parsers(sub: Any) -> None:
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
