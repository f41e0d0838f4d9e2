"""`slr release`: make an exported version its root's `latest` through the release gate (export/gate.py)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

REFUSED = 3  # exit status of a refused release (2 is a usage error)


def add_release_parser(sub: Any) -> None:
    rel = sub.add_parser(
        "release", help="make an exported version `latest`, only if no caption, video or familiarity figure falls "
                        "against the current latest past noise (a paired test on the same clips)")
    rel.add_argument("root", help="artifacts root holding both versions (e.g. models/default)")
    rel.add_argument("--model-version", required=True, help="the candidate version folder")
    rel.add_argument("--data-dir", required=True, help="a saved corpus (slr data synth): its test split is compared")
    rel.add_argument("--outside", help="the outside set's folder (slr data outside): its files are compared too")
    rel.add_argument("--max-clips", type=int, help="compare on the first N test clips only (default: all)")
    rel.add_argument("--dry-run", action="store_true",
                     help="print the comparison (and exit 3 where the gate would refuse) without moving latest")
    rel.add_argument("--against", help="compare with this version instead of the current latest (with --dry-run)")
    rel.add_argument("--outcome-cache", default=os.environ.get("SLR_GATE_CACHE"),
                     help="a folder keeping each version's per-clip outcomes, keyed by its graphs, the clips and the "
                          "readers' code, so a version is read once (default: $SLR_GATE_CACHE; unset: not kept)")
    rel.add_argument("--reason", help="publish despite regressions; the reason is kept in the manifest and "
                                      "shown by /readyz")
    rel.set_defaults(func=cmd_release)


def no_saved_corpus(data_dir: str, command: str) -> bool:
    """True, after one line on stderr, where `data_dir` holds no saved corpus (a usage error: exit 2)."""
    from model.data.corpus import CORPUS_JSON

    if (Path(data_dir) / CORPUS_JSON).is_file():
        return False
    print(f"slr {command}: {data_dir} holds no saved corpus ({CORPUS_JSON}): the one the model was trained on, made "
          "by slr data synth", file=sys.stderr)
    return True


def refresh_check(root: Path) -> None:
    """check.json describes the root's latest (cli/check.py): rewritten when latest moves."""
    from cli.check import CHECK_FILE, write_check

    if (root / CHECK_FILE).exists():
        write_check(root)


def cmd_release(args: argparse.Namespace) -> int:
    from export.gate import GateRefused, release, run_gate
    from model.data.corpus import load_split
    from model.data.outside import load_outside_set

    if no_saved_corpus(args.data_dir, "release"):
        return 2
    clips = load_split(args.data_dir, "test", args.max_clips)
    if not clips or clips[0].frames is None or not clips[0].attributes:
        print(f"slr release: {args.data_dir} has no test clips with frames and attributes (slr data synth)",
              file=sys.stderr)
        return 2
    if args.outside and not (Path(args.outside) / "labels.json").is_file():
        print(f"slr release: {args.outside} holds no outside set (labels.json): make one with slr data outside --out "
              f"{args.outside}", file=sys.stderr)
        return 2
    files = load_outside_set(args.outside) if args.outside else []
    if args.against and not args.dry_run:
        print("slr release: --against compares with another version than latest: only with --dry-run", file=sys.stderr)
        return 2
    cache = Path(args.outcome_cache) if args.outcome_cache else None
    if args.dry_run:
        result = run_gate(Path(args.root), args.model_version, clips, files, baseline=args.against, cache=cache)
        print(result.table())
        print(f"{result.candidate} against {result.baseline}: "
              + ("passes" if result.passed else f"would be refused ({', '.join(result.regressions)})"))
        return 0 if result.passed else REFUSED
    try:
        result = release(Path(args.root), args.model_version, clips, files, args.reason, cache)
    except GateRefused as refused:
        print(f"slr release: refused: {refused}", file=sys.stderr)
        return REFUSED
    refresh_check(Path(args.root))
    if not result.comparisons:
        print(f"released {result.candidate} as latest (nothing to compare with: latest was {result.baseline})")
        return 0
    print(result.table())
    note = f" despite {', '.join(result.regressions)}: {result.reason}" if result.regressions else ""
    print(f"released {result.candidate} as latest of {args.root} (was {result.baseline}){note}")
    return 0
