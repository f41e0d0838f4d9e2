"""The synthetic corpus: short RGB clips of coloured shapes that move, grow, shrink or bounce.

Each clip comes with many human-like descriptions (synonyms, determiners, optional adjectives and
adverbs, several sentence shapes), every one of which names the canonical colour, a shape synonym
and a motion phrase, so `model.data.attributes` can score any caption against the ground truth.

Deterministic: the master `np.random.Generator(seed)` picks the held-out combinations, the clips that
use them and the split; clip `i` draws from its own generator seeded with `(seed, i)`, so the same
seed gives byte-identical arrays and captions, and a clip does not change when `n_clips` grows.
Torch-free.
"""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from core.frames import clip_pixels, fit_box
from model.data.captions import describe
from model.data.corpus import Clip, Corpus
from model.data.shapes import (
    COLOURS,
    MOTIONS,
    R0_RANGE,
    SHAPES,
    ObjectSpec,
    _background,
    _compose,
    _make_object,
    object_track,
    vivid_background,
)

# Fraction of clips whose main object shows one of the held-out combinations (test only).
UNSEEN_FRACTION = 0.04
N_HELD_OUT_COMBOS = 6
TWO_OBJECT_PROBABILITY = 0.2
# In a two-object clip the described-first (main) object is the salient one, as people caption: the larger. Its
# radius is drawn from the upper part of the range and the second object's mean radius is at most this share of
# the main one's. Drawn at random instead (`salient_first=False`, as before quality-v6), nothing on screen says
# which object a caption opens with, and a model trained on such captions mixes the two (issue 18).
MAIN_R0_RANGE = (6.5, 9.0)
SECOND_RADIUS_SHARE = 0.65
# Aspect ratios (width / height) of the clips drawn on a canvas other than the model's and letterboxed into it
# (`aspect_share` of a corpus): portrait phone video, 3:4, square, 4:3, 1.85:1 and 2.39:1 cinema.
CANVAS_ASPECTS: tuple[float, ...] = (9 / 16, 3 / 4, 1.0, 4 / 3, 1.85, 2.39)
CANVAS_SCALE = 2  # such clips are drawn at twice the model's size and box-filtered down, as an upload is


# --- the corpus -----------------------------------------------------------------------------------------
Combo = tuple[str, str, str]


def _held_out_combos(rng: np.random.Generator, k: int = N_HELD_OUT_COMBOS) -> list[Combo]:
    """k (colour, shape, motion) combinations with distinct colours, shapes and motions."""
    colours = rng.permutation(len(COLOURS))[:k]
    shapes = rng.permutation(np.resize(np.arange(len(SHAPES)), k))
    motions = rng.permutation(len(MOTIONS))[:k]
    return [(COLOURS[c], SHAPES[s], MOTIONS[m]) for c, s, m in zip(colours, shapes, motions)]


def _sample_combo(rng: np.random.Generator, forbidden: set[Combo]) -> Combo:
    while True:
        combo = (COLOURS[rng.integers(len(COLOURS))], SHAPES[rng.integers(len(SHAPES))],
                 MOTIONS[rng.integers(len(MOTIONS))])
        if combo not in forbidden:
            return combo


def _second_r0_range(main: ObjectSpec, motion: str, height: int, width: int) -> tuple[float, float]:
    """Radii (36-pixel frame units) that keep a second object's mean radius under SECOND_RADIUS_SHARE of the
    main one's; a growing or shrinking object's mean radius is about 1.2 times its r0."""
    unit = min(height, width) / 36.0
    hi = SECOND_RADIUS_SHARE * float(main.r.mean()) / unit / (1.2 if motion in ("grow", "shrink") else 1.0)
    return min(3.5, hi), hi


def _smaller(obj: ObjectSpec, main: ObjectSpec) -> ObjectSpec:
    """obj shrunk about its own path where its mean radius still exceeds the share (rare: a frame-capped grow)."""
    scale = SECOND_RADIUS_SHARE * float(main.r.mean()) / float(obj.r.mean())
    return replace(obj, r=(obj.r * scale).astype(np.float32)) if scale < 1.0 else obj


