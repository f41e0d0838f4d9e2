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
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.frames import fit_box, prepare_clip
from model.data.corpus import Clip, Corpus

# --- vocabulary of the world -------------------------------------------------------------------------
# Canonical colours with hues far apart in RGB, so a model (and a person) can tell them apart.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 175, 45),
    "blue": (35, 70, 230),
    "yellow": (240, 220, 35),
    "orange": (250, 135, 20),
    "purple": (140, 45, 185),
    "white": (245, 245, 245),
    "cyan": (35, 215, 225),
}
COLOURS: tuple[str, ...] = tuple(COLOUR_RGB)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "grow", "shrink", "bounce", "still")

# Surface forms used when writing captions; the parser accepts every one of them (and a few more).
SHAPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "disk", "dot", "round shape"),
    "square": ("square", "box", "block", "square shape"),
    "triangle": ("triangle", "triangular shape", "three sided shape"),
    "diamond": ("diamond", "rhombus", "diamond shape", "lozenge"),
    "star": ("star", "star shape", "five pointed star"),
    "cross": ("cross", "plus sign", "plus shape", "cross shape"),
}

# Each verb as (3rd person present, progressive, participle).
Verb = tuple[str, str, str]
_TRAVEL_VERBS: tuple[Verb, ...] = (
    ("moves", "is moving", "moving"),
    ("slides", "is sliding", "sliding"),
    ("goes", "is going", "going"),
    ("travels", "is traveling", "traveling"),
    ("drifts", "is drifting", "drifting"),
    ("glides", "is gliding", "gliding"),
    ("heads", "is heading", "heading"),
)
_DIRECTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("left", "to the left", "leftwards", "towards the left"),
    "right": ("right", "to the right", "rightwards", "towards the right"),
    "up": ("up", "upwards", "upward", "towards the top"),
    "down": ("down", "downwards", "downward", "towards the bottom"),
}
# Single verbs that carry the direction themselves.
_DIRECTION_VERBS: dict[str, tuple[Verb, ...]] = {
    "left": (),
    "right": (),
    "up": (("rises", "is rising", "rising"), ("climbs up", "is climbing up", "climbing up"),
           ("floats up", "is floating up", "floating up")),
    "down": (("falls", "is falling", "falling"), ("sinks", "is sinking", "sinking"),
             ("drops down", "is dropping down", "dropping down")),
}
_CHANGE_VERBS: dict[str, tuple[Verb, ...]] = {
    "grow": (
        ("grows", "is growing", "growing"),
        ("gets bigger", "is getting bigger", "getting bigger"),
        ("gets larger", "is getting larger", "getting larger"),
        ("expands", "is expanding", "expanding"),
        ("becomes larger", "is becoming larger", "becoming larger"),
        ("increases in size", "is increasing in size", "increasing in size"),
        ("grows in size", "is growing in size", "growing in size"),
    ),
    "shrink": (
        ("shrinks", "is shrinking", "shrinking"),
        ("gets smaller", "is getting smaller", "getting smaller"),
        ("becomes smaller", "is becoming smaller", "becoming smaller"),
        ("contracts", "is contracting", "contracting"),
        ("decreases in size", "is decreasing in size", "decreasing in size"),
        ("gets tinier", "is getting tinier", "getting tinier"),
    ),
    "bounce": (
        ("bounces", "is bouncing", "bouncing"),
        ("bounces up and down", "is bouncing up and down", "bouncing up and down"),
        ("hops", "is hopping", "hopping"),
        ("jumps up and down", "is jumping up and down", "jumping up and down"),
        ("keeps bouncing", "keeps bouncing", "bouncing repeatedly"),
    ),
    "still": (
        ("stays still", "is staying still", "staying still"),
        ("does not move", "is not moving", "not moving"),
        ("stays in place", "is staying in place", "staying in place"),
        ("sits still", "is sitting still", "sitting still"),
        ("remains stationary", "is stationary", "remaining stationary"),
        ("stands still", "is standing still", "standing still"),
    ),
}

