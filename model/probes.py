"""The video probe: a generated clip read back analytically (the object's colour, shape and motion, and how visible it
is), so that video tasks are scored by what they draw (model/data/shapes.py draws the truth). Numpy only."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.frames import crop_box
from model.data.shapes import COLOUR_RGB, SHAPES, shape_sdf

PROBE_READINGS = ("colour", "shape", "motion")  # what the probe reads of a clip (contrast is not a share)


@dataclass
class Probe:
    colour: str | None
    motion: str | None
    shape: str | None = None


def _backgrounds(frames: np.ndarray) -> np.ndarray:
    """[T, 3] each frame's background colour (frames [T, H, W, 3]): the median of its border."""
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    return np.median(border, axis=1)


def _object_mask(frame: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Pixels far from the background colour (the median of the frame's border, unless given)."""
    bg = _backgrounds(frame[None])[0] if background is None else background
    return np.linalg.norm(frame - bg, axis=-1) > 0.25


def probe_video(frames: np.ndarray) -> Probe:
    """Read a (T, H, W, 3) clip in [0, 1] analytically: the object's dominant colour, its shape from its outline,
    and its motion from the track of its centre and area (image y grows downwards)."""
    masks = np.stack([_object_mask(f) for f in frames])
    area = masks.sum(axis=(1, 2)).astype(np.float64)
    if (area > 0).sum() < 2:
        return Probe(None, None)
    pixels = frames[masks]
    rgb = np.median(pixels, axis=0) * 255.0
    colour = min(COLOUR_RGB, key=lambda c: float(np.linalg.norm(rgb - np.array(COLOUR_RGB[c]))))
    outline = _colour_masks(frames, rgb / 255.0)
    seen = np.flatnonzero(area > 0)
    cx, cy = _centres(masks[seen], outline[seen])
    return Probe(colour, _motion_of(cx, cy, area[seen], frames.shape[1], frames.shape[2]), probe_shape(outline))


def _centres(masks: np.ndarray, outline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object's centre (x, y) in each frame, for its motion: the middle of its outline's box (every shape's box
    is centred on the shape's own centre within 0.01 radii: _EXTENTS) on the frames where the outline is whole, or
    the centroid of its pixels in every frame where fewer than two are. The centroid alone misread: a triangle's
    pixels sit low in its box, so a triangle shrinking about its centre read as moving up, and a noisy scene's
    outliers pulled it (the true test clips' motion read 96.9% that way, 99.2% by the box)."""
    h, w = outline.shape[1:]
    boxes = []
    for frame in outline:
        ys, xs = np.nonzero(frame)
        if len(ys) and ys.min() > 0 and xs.min() > 0 and ys.max() < h - 1 and xs.max() < w - 1:
            boxes.append(((xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2))
    if len(boxes) >= 2:
        return np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])
    ys, xs = np.indices((h, w))
    return np.array([xs[m].mean() for m in masks]), np.array([ys[m].mean() for m in masks])


def _colour_masks(frames: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """[T, H, W] pixels nearer the object's colour than half its distance from the background: the outline the
    shape is read from (the distance-from-background mask also takes in a noisy background's outliers)."""
    background = _backgrounds(frames)[:, None, None]  # T, 1, 1, 3
    reach = np.linalg.norm(rgb - background, axis=-1)
    return np.linalg.norm(frames - rgb, axis=-1) < reach / 2


def _shape_extent(shape: str, n: int = 401) -> tuple[float, float, float, float]:
    """A shape of radius 1's bounding box: (centre x, centre y, half-width, half-height)."""
    g = np.linspace(-2.0, 2.0, n, dtype=np.float32)
    x, y = np.meshgrid(g, g)
    inside = shape_sdf(shape, x, y, np.ones_like(x)) < 0
    xs, ys = x[inside], y[inside]
    return ((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, (xs.max() - xs.min()) / 2, (ys.max() - ys.min()) / 2)


_EXTENTS = {shape: _shape_extent(shape) for shape in SHAPES}
MIN_SHAPE_AREA = 12  # pixels: below this an object is a few pixels of any shape


def _shape_overlaps(mask: np.ndarray) -> np.ndarray | None:
    """Each shape's IoU with one frame's object mask, the shape drawn upright to fill the mask's bounding box; None
    when the object is too small to tell or touches the frame's edge (cut off, its box is not its shape's)."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if len(ys) < MIN_SHAPE_AREA or ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    gy, gx = np.mgrid[max(0, y0 - 2):min(h, y1 + 2), max(0, x0 - 2):min(w, x1 + 2)].astype(np.float32) + 0.5
    window = mask[max(0, y0 - 2):min(h, y1 + 2), max(0, x0 - 2):min(w, x1 + 2)]
    ious = []
    for shape in SHAPES:
        ex, ey, hx, hy = _EXTENTS[shape]
        r = ((x1 - x0) / 2 / hx + (y1 - y0) / 2 / hy) / 2
        cx, cy = (x0 + x1) / 2 - ex * r, (y0 + y1) / 2 - ey * r
        drawn = shape_sdf(shape, gx - cx, gy - cy, np.full_like(gx, r)) < 0
        ious.append((drawn & window).sum() / max(1, (drawn | window).sum()))
    return np.array(ious)


def probe_shape(masks: np.ndarray) -> str | None:
    """The shape whose upright outline best overlaps the object's mask, summed over the frames it can be read in
    (model/data/shapes.py: SHAPES); None when no frame can be read."""
    overlaps = [o for o in (_shape_overlaps(m) for m in masks) if o is not None]
    return SHAPES[int(np.argmax(np.sum(overlaps, axis=0)))] if overlaps else None


def _motion_of(cx: np.ndarray, cy: np.ndarray, area: np.ndarray, height: int, width: int) -> str:
    dx, dy = (cx[-1] - cx[0]) / width, (cy[-1] - cy[0]) / height
    growth = area[-1] / max(area[0], 1.0)
    if max(abs(dx), abs(dy)) < 0.08:
        if growth > 1.4:
            return "grow"
        if growth < 1 / 1.4:
            return "shrink"
        return "bounce" if (cy.max() - cy.min()) / height > 0.12 else "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def contrast(frames: np.ndarray, colour: str) -> float:
    """How visible the object is: the 99.5th percentile of a pixel's distance from its frame's background (the
    median of the borders) over the asked colour's own distance from that background. Real clips score about
    1; a grey mean with a faint stain, the paper's "a little bit blur", about 0.2."""
    f = np.asarray(frames, np.float32)
    background = _backgrounds(f)[:, None, None]  # T, 1, 1, 3
    reach = np.linalg.norm(np.array(COLOUR_RGB[colour], np.float32) / 255.0 - background, axis=-1).mean()
    return float(np.percentile(np.linalg.norm(f - background, axis=-1), 99.5) / max(float(reach), 1e-6))


STAIN_AWAY, STAIN_PULL = 3, 0.1  # stain: pixels this far from anything object-like, pulled this far to its colour
# A generated clip's background is clean below this stain (a per-clip outcome the release gate pairs: export/gate.py):
# quality-v24's smeared sentence-to-video backgrounds read 2.9% on average, quality-v25's 0.00%.
STAIN_CLEAN = 0.01


def stain(frames: np.ndarray, colour: str) -> float:
    """How much of the object's colour lies on the background away from the object: per frame, of the pixels more
    than STAIN_AWAY pixels from anything object-like (farther than 0.25 from the background, the median of the
    borders), the share pulled at least STAIN_PULL of the way from the background toward the asked colour; the mean
    over frames. A clean background reads 0; sentence-to-video's on quality-v24, whose background carried a smear of
    the object along its track, 2.9% (models/default/README.md, quality-v25)."""
    target = np.array(COLOUR_RGB[colour], np.float32) / 255.0
    frames = np.asarray(frames, np.float32)
    shares = []
    for frame, background in zip(frames, _backgrounds(frames)):
        toward = target - background
        reach = float(toward @ toward)
        if reach < 0.01:  # the asked colour is the background's: nothing to tell apart
            continue
        near = _grown(_object_mask(frame, background), STAIN_AWAY)
        if near.all():
            continue
        pull = (frame[~near] - background) @ toward / reach  # 0: the background, 1: the object's colour
        shares.append(float((pull > STAIN_PULL).mean()))
    return float(np.mean(shares)) if shares else 0.0


def _grown(mask: np.ndarray, by: int) -> np.ndarray:
    """[H, W] bool: `mask` grown by `by` pixels on every side (a square's reach)."""
    padded = np.pad(mask, by)
    return np.asarray(np.lib.stride_tricks.sliding_window_view(padded, (2 * by + 1, 2 * by + 1)).any(axis=(-1, -2)))


def probe_hits(videos: Sequence[np.ndarray], truths: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per generated clip, whether the probe reads the colour, shape and motion it was asked for (bool [N] each,
    the outcomes a paired test compares: export/gate.py), and its contrast (float [N]); each clip inside its
    picture's box when it has one: a letterboxed clip's bars would pass for the background."""
    videos = [crop_box(v, t.get("frame_box")) for v, t in zip(videos, truths)]
    probes = [probe_video(v) for v in videos]
    return {
        **{a: np.asarray([getattr(p, a) == t.get(a) for p, t in zip(probes, truths)], dtype=bool)
           for a in PROBE_READINGS},
        "contrast": np.asarray([contrast(v, t["colour"]) for v, t in zip(videos, truths)], dtype=np.float64),
    }


def probe_accuracy(videos: Sequence[np.ndarray], truths: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of generated clips whose probed colour / shape / motion match the attributes they were asked for,
    and their mean contrast."""
    if not truths:
        return {}
    return {k: float(v.mean()) for k, v in probe_hits(videos, truths).items()}


def probe_report(pred: np.ndarray, true: np.ndarray, truths: Sequence[dict[str, Any]], rows: Sequence[int],
                 unseen: Sequence[int], pred_letterboxed: bool = True) -> dict[str, Any]:
    """The probe on generated clips (one-object clips; and those of held-out combinations), beside the same
    probe on the true clips as its ceiling. pred_letterboxed False: the generated clips fill the frame whatever
    the true clip's box (sentence-to-video: a sentence names no aspect ratio)."""
    full = [{k: v for k, v in t.items() if k != "frame_box"} for t in truths]

    def on(videos: np.ndarray, idx: Sequence[int], boxed: bool = True) -> dict[str, float]:
        return probe_accuracy([videos[i] for i in idx], [(truths if boxed else full)[i] for i in idx])

    held = [i for i in unseen if i in set(rows)]
    return {"probe": on(pred, rows, pred_letterboxed), "probe_unseen_combos": on(pred, held, pred_letterboxed),
            "probe_on_ground_truth": on(true, rows)}