def _place_second(main: ObjectSpec, colour: str, shape: str, motion: str, frames: int, height: int, width: int,
                  rng: np.random.Generator, tries: int = 12, salient_first: bool = True) -> ObjectSpec:
    """A second object whose path keeps clear of the main one (the best of a few tries), so both stay visible;
    with `salient_first`, clearly smaller than the main one."""
    r0_range = _second_r0_range(main, motion, height, width) if salient_first else R0_RANGE
    best, best_gap = None, -np.inf
    for _ in range(tries):
        obj = _make_object(colour, shape, motion, frames, height, width, rng, r0_range)
        if salient_first:
            obj = _smaller(obj, main)
        gap = float(np.min(np.hypot(obj.cx - main.cx, obj.cy - main.cy) - 0.9 * (obj.r + main.r)))
        if gap > best_gap:
            best, best_gap = obj, gap
        if gap >= 0:
            break
    return best


def _canvas(aspect: float, height: int, width: int) -> tuple[int, int]:
    """(h, w) of a canvas of the given aspect ratio whose letterboxed box fills the model frame on one side."""
    if aspect < width / height:
        h = CANVAS_SCALE * height
        return h, max(2, round(h * aspect))
    w = CANVAS_SCALE * width
    return max(2, round(w / aspect)), w


def _scene_objects(combo: Combo, frames: int, height: int, width: int, rng: np.random.Generator,
                   main_rng: np.random.Generator, salient_first: bool = True) -> list[ObjectSpec]:
    """A clip's objects, main one first: one, or (TWO_OBJECT_PROBABILITY) a second of another colour beside it."""
    objects = [_make_object(*combo, frames, height, width, rng)]
    if rng.random() < TWO_OBJECT_PROBABILITY:
        if salient_first:  # the main object redrawn large, from its own stream: one-object clips stay as they were
            objects[0] = _make_object(*combo, frames, height, width, main_rng, MAIN_R0_RANGE)
        colour = COLOURS[rng.choice([j for j, c in enumerate(COLOURS) if c != combo[0]])]
        shape, motion = SHAPES[rng.integers(len(SHAPES))], MOTIONS[rng.integers(len(MOTIONS))]
        objects.append(_place_second(objects[0], colour, shape, motion, frames, height, width, rng,
                                     salient_first=salient_first))
    return objects