# What the parser recognises for each motion: every phrase above, plus plain direction words.
MOTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "left": ("left", "leftwards", "leftward"),
    "right": ("right", "rightwards", "rightward"),
    "up": ("up", "upwards", "upward", "towards the top", "to the top", "rises", "rising", "rise"),
    "down": ("down", "downwards", "downward", "towards the bottom", "to the bottom", "falls", "falling",
             "fall", "sinks", "sinking", "sink"),
    "grow": ("grows", "growing", "grow", "bigger", "larger", "expands", "expanding", "increases in size",
             "increasing in size"),
    "shrink": ("shrinks", "shrinking", "shrink", "smaller", "tinier", "contracts", "contracting",
               "decreases in size", "decreasing in size"),
    # "up and down" must win over "up" / "down": the parser prefers the longest phrase at a position.
    "bounce": ("bounces", "bouncing", "bounce", "up and down", "hops", "hopping", "jumps", "jumping"),
    "still": ("still", "not moving", "does not move", "in place", "stationary", "motionless"),
}

_SIZE_WORDS = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
_SPEED_WORDS = {"slow": ("slowly", "gently"), "fast": ("quickly", "fast", "rapidly")}
_BACKGROUND_PHRASES = {
    "light": ("on a light background", "against a pale background", "on a light grey background"),
    "dark": ("on a dark background", "against a dark background", "on a black background"),
    "coloured": ("on a coloured background", "against a tinted background"),
    "gradient": ("on a gradient background", "against a shaded background"),
    "noisy": ("on a noisy background", "against a grainy background"),
}
MAX_CAPTION_WORDS = 16
# Fraction of clips whose main object shows one of the held-out combinations (test only).
UNSEEN_FRACTION = 0.04
N_HELD_OUT_COMBOS = 6
TWO_OBJECT_PROBABILITY = 0.2
R0_RANGE = (4.5, 9.0)  # an object's radius, in pixels of a 36-pixel-high frame
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


# --- one object's appearance and trajectory ------------------------------------------------------------
@dataclass
class ObjectSpec:
    colour: str
    shape: str
    motion: str
    rgb: np.ndarray  # float32 (3,), the jittered colour actually drawn
    cx: np.ndarray  # float32 (T,) centre x in pixels
    cy: np.ndarray  # float32 (T,)
    r: np.ndarray  # float32 (T,) radius in pixels
    size: str  # "small" | "medium" | "big" (of the first frame)
    speed: str  # "slow" | "medium" | "fast" | "none"

    def describe(self) -> dict:
        return {"colour": self.colour, "shape": self.shape, "motion": self.motion, "size": self.size,
                "speed": self.speed, "radius": round(float(self.r.mean()), 2)}  # mean over the clip, pixels


def _trajectory(motion: str, frames: int, height: int, width: int, rng: np.random.Generator,
                r0_range: tuple[float, float] = R0_RANGE):
    """Centre and radius per frame, kept inside the frame; plus the speed class of the motion. `r0_range` is in
    pixels of a 36-pixel-high frame."""
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    unit = min(height, width) / 36.0  # radii are designed for a 36-pixel-high frame
    r0 = float(rng.uniform(*r0_range) * unit)
    speed = "none"
    if motion in ("grow", "shrink"):
        small, large = r0 * 0.55, min(r0 * rng.uniform(1.5, 1.9), (min(height, width) / 2 - 1))
        small = min(small, large * 0.6)
        a, b = (small, large) if motion == "grow" else (large, small)
        r = a + (b - a) * t
        cx = np.full(frames, rng.uniform(large, width - large), np.float32)
        cy = np.full(frames, rng.uniform(large, height - large), np.float32)
        frac = (large - small) / large
        speed = "fast" if frac > 0.55 else "slow" if frac < 0.45 else "medium"
        return cx, cy, r.astype(np.float32), r0 if motion == "grow" else large, speed
    r = np.full(frames, r0, np.float32)
    if motion in ("left", "right", "up", "down"):
        along, across = (width, height) if motion in ("left", "right") else (height, width)
        # Up to 30% of the radius may leave the frame at either end: short vertical paths get room.
        lo, hi = 0.7 * r0, along - 0.7 * r0
        frac = float(rng.uniform(0.4, 0.95) if motion in ("left", "right") else rng.uniform(0.5, 0.95))
        dist = frac * (hi - lo)
        start = rng.uniform(lo, hi - dist)
        sign = 1.0 if motion in ("right", "down") else -1.0
        if sign < 0:
            start += dist
        pos = start + sign * dist * t
        other = np.full(frames, rng.uniform(r0, across - r0), np.float32)
        speed = "slow" if frac < 0.55 else "fast" if frac > 0.8 else "medium"
        cx, cy = (pos, other) if motion in ("left", "right") else (other, pos)
        return cx.astype(np.float32), cy.astype(np.float32), r, r0, speed
    cx = np.full(frames, rng.uniform(r0, width - r0), np.float32)
    if motion == "bounce":
        floor = height - r0 - rng.uniform(0, 2)
        amp = rng.uniform(0.45, 0.9) * (floor - r0)
        hops = rng.integers(2, 4)
        cy = floor - amp * np.abs(np.sin(np.pi * hops * t + rng.uniform(0, 0.3)))
        speed = "fast" if hops == 3 else "slow"
        return cx, cy.astype(np.float32), r, r0, speed
    cy = np.full(frames, rng.uniform(r0, height - r0), np.float32)  # still
    return cx, cy, r, r0, speed


