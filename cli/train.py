"""`slr train`: a preset (and `--set` overrides) trained on a corpus into a run folder (model/train.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from cli.data import add_data_args, corpus_source, load_source
from core.config import PRESET_TABLE, PRESETS, preset


def check_video_data(corpus: Any, sentences_only: bool) -> None:
    """A corpus without video refuses to train unless the person asked for the sentence tasks alone."""
    from model.data.corpus import DataError

    if corpus.meta.get("sentences_only") and not sentences_only:
        raise DataError(f"{corpus.name}: no video data (no feature folder or video files): the video channel would "
                        "learn nothing; pass --sentences-only to train on the captions alone (paraphrase only)")


def cmd_train(args: argparse.Namespace) -> int:
    import warnings

    import torch

    from model.distributed import wants_cuda
    from model.precision import check_precision
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
    try:
        p.train.check_choices()
        check_precision(p.train.precision, torch.device("cuda" if wants_cuda(args.device) else "cpu"))
    except ValueError as e:
        print(f"slr train: {e}", file=sys.stderr)
        return 2
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


def add_train_parser(sub: Any) -> None:
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