def background_pair(combo: Combo, frames: int, height: int, width: int, rng: np.random.Generator,
                    aspect: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scene of the corpus' kind drawn twice, the same objects on the same tracks: uint8 [T, H, W, 3] over a
    background the corpus draws, and over one of any colour (shapes.vivid_background) that it never draws; with
    `aspect`, both drawn on a canvas of that aspect ratio and letterboxed as an upload of that shape is."""
    canvas_h, canvas_w = (height, width) if aspect is None else _canvas(aspect, height, width)
    objects = _scene_objects(combo, frames, canvas_h, canvas_w, rng, rng)
    avoid = [o.rgb for o in objects]
    familiar, _ = _background(canvas_h, canvas_w, avoid, rng)
    other = vivid_background(canvas_h, canvas_w, avoid, rng)
    pair = [_compose(objects, frames, canvas_h, canvas_w, bg) for bg in (familiar, other)]
    if aspect is not None:
        pair = [clip_pixels(v, frames, height, width, "pad") for v in pair]
    return pair[0], pair[1]


def _make_clip(i: int, seed: int, combo: Combo, unseen: bool, frames: int, height: int, width: int,
               captions_per_clip: int, aspect: float | None = None, salient_first: bool = True) -> Clip:
    """One clip; with `aspect`, drawn on a canvas of that aspect ratio and letterboxed into height x width
    (`core.frames.prepare_clip`, fit "pad", as an upload of that shape is) -- attributes gain its `frame_box`."""
    out_h, out_w = height, width
    if aspect is not None:
        height, width = _canvas(aspect, out_h, out_w)
    rng = np.random.default_rng([seed, i])
    objects = _scene_objects(combo, frames, height, width, rng, np.random.default_rng([seed, i, 3]), salient_first)
    bg, background = _background(height, width, [o.rgb for o in objects], rng)
    video = _compose(objects, frames, height, width, bg)
    # Python's Random is an order of magnitude faster than Generator for many scalar picks.
    words = random.Random(int(rng.integers(2**62)))
    captions = describe(objects, background, captions_per_clip, words)
    attributes = {
        "colour": combo[0], "shape": combo[1], "motion": combo[2],
        "size": objects[0].size, "speed": objects[0].speed, "background": background,
        "objects": [o.describe() for o in objects], "unseen_combo": unseen,
    }
    box = None
    if aspect is not None:
        video = clip_pixels(video, frames, out_h, out_w, "pad")
        box = fit_box(height, width, out_h, out_w)
        attributes.update(aspect=round(aspect, 3), frame_box=list(box))
    attributes["track"] = object_track(objects[0], height, box)
    return Clip(clip_id=f"syn_{i:06d}", captions=captions, frames=video, features=None, attributes=attributes)


def _split_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_train, n_val = round(0.8 * n), round(0.1 * n)
    return tuple(np.sort(part) for part in (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]))


def _aspect(seed: int, i: int, share: float) -> float | None:
    """The canvas aspect ratio of clip i, or None (the model's own) -- from its own stream, so a share of 0 leaves
    every clip as it was."""
    if share <= 0:
        return None
    rng = np.random.default_rng([seed, i, 2])
    return float(CANVAS_ASPECTS[rng.integers(len(CANVAS_ASPECTS))]) if rng.random() < share else None


def generate(n_clips: int, seed: int = 0, frames: int = 16, height: int = 36, width: int = 64,
             captions_per_clip: int = 8, progress: bool = False, aspect_share: float = 0.0,
             salient_first: bool = True) -> Corpus:
    """A synthetic corpus of n_clips clips (uint8 (T, H, W, 3)) with captions_per_clip captions each; an
    `aspect_share` of them drawn at other aspect ratios (CANVAS_ASPECTS) and letterboxed; `salient_first`: in a
    two-object clip the object captions open with is the larger (MAIN_R0_RANGE, SECOND_RADIUS_SHARE).

    Splits by clip 80 / 10 / 10 over the ordinary clips; in addition about 4% of the clips show one of a
    few held-out (colour, shape, motion) combinations and go to test only (`unseen_combo`).
    """
    if n_clips < 1:
        raise ValueError("n_clips must be positive")
    master = np.random.default_rng(seed)
    held_out = _held_out_combos(master)
    n_unseen = round(n_clips * UNSEEN_FRACTION) if n_clips >= 10 else 0
    unseen_ids = set(master.choice(n_clips, n_unseen, replace=False).tolist())
    forbidden = set(held_out)
    indices = range(n_clips)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic clips", unit="clip")
    clips: list[Clip] = []
    k = 0
    for i in indices:
        if i in unseen_ids:  # cycle through the held-out combos so each one is represented
            combo, k = held_out[k % len(held_out)], k + 1
        else:
            combo = _sample_combo(np.random.default_rng([seed, i, 1]), forbidden)
        clips.append(_make_clip(i, seed, combo, i in unseen_ids, frames, height, width, captions_per_clip,
                                _aspect(seed, i, aspect_share), salient_first))
    seen = [c for c in clips if not c.attributes["unseen_combo"]]
    train, val, test = _split_indices(len(seen), master)
    splits = {
        "train": [seen[j] for j in train],
        "val": [seen[j] for j in val],
        "test": sorted([seen[j] for j in test] + [c for c in clips if c.attributes["unseen_combo"]],
                       key=lambda c: c.clip_id),
    }
    meta = {
        "seed": seed, "n_clips": n_clips, "frames": frames, "height": height, "width": width,
        "captions_per_clip": captions_per_clip, "aspect_share": aspect_share, "colours": list(COLOURS),
        "shapes": list(SHAPES), "motions": list(MOTIONS), "held_out_combos": [list(c) for c in held_out],
        "unseen_test_clips": len(unseen_ids), "split_rule": "80/10/10 by clip; held-out combos test only",
    }
    return Corpus(name="synthetic", video_input="frames", splits=splits, meta=meta)