def _size_class(r0: float, height: int, width: int) -> str:
    unit = min(height, width) / 36.0
    return "small" if r0 < 6.0 * unit else "big" if r0 > 8.0 * unit else "medium"


def _make_object(colour: str, shape: str, motion: str, frames: int, height: int, width: int,
                 rng: np.random.Generator, r0_range: tuple[float, float] = R0_RANGE) -> ObjectSpec:
    # Brightness jitter keeps the hue: every channel scales together.
    rgb = np.clip(np.array(COLOUR_RGB[colour], np.float32) * rng.uniform(0.82, 1.08), 0, 255)
    cx, cy, r, r0, speed = _trajectory(motion, frames, height, width, rng, r0_range)
    return ObjectSpec(colour, shape, motion, rgb.astype(np.float32), cx, cy, r, _size_class(r0, height, width), speed)


# --- rendering ------------------------------------------------------------------------------------------
_K1 = np.array([0.809016994375, -0.587785252292], np.float32)
_K2 = np.array([-0.809016994375, -0.587785252292], np.float32)


def _sdf_star(x: np.ndarray, y: np.ndarray, r: np.ndarray, inner: float = 0.45) -> np.ndarray:
    """Signed distance to a five-pointed star (after Inigo Quilez' sdStar5); y grows upwards here."""
    x = np.abs(x)
    for k in (_K1, _K2):
        d = np.maximum(k[0] * x + k[1] * y, 0.0) * 2.0
        x, y = x - d * k[0], y - d * k[1]
    x = np.abs(x)
    y = y - r
    bax, bay = inner * -_K1[1], inner * _K1[0] - 1.0  # ba = rf * (-k1.y, k1.x) - (0, 1)
    h = np.clip((x * bax + y * bay) / (bax * bax + bay * bay), 0.0, r)
    return np.hypot(x - bax * h, y - bay * h) * np.sign(y * bax - x * bay)


