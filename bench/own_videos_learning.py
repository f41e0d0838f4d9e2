"""Own videos, learning and not only running (issue 34): does a model trained from video files and free-form
captions caption as well as one trained on the same clips in memory?

    python -m bench.own_videos_learning --out DIR [--clips N] [--steps N] [--preset demo]

The synthetic corpus (at the preset's frame size and corpus size) is written out as real mp4 files in the MSR-VTT
layout (`videos/<video_id>.mp4`, `train_val_videodatainfo.json`, `test_videodatainfo.json`, the corpus' own split in
`split`), each clip with five captions of this module's own paraphrase templates instead of the generator's
sentences. The folder is prepared into a frame store as `slr data prepare` does, and two models are trained with the
same preset, seed and steps: (a) from the store, as `slr train --data store` does; (b) from the same clips in memory
with the corpus' own captions, as `slr train --data synthetic` does. Each captions its own test clips (the store's
are the mp4 files decoded, as serving would see them) and the captions are scored against the clips' known colour,
shape and motion (`model.data.attributes`). One JSON line per path, then a markdown table of both and the
difference in points; the target: the store path at most 5 points below on each of colour, shape and motion.

Letterboxed clips (the preset's `aspect_share`: a clip drawn at another aspect ratio, stored by the corpus with its
bars at the model's frame size) are written as what they stand for, a file of their own aspect ratio (the picture
inside the bars), so `slr data prepare` letterboxes them as the service does an upload of that shape. `--burned-bars`
writes them with the bars burned in instead: a file at the model's shape, which prepare cannot tell from a full
frame (measured: 11.9 points of shape below the in-memory path at 4,200 demo steps, docs/own_videos.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.support import FolderClip, write_video_folder
from core.config import Preset, preset
from core.frames import crop_box
from model.data.corpus import Clip, Corpus

PATHS = ("in memory", "store")
FIGURES = ("colour", "shape", "motion", "all")
# Issue 34: the store path within 5 points of the in-memory path on colour, shape and motion. Read one-sided (at most
# 5 points below): a store path that does better has lost nothing to the files.
TARGET_POINTS = 5.0
CAPTIONS_PER_CLIP = 5

# The paraphrases' own words. Every shape word and motion phrase holds a word `model.data.attributes` parses
# (SHAPE_SYNONYMS, MOTION_SYNONYMS), and no other template word does, so a caption in this vocabulary is scored
# as the generator's are; tests/bench/test_own_videos_learning.py parses every one back to its clip's truth.
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "dot", "round shape"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "triangular shape"),
    "diamond": ("diamond", "rhombus", "lozenge"),
    "star": ("star", "star shape"),
    "cross": ("cross", "plus sign", "plus shape"),
}
Predicate = tuple[str, str]  # (3rd person present, participle): "moves to the left", "moving to the left"
MOTION_WORDS: dict[str, tuple[Predicate, ...]] = {
    "left": (("moves to the left", "moving to the left"), ("slides left", "sliding left"),
             ("travels leftwards", "traveling leftwards"), ("drifts towards the left", "drifting towards the left"),
             ("shifts leftward", "shifting leftward")),
    "right": (("moves to the right", "moving to the right"), ("slides right", "sliding right"),
              ("travels rightwards", "traveling rightwards"),
              ("drifts towards the right", "drifting towards the right"), ("shifts rightward", "shifting rightward")),
    "up": (("moves up", "moving up"), ("rises", "rising"), ("floats upwards", "floating upwards"),
           ("climbs towards the top", "climbing towards the top"), ("goes upward", "going upward")),
    "down": (("moves down", "moving down"), ("falls", "falling"), ("sinks", "sinking"),
             ("drops downwards", "dropping downwards"), ("heads to the bottom", "heading to the bottom")),
    "grow": (("grows", "growing"), ("gets bigger", "getting bigger"), ("becomes larger", "becoming larger"),
             ("expands", "expanding"), ("increases in size", "increasing in size")),
    "shrink": (("shrinks", "shrinking"), ("gets smaller", "getting smaller"), ("becomes tinier", "becoming tinier"),
               ("contracts", "contracting"), ("decreases in size", "decreasing in size")),
    "bounce": (("bounces", "bouncing"), ("hops around", "hopping around"), ("jumps up and down", "jumping up and down"),
               ("bounces up and down", "bouncing up and down"), ("keeps bouncing", "bouncing again and again")),
    "still": (("stays still", "staying still"), ("does not move", "not moving"),
              ("remains stationary", "remaining stationary"), ("sits motionless", "sitting motionless"),
              ("stays in place", "staying in place")),
}
# One clause per template, its words in several orders (the colour last in one); {s} shape, {c} colour,
# {f} present, {p} participle. A clip's five captions take the five templates, one each. None is a sentence shape
# of the generator's (model/data/captions.py: _clause), so no paraphrase is one of the corpus' own captions.
CLAUSES: tuple[str, ...] = (
    "a {c} {s} {f} on the screen",
    "there's a {c} {s} {p}",
    "a {s} painted {c} can be seen {p}",
    "the {s} that {f} is {c}",
    "we watch a {c} {s} as it {f}",
)
SECOND_CLAUSES = (0, 3)  # the short templates, for a two-object clip's second object (captions stay ~16 words)
JOINERS = (" and ", " while ")
_ARTICLE = re.compile(r"\ba (?=[aeiou])")


def clause(template: str, obj: dict[str, Any], rng: random.Random) -> str:
    """One object in one template, with a shape word and a motion phrase drawn from the clip's own stream."""
    present, participle = rng.choice(MOTION_WORDS[obj["motion"]])
    return template.format(c=obj["colour"], s=rng.choice(SHAPE_WORDS[obj["shape"]]), f=present, p=participle)


