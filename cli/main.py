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
import sys

from cli.data import add_data_parser, add_samples_parser
from cli.evaluate import add_eval_parser
from cli.export import add_export_parsers
from cli.refit import add_refit_parser
from cli.release import add_release_parser
from cli.serve import BAD_INPUT, add_serve_parsers
from cli.train import add_train_parser


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("star-slr")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"slr (star-slr) {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parser(sub)
    add_train_parser(sub)
    add_eval_parser(sub)
    add_export_parsers(sub)
    add_release_parser(sub)
    add_refit_parser(sub)
    add_serve_parsers(sub)
    add_samples_parser(sub)
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