def shape_sdf(shape: str, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) to a shape of 'radius' r centred at the origin.

    Exact or close to exact near the edge, which is all the soft edge needs.
    """
    ax, ay = np.abs(x), np.abs(y)
    if shape == "circle":
        return np.hypot(x, y) - r
    if shape == "square":
        return np.maximum(ax, ay) - r * 0.82  # same area feel as a circle of radius r
    if shape == "diamond":
        return (ax + ay * 1.15 - r * 1.1) * 0.66
    if shape == "triangle":
        # Equilateral, apex up (image y grows downwards); max of the three edge half-planes.
        # Inradius a; shifted by 0.3 r so the bounding box, not the centroid, sits at the centre.
        a, ys = r * 0.6, y - r * 0.3
        return np.maximum(ys, 0.866 * ax - 0.5 * ys) - a
    if shape == "cross":
        arm = r * 0.34
        return np.minimum(np.maximum(ax - r, ay - arm), np.maximum(ax - arm, ay - r))
    if shape == "star":
        return _sdf_star(x, -y + r * 0.1, r * 1.1)
    raise ValueError(f"unknown shape {shape!r}")


def _window(obj: ObjectSpec, height: int, width: int) -> tuple[slice, slice]:
    """The pixel rows and columns the object touches in any frame (plus the soft edge)."""
    pad = obj.r.max() * 1.3 + 1.5  # every shape fits in 1.3 r around its centre
    y0, y1 = int(max(0, np.floor(obj.cy.min() - pad))), int(min(height, np.ceil(obj.cy.max() + pad)))
    x0, x1 = int(max(0, np.floor(obj.cx.min() - pad))), int(min(width, np.ceil(obj.cx.max() + pad)))
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _coverage(obj: ObjectSpec, rows: slice, cols: slice) -> np.ndarray:
    """Coverage in [0, 1], float32 (T, rows, cols), with a one-pixel soft edge (antialiasing)."""
    ys = np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5
    xs = np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5
    x = xs[None, None, :] - obj.cx[:, None, None]
    y = ys[None, :, None] - obj.cy[:, None, None]
    x, y = np.broadcast_arrays(x, y)
    d = shape_sdf(obj.shape, x, y, obj.r[:, None, None])
    return np.clip(0.5 - d, 0.0, 1.0)


def _background(height: int, width: int, avoid: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A float32 (H, W, 3) background and its kind, far in RGB from every object colour."""
    kinds = ("light", "dark", "coloured", "gradient", "noisy")
    for _ in range(50):
        kind = kinds[rng.integers(len(kinds))]
        if kind == "light":
            bg = np.full((1, 1, 3), rng.uniform(175, 235), np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
        elif kind == "dark":
            bg = np.full((1, 1, 3), rng.uniform(10, 60), np.float32) + rng.uniform(-6, 6, 3).astype(np.float32)
        elif kind == "coloured":
            bg = _muted(rng)[None, None, :]
        elif kind == "gradient":
            a, b = _muted(rng), _muted(rng)
            ramp = np.linspace(0, 1, width if rng.random() < 0.5 else height, dtype=np.float32)
            ramp = ramp[None, :, None] if len(ramp) == width else ramp[:, None, None]
            bg = a * (1 - ramp) + b * ramp
        else:
            base = rng.uniform(40, 200)
            bg = base + rng.normal(0, 18, (height, width, 1)).astype(np.float32)
        bg = np.clip(np.broadcast_to(bg, (height, width, 3)), 0, 255).astype(np.float32)
        if _far_from(bg, avoid):
            return bg, kind
    return np.full((height, width, 3), 128.0, np.float32), "grey"  # mid grey is far from every colour


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A desaturated random colour: a tint, not one of the object colours."""
    grey = rng.uniform(60, 190)
    return (grey + (rng.uniform(0, 255, 3) - grey) * rng.uniform(0.2, 0.45)).astype(np.float32)


def _far_from(bg: np.ndarray, colours: list[np.ndarray], min_dist: float = 110.0) -> bool:
    # Check the mean and both corners so gradients and noise are covered too.
    probes = [bg.reshape(-1, 3).mean(0), bg[0, 0], bg[-1, -1]]
    return all(np.linalg.norm(p - c) >= min_dist for p in probes for c in colours)


def _compose(objects: list[ObjectSpec], frames: int, height: int, width: int, bg: np.ndarray) -> np.ndarray:
    video = np.broadcast_to(np.rint(bg).astype(np.uint8), (frames, height, width, 3)).copy()
    for obj in reversed(objects):  # main object last: it is drawn on top
        # Blend only inside the object's window: most of the frame is background (speed).
        rows, cols = _window(obj, height, width)
        a = _coverage(obj, rows, cols)[..., None]
        region = video[:, rows, cols].astype(np.float32)
        region += a * (obj.rgb - region) + 0.5  # + 0.5 then truncate: rounding in one pass
        video[:, rows, cols] = region.astype(np.uint8)
    return video


def render_clip(attrs: dict, frames: int = 16, height: int = 36, width: int = 64,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw a uint8 (T, H, W, 3) clip of the objects in `attrs`.

    `attrs` holds `colour`, `shape`, `motion` (one object) or `objects`, a list of such dicts (main
    object first). Positions, sizes, speeds and background are drawn from `rng`.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    specs = attrs.get("objects") or [attrs]
    objects = [_make_object(o["colour"], o["shape"], o["motion"], frames, height, width, rng) for o in specs]
    bg, _ = _background(height, width, [o.rgb for o in objects], rng)
    return _compose(objects, frames, height, width, bg)


# --- captions -------------------------------------------------------------------------------------------
def _verbs(motion: str) -> tuple[Verb, ...]:
    if motion in _DIRECTION_PHRASES:
        travel = tuple((v[0] + " " + d, v[1] + " " + d, v[2] + " " + d)
                       for v in _TRAVEL_VERBS for d in _DIRECTION_PHRASES[motion])
        return travel + _DIRECTION_VERBS[motion]
    return _CHANGE_VERBS[motion]


_VERBS: dict[str, tuple[Verb, ...]] = {m: _verbs(m) for m in MOTIONS}


def _noun_phrase(obj: ObjectSpec, r: random.Random, det: str) -> str:
    """The object as a noun phrase; the colour word always comes before any motion word."""
    shape = r.choice(SHAPE_SYNONYMS[obj.shape])
    adj = ""
    if obj.size in _SIZE_WORDS and obj.motion not in ("grow", "shrink") and r.random() < 0.35:
        adj = r.choice(_SIZE_WORDS[obj.size]) + " "
    bright = "bright " if r.random() < 0.1 and obj.colour != "white" else ""
    form = r.random()
    if form < 0.65:
        return f"{det} {adj}{bright}{obj.colour} {shape}"
    if form < 0.8:
        return f"{det} {adj}{shape} that is {obj.colour}"
    if form < 0.9:
        return f"{det} {adj}{obj.colour} coloured {shape}"
    return f"{det} {adj}{shape} in {obj.colour}"


def _adverb(obj: ObjectSpec, r: random.Random) -> str:
    if obj.speed in _SPEED_WORDS and r.random() < 0.3:
        return " " + r.choice(_SPEED_WORDS[obj.speed])
    return ""


def _clause(obj: ObjectSpec, r: random.Random, first: bool) -> str:
    """One object doing its motion, in one of several sentence shapes."""
    verb = r.choice(_VERBS[obj.motion])
    adv = "" if verb[0].endswith("repeatedly") or verb[2].endswith("repeatedly") else _adverb(obj, r)
    det = r.choice(("a", "a", "the", "one") if first else ("a", "the", "another"))
    shape_kind = r.random()
    if shape_kind < 0.35:
        return f"{_noun_phrase(obj, r, det)} {verb[0]}{adv}"
    if shape_kind < 0.6:
        return f"{_noun_phrase(obj, r, det)} {verb[1]}{adv}"
    lead = r.choice(("there is", "we see", "you can see", "i see", "the video shows", "the clip shows"))
    det = "another" if det == "another" else r.choice(("a", "one"))
    if not first:
        lead = r.choice(("there is", "we also see"))
    return f"{lead} {_noun_phrase(obj, r, det)} {verb[2]}{adv}"


def _caption(objects: list[ObjectSpec], background: str, r: random.Random) -> str:
    main = _clause(objects[0], r, first=True)
    if r.random() < 0.12:
        main = r.choice(("in this clip", "in the video", "here")) + " " + main
    if len(objects) > 1:
        joiner = r.choice((" and ", " while ", ", and ", " as "))
        return _ARTICLE.sub("an ", main + joiner + _clause(objects[1], r, first=False))
    if background in _BACKGROUND_PHRASES and r.random() < 0.15:
        main += " " + r.choice(_BACKGROUND_PHRASES[background])
    return _ARTICLE.sub("an ", main)


_ARTICLE = re.compile(r"\ba (?=([aeiou]))")


def describe(objects: list[ObjectSpec], background: str, n: int, r: random.Random) -> list[str]:
    """n distinct captions (when possible) of at most MAX_CAPTION_WORDS words."""
    captions: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 30):
        c = _caption(objects, background, r)
        if len(c.split()) <= MAX_CAPTION_WORDS and c not in seen:
            seen.add(c)
            captions.append(c)
            if len(captions) == n:
                break
    while len(captions) < n:  # pathological tiny vocabularies only: repeat rather than fail
        captions.append(captions[len(captions) % max(1, len(seen))] if captions else _fallback(objects[0]))
    return captions


def _fallback(obj: ObjectSpec) -> str:
    return f"a {obj.colour} {obj.shape} {_VERBS[obj.motion][0][0]}"


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


def _make_clip(i: int, seed: int, combo: Combo, unseen: bool, frames: int, height: int, width: int,
               captions_per_clip: int, aspect: float | None = None, salient_first: bool = True) -> Clip:
    """One clip; with `aspect`, drawn on a canvas of that aspect ratio and letterboxed into height x width
    (`core.frames.prepare_clip`, fit "pad", as an upload of that shape is) -- attributes gain its `frame_box`."""
    out_h, out_w = height, width
    if aspect is not None:
        height, width = _canvas(aspect, out_h, out_w)
    rng = np.random.default_rng([seed, i])
    objects = [_make_object(*combo, frames, height, width, rng)]
    if rng.random() < TWO_OBJECT_PROBABILITY:
        if salient_first:  # the main object redrawn large, from its own stream: one-object clips stay as they were
            objects[0] = _make_object(*combo, frames, height, width, np.random.default_rng([seed, i, 3]),
                                      MAIN_R0_RANGE)
        colour = COLOURS[rng.choice([j for j, c in enumerate(COLOURS) if c != combo[0]])]
        shape, motion = SHAPES[rng.integers(len(SHAPES))], MOTIONS[rng.integers(len(MOTIONS))]
        objects.append(_place_second(objects[0], colour, shape, motion, frames, height, width, rng,
                                     salient_first=salient_first))
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
        video = np.rint(prepare_clip(video, frames, out_h, out_w, "pad") * 255.0).astype(np.uint8)
        box = fit_box(height, width, out_h, out_w)
        attributes.update(aspect=round(aspect, 3), frame_box=list(box))
    attributes["track"] = object_track(objects[0], height, box)
    return Clip(clip_id=f"syn_{i:06d}", captions=captions, frames=video, features=None, attributes=attributes)


def object_track(obj: ObjectSpec, canvas_h: int, box: tuple[int, int, int, int] | None) -> list[list[float]]:
    """The object's [centre x, centre y, radius] per frame in pixels of the model's frame (a letterboxed clip's
    canvas mapped into its box): the truth a video decoder's pose can be checked and trained against."""
    top, left, scale = 0.0, 0.0, 1.0
    if box is not None:
        top, left, scale = float(box[0]), float(box[1]), box[2] / canvas_h
    track = np.stack([left + obj.cx * scale, top + obj.cy * scale, obj.r * scale], axis=1)
    return np.round(track, 2).tolist()


SPRITE_MARGIN = 1.4  # a sprite's half-side in object radii: every shape fits in 1.3 r around its centre


def shape_masks(size: int, shapes: Sequence[str] = SHAPES) -> np.ndarray:
    """float32 [len(shapes), size, size] coverage of each shape centred in a sprite whose half-side is
    SPRITE_MARGIN radii, drawn as the generator draws it (its signed distances, a one-pixel soft edge)."""
    radius = size / 2 / SPRITE_MARGIN
    grid = (np.arange(size, dtype=np.float32) + 0.5 - size / 2)
    x, y = np.meshgrid(grid, grid)
    r = np.full_like(x, radius)
    return np.stack([np.clip(0.5 - shape_sdf(s, x, y, r), 0.0, 1.0) for s in shapes]).astype(np.float32)


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