def paraphrases(attributes: dict[str, Any], seed: int) -> list[str]:
    """A clip's five captions from its attributes; the main object first, as the generator's captions name it."""
    rng = random.Random(seed)
    objects = attributes.get("objects") or [attributes]
    out = []
    for template in CLAUSES:
        text = clause(template, objects[0], rng)
        if len(objects) > 1:
            second = CLAUSES[rng.choice(SECOND_CLAUSES)]
            text += rng.choice(JOINERS) + clause(second, objects[1], rng)
        out.append(_ARTICLE.sub("an ", text))
    return out


def folder_clips(corpus: Corpus, seed: int, scale: int = 1, own_captions: bool = False,
                 burned_bars: bool = False) -> list[FolderClip]:
    """Every clip as (id, frames, paraphrases, split) for bench.support.write_video_folder, its frames enlarged
    `scale` times (nearest neighbour); a letterboxed clip cut to its own picture unless `burned_bars`."""
    rows: list[FolderClip] = []
    for split, clips in corpus.splits.items():
        for clip in clips:
            if clip.frames is None:
                raise ValueError(f"{clip.clip_id}: the generator drew no frames")
            frames = clip.frames if burned_bars else crop_box(clip.frames, clip.attributes.get("frame_box"))
            frames = frames.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else frames
            own = list(clip.captions)
            captions = own if own_captions else paraphrases(clip.attributes, hash_seed(seed, clip.clip_id))
            rows.append((clip.clip_id, frames, captions, split))
    return rows


def hash_seed(seed: int, clip_id: str) -> int:
    """A clip's caption stream, stable across runs and corpus sizes (Python's str hash is salted per process)."""
    return zlib.crc32(f"{seed}:{clip_id}".encode())


def bench_preset(name: str, steps: int | None, threads: int = 0) -> Preset:
    """The preset (with `threads` torch threads), or with --steps its full- and partial-model steps cut to N in the
    preset's proportion; the video decoder's own fine-tuning is then dropped (it moves no weight a caption reads,
    model/phases.py: phases_for)."""
    p = preset(name)
    p.train = dataclasses.replace(p.train, threads=threads)
    if steps is None:
        return p
    tc = p.train
    full = max(1, round(steps * tc.full_steps / (tc.full_steps + tc.partial_steps)))
    p.train = dataclasses.replace(tc, full_steps=full, partial_steps=max(1, steps - full), finetune_video_steps=0)
    return p


def prepare(folder: Path, store: Path, preset_name: str, workers: int) -> Corpus:
    """`slr data prepare FOLDER --out STORE --preset P`, then the store as `slr train --data store` loads it."""
    from model.data.folder import read_folder
    from model.data.load import load_corpus
    from model.data.store import prepare_store

    plan = read_folder(folder)
    # force: the files were just written anew (a store of an earlier bench run is refused by their times)
    outcome = prepare_store(plan, store, preset(preset_name).model, preset_name, workers, force=True)
    if outcome.failed:
        raise RuntimeError(f"{outcome.failed} clips could not be read back: see {store / 'report.json'}")
    return load_corpus("store", store)


def train_timed(corpus: Corpus, p: Preset, out: Path, seed: int, source: dict[str, Any]) -> tuple[Path, float]:
    """model.train.train as `slr train` calls it; returns the checkpoint and the seconds it took."""
    from model.train import train

    start = time.monotonic()
    checkpoint = train(corpus, p, out, seed=seed, progress=sys.stderr.isatty(), source=source)
    return checkpoint, time.monotonic() - start


