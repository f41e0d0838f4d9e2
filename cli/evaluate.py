"""`slr eval`: a run measured on a split (model/evaluate.py), its tables written beside the checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.data import add_data_args, corpus_source, load_source, run_source


def cmd_eval(args: argparse.Namespace) -> int:
    from model.evaluate import evaluate_checkpoint
    from model.reports import markdown_table, write_report

    run = Path(args.run)
    source = corpus_source(args) if args.data else run_source(run)
    if args.outside and not (Path(args.outside) / "labels.json").exists():
        from model.data.outside_writers import build_outside_set

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


def add_eval_parser(sub: Any) -> None:
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
