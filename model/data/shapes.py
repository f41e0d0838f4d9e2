"""The synthetic world's objects and how they are drawn: its colours, shapes and motions; one object's appearance
and trajectory; rendering a clip (signed distances, soft edges, backgrounds); an object's track in the model's
frame; the shapes' sprite masks (the sprite decoder's truth). Torch-free; model/data/synthetic.py makes the corpus
of them, model/data/captions.py describes them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


R0_RANGE = (4.5, 9.0)  # an object's radius, in pixels of a 36-pixel-high frame


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
            ramp = _ramp(height, width, rng)
            bg = a * (1 - ramp) + b * ramp
        else:
            base = rng.uniform(40, 200)
            bg = base + rng.normal(0, 18, (height, width, 1)).astype(np.float32)
        bg = np.clip(np.broadcast_to(bg, (height, width, 3)), 0, 255).astype(np.float32)
        if _far_from(bg, avoid):
            return bg, kind
    return np.full((height, width, 3), 128.0, np.float32), "grey"  # mid grey is far from every colour


def _ramp(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """0 to 1 across the frame, left to right or top to bottom (even odds): float32 [1, W, 1] or [H, 1, 1]."""
    ramp = np.linspace(0, 1, width if rng.random() < 0.5 else height, dtype=np.float32)
    return ramp[None, :, None] if len(ramp) == width else ramp[:, None, None]


def vivid_background(height: int, width: int, avoid: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A float32 (H, W, 3) background of any colour, far in RGB from every object colour: plain, a ramp between two
    such colours, or grainy. The corpus' own backgrounds are greys and muted tints (_background); other software's
    are often saturated (a deep blue, a brown), which a video encoder refitted on these learns to look past."""
    for _ in range(50):
        kind, base = int(rng.integers(3)), rng.uniform(0, 255, 3).astype(np.float32)
        if kind == 0:
            bg = base[None, None, :]
        elif kind == 1:
            ramp = _ramp(height, width, rng)
            bg = base * (1 - ramp) + rng.uniform(0, 255, 3).astype(np.float32) * ramp
        else:
            bg = base + rng.normal(0, 14, (height, width, 1)).astype(np.float32)
        bg = np.clip(np.broadcast_to(bg, (height, width, 3)), 0, 255).astype(np.float32)
        if _far_from(bg, avoid):
            return bg
    return _background(height, width, avoid, rng)[0]


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