def score(checkpoint: Path, clips: Sequence[Clip], truths: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Greedy captions of the clips, scored against the generator's truth of each (looked up by clip id: a store's
    clips carry no attributes)."""
    from model.checkpoint import load_checkpoint
    from model.data.attributes import attribute_hits
    from model.inference import caption_clips

    ck = load_checkpoint(checkpoint)
    hits = attribute_hits(caption_clips(ck.model, ck.vocab, clips), [truths[c.clip_id] for c in clips])
    return {f: float(hits[f].mean()) for f in FIGURES}


def markdown(rows: dict[str, dict[str, Any]]) -> str:
    """Both paths' accuracies and the store's difference in points, with the target's verdict."""
    memory, store = rows["in memory"], rows["store"]
    lines = ["| figure | in memory (corpus captions) | store (mp4 + paraphrases) | store - in memory (points) |",
             "|---|---|---|---|"]
    for f in FIGURES:
        lines.append(f"| {f} | {100 * memory[f]:.1f}% | {100 * store[f]:.1f}% | {100 * (store[f] - memory[f]):+.1f} |")
    met = all((memory[f] - store[f]) * 100 <= TARGET_POINTS for f in FIGURES[:3])
    lines.append(f"\ntarget: store at most {TARGET_POINTS:g} points below on colour, shape and motion: "
                 f"{'met' if met else 'NOT met'} "
                 f"({store['test_clips']} test clips, {store['steps']} steps, {store['preset']} preset)")
    return "\n".join(lines)


def files_path(corpus: Corpus, out: Path, preset_name: str, seed: int, workers: int,
               scale: int, own_captions: bool = False, burned_bars: bool = False) -> tuple[Corpus, dict[str, float]]:
    """The corpus as an MSR-VTT folder of mp4 files and paraphrases, prepared; the store and what each step took."""
    start = time.monotonic()
    shutil.rmtree(out / "folder", ignore_errors=True)
    write_video_folder(out / "folder", "msrvtt", folder_clips(corpus, seed, scale, own_captions, burned_bars),
                       workers=workers)
    written = time.monotonic()
    store = prepare(out / "folder", out / "store", preset_name, workers)
    return store, {"files_seconds": round(written - start, 1), "prepare_seconds": round(time.monotonic() - written, 1)}


def path_row(name: str, data: Corpus, p: Preset, args: argparse.Namespace, source: dict[str, Any],
             truths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One path trained and scored on its own test clips: the JSON line it prints."""
    checkpoint, seconds = train_timed(data, p, Path(args.out) / "runs" / name.replace(" ", "_"), args.seed, source)
    test = data.splits["test"]
    return {"path": name, "preset": args.preset, "steps": p.train.full_steps + p.train.partial_steps,
            "seed": args.seed, "clips": sum(len(v) for v in data.splits.values()), "test_clips": len(test),
            **score(checkpoint, test, truths), "train_seconds": round(seconds, 1)}


def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    from cli.data import synthetic_kwargs
    from model.data.synthetic import generate

    out = Path(args.out)
    shutil.rmtree(out / "runs", ignore_errors=True)  # a run's log is appended to: a second bench starts clean
    p = bench_preset(args.preset, args.steps, args.threads)
    kw = synthetic_kwargs(args.preset, args.clips, args.seed)
    corpus = generate(**kw)
    truths = {c.clip_id: c.attributes for clips in corpus.splits.values() for c in clips}
    store, costs = files_path(corpus, out, args.preset, args.seed, args.workers, args.scale, args.own_captions,
                              args.burned_bars)
    if args.reuse_memory:  # the in-memory path of an earlier run of the same corpus, preset and steps
        rows = {"in memory": json.loads((out / "learning.json").read_text())["in memory"]}
    else:
        rows = {"in memory": path_row("in memory", corpus, p, args, {"name": "synthetic", "root": None, "kw": kw},
                                      truths)}
    say(json.dumps(rows["in memory"]))
    source = {"name": "store", "root": str((out / "store").resolve()), "kw": {}}
    rows["store"] = {**path_row("store", store, p, args, source, truths), **costs, "file_scale": args.scale,
                     "captions": "the corpus' own" if args.own_captions else "paraphrases",
                     "letterboxed files": "bars burned in" if args.burned_bars else "their own aspect ratio"}
    say(json.dumps(rows["store"]))
    say(markdown(rows))
    (out / "learning.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="where the folder, the store, both runs and learning.json go")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--clips", type=int, help="corpus size (default: the preset's)")
    parser.add_argument("--steps", type=int,
                        help="full + partial steps of both models (default: the preset's, video fine-tuning included)")
    parser.add_argument("--seed", type=int, default=0, help="the corpus', the captions' and training's seed")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads while training (0: torch's default; 1 is steadier on a shared machine)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes writing the files, then slr data prepare's")
    # A user's files are larger than the model's input: at its own 18x32, H.264's half-size chroma and blocks cost the
    # ground truth's probe 24 points of shape (74.9 -> 50.5 on 800 one-object demo clips), a loss no user meets.
    parser.add_argument("--scale", type=int, default=4, help="files written this many times the model's frame size")
    parser.add_argument("--burned-bars", action="store_true",
                        help="letterboxed clips as files of the model's shape, their bars burned in (no box to find)")
    parser.add_argument("--own-captions", action="store_true",
                        help="the files carry the corpus' own captions, not paraphrases: the store path alone measured")
    parser.add_argument("--reuse-memory", action="store_true",
                        help="keep the in-memory path's row of OUT/learning.json (same corpus, preset and steps)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv), lambda line: print(line, flush=True))  # each path's line as it ends: runs take minutes
    return 0


if __name__ == "__main__":
    sys.exit(main())
