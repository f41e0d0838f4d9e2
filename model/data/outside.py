"""An outside test set: videos of coloured moving shapes drawn and encoded by software other than the
generator, to check that captions hold on ordinary files and not only on `shapes.render_clip`'s own
arrays.

Two drawing sources, `ffmpeg` (its own filters) and `pil` (Pillow's ImageDraw): their file writers and
`build_outside_set` are model/data/outside_writers.py's; this module holds what is drawn (the plans), the
labels, their loading and decoding, and the scoring.

Colours are the canonical names with other software's RGB values (CSS / X11 names as ffmpeg and Pillow
know them, e.g. 'red' = (255, 0, 0), 'purple' = (128, 0, 128), 'darkorange'), sizes 176x144 to 640x360,
frame rates 10-30, 2-3 s, containers mp4 / webm / avi / mov / gif. `labels.json` maps each file name
to what was drawn.

`decode_clip_file` decodes any of these files exactly as the service decodes an upload
(`core.media.prepare_upload`: PyAV + `core.frames.prepare_clip`). Torch-free.
"""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ImageColor

from core.config import FrameFit, ModelConfig
from core.frames import Box, picture_box
from model.data.attributes import ATTRIBUTES, described_object, object_binding, parse_attributes
from model.data.shapes import COLOUR_RGB

LABELS_JSON = "labels.json"
CONTAINERS: tuple[str, ...] = ("mp4", "webm", "avi", "mov", "gif")
SOURCES: tuple[str, ...] = ("ffmpeg", "pil")
OUTSIDE_MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "grow", "shrink")
FFMPEG_SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PIL_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
# Landscape 16:9 and 4:3, CIF, portrait (3:4, 2:3), square and 1.85:1 cinema: scored per aspect group (ASPECT_GROUPS).
FFMPEG_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 360), (176, 144), (240, 320), (288, 288), (444, 240))
PIL_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 360), (176, 144), (480, 270), (240, 320), (200, 300),
                                          (240, 240), (352, 288), (444, 240))
# Upper bounds of width / height for each group, in order.
ASPECT_GROUPS: tuple[tuple[str, float], ...] = (("portrait", 0.95), ("square", 1.05), ("4:3", 1.5), ("16:9", 1.8),
                                                ("wide", float("inf")))
SHAKE_SHARE = 0.25  # Pillow clips filmed by a shaking hand: the whole picture jumps a few pixels each frame

# Other software's names for the canonical colours (CSS / X11, as both ffmpeg and Pillow spell them).
# Each is nearer in RGB to its own canonical colour than to any other (checked at import).
CSS_NAMES: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "firebrick"),
    "green": ("green", "forestgreen", "limegreen"),
    "blue": ("blue", "royalblue", "mediumblue"),
    "yellow": ("yellow", "gold"),
    "orange": ("orange", "darkorange"),
    "purple": ("purple", "darkviolet", "darkorchid"),
    "white": ("white", "whitesmoke", "snow"),
    "cyan": ("cyan", "darkturquoise"),
}
# Backgrounds as named colours (far from the object colour; checked per clip).
BACKGROUND_NAMES: tuple[str, ...] = ("black", "dimgray", "gray", "darkgray", "lightgray", "darkslategray",
                                     "midnightblue", "saddlebrown", "beige", "lightsteelblue", "tan", "darkolivegreen")
MIN_BACKGROUND_DISTANCE = 110.0


def _nearest_canonical(rgb: Sequence[float]) -> str:
    return min(COLOUR_RGB, key=lambda c: float(np.linalg.norm(np.subtract(rgb, COLOUR_RGB[c]))))


for _canon, _names in CSS_NAMES.items():
    for _n in _names:
        assert _nearest_canonical(ImageColor.getrgb(_n)) == _canon, (_canon, _n)


def _hex(name: str) -> str:
    """A colour name as ffmpeg's 0xRRGGBB (ffmpeg knows most CSS names but spells a few differently)."""
    return "0x%02X%02X%02X" % ImageColor.getrgb(name)


def ffmpeg_binary() -> str | None:
    return shutil.which("ffmpeg")


# --------------------------------------------------------------------------- what to draw

def _path(motion: str, w: int, h: int, r0: float, rng: np.random.Generator) -> dict[str, float]:
    """Start and end centre (x0, y0, x1, y1) and radius (r0, r1), in pixels, of an object moving by `motion`."""
    if motion in ("grow", "shrink"):
        small, large = r0 * 0.55, min(r0 * 1.7, min(w, h) * 0.42)
        ra, rb = (small, large) if motion == "grow" else (large, small)
        cx, cy = float(rng.uniform(large, w - large)), float(rng.uniform(large, h - large))
        return {"x0": cx, "x1": cx, "y0": cy, "y1": cy, "r0": ra, "r1": rb}
    along, across = (w, h) if motion in ("left", "right") else (h, w)
    dist = float(rng.uniform(0.45, 0.7)) * (along - 2 * r0)
    start = float(rng.uniform(r0, along - r0 - dist))
    a, b = (start, start + dist) if motion in ("right", "down") else (start + dist, start)
    other = float(rng.uniform(r0 * 1.2, across - r0 * 1.2))
    xy = {"x0": a, "x1": b, "y0": other, "y1": other} if motion in ("left", "right") else {
        "x0": other, "x1": other, "y0": a, "y1": b}
    return {**xy, "r0": r0, "r1": r0}


def _at(obj: dict[str, Any], t: Any) -> tuple[Any, Any, Any]:
    """Centre x, y and radius of a planned object at time t in [0, 1] (a number or an array of them)."""
    return tuple(obj[f"{k}0"] + (obj[f"{k}1"] - obj[f"{k}0"]) * t for k in ("x", "y", "r"))


def _centres(obj: dict[str, Any], n: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _at(obj, np.linspace(0.0, 1.0, n))


def _second_object(main: dict[str, Any], shapes: Sequence[str], rng: np.random.Generator,
                   tries: int = 12) -> dict[str, Any]:
    """A second, smaller object (mean radius 0.5-0.62 of the main one's) of another colour, far from the
    background colour, on a path that keeps clear of the main one (the best of a few tries)."""
    others = [c for c in COLOUR_RGB if c != main["colour"] and all(
        np.linalg.norm(np.subtract(ImageColor.getrgb(n), ImageColor.getrgb(main["background"])))
        >= MIN_BACKGROUND_DISTANCE for n in CSS_NAMES[c])] or [c for c in COLOUR_RGB if c != main["colour"]]
    colour = others[int(rng.integers(len(others)))]
    css = CSS_NAMES[colour][int(rng.integers(len(CSS_NAMES[colour])))]
    motion = OUTSIDE_MOTIONS[int(rng.integers(len(OUTSIDE_MOTIONS)))]
    mean_main = (main["r0"] + main["r1"]) / 2
    growth = 1.125 if motion in ("grow", "shrink") else 1.0  # a path's mean radius over its r0
    mx, my, mr = _centres(main)
    best, best_gap = {}, -np.inf
    for _ in range(tries):
        r0 = float(rng.uniform(0.5, 0.62)) * mean_main / growth
        path = _path(motion, main["width"], main["height"], r0, rng)
        x, y, r = _centres(path)
        gap = float(np.min(np.hypot(x - mx, y - my) - (r + mr)))
        if gap > best_gap:
            best, best_gap = path, gap
        if gap >= 0:
            break
    return {"colour": colour, "css_colour": css, "rgb": list(ImageColor.getrgb(css)),
            "shape": shapes[int(rng.integers(len(shapes)))], "motion": motion, **best}


def _plan(source: str, container: str, k: int, rng: np.random.Generator, quick: bool = False,
          two: bool = False) -> dict[str, Any]:
    """Attributes and geometry (pixels) of one clip; `two`: a second, smaller object (`plan["second"]`)."""
    shapes = FFMPEG_SHAPES if source == "ffmpeg" else PIL_SHAPES
    sizes = FFMPEG_SIZES if source == "ffmpeg" else PIL_SIZES
    if quick:
        sizes = ((176, 144), (320, 180), (144, 192))
    colour = list(COLOUR_RGB)[int(rng.integers(len(COLOUR_RGB)))]
    css = CSS_NAMES[colour][int(rng.integers(len(CSS_NAMES[colour])))]
    rgb = ImageColor.getrgb(css)
    motion = OUTSIDE_MOTIONS[(k + int(rng.integers(len(OUTSIDE_MOTIONS)))) % len(OUTSIDE_MOTIONS)]
    w, h = sizes[int(rng.integers(len(sizes)))]
    if quick:  # every quick size in a set of a few clips: one per container, in turn
        w, h = sizes[(CONTAINERS.index(container) + k) % len(sizes)]
    fps = int(rng.choice([10, 12, 15] if w * h > 200_000 else [12, 15, 24, 25, 30]))
    duration = float(rng.choice([2.0, 2.5, 3.0]))
    if quick:
        fps, duration = 10, 2.0
    bg = [n for n in BACKGROUND_NAMES
          if np.linalg.norm(np.subtract(ImageColor.getrgb(n), rgb)) >= MIN_BACKGROUND_DISTANCE]
    background = bg[int(rng.integers(len(bg)))]
    m = min(w, h)
    # The object a caption opens with is the larger of two (as in the synthetic corpus): drawn large there.
    r0 = float(rng.uniform(0.16, 0.2) if two else rng.uniform(0.12, 0.2)) * m  # radius in pixels
    plan = {"colour": colour, "shape": shapes[int(rng.integers(len(shapes)))], "motion": motion,
            "css_colour": css, "rgb": list(rgb), "width": w, "height": h, "fps": fps, "duration": duration,
            "background": background, "source": source, "container": container,
            **_path(motion, w, h, r0, rng)}
    if two:
        plan["second"] = _second_object(plan, shapes, rng)
    plan["noise"] = bool(rng.random() < 0.3)
    plan["bg_style"] = ("plain", "gradient", "blotches")[int(rng.integers(3))] if source == "pil" else (
        "gradient" if rng.random() < 0.3 else "plain")
    plan["bg2"] = bg[int(rng.integers(len(bg)))]
    plan["bg_seed"] = int(rng.integers(2**31))
    plan["shake"] = source == "pil" and bool(np.random.default_rng(plan["bg_seed"] + 2).random() < SHAKE_SHARE)
    return plan


def aspect_group(width: int, height: int) -> str:
    """The ASPECT_GROUPS name of a width x height frame."""
    return next(name for name, upper in ASPECT_GROUPS if width / height < upper)


def _shake(frames: np.ndarray, seed: int) -> np.ndarray:
    """Each frame moved by a random offset of up to 2% of its size (edges repeated), as a hand-held camera."""
    n, h, w, _ = frames.shape
    rng = np.random.default_rng(seed)
    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        dy, dx = (int(rng.integers(-m, m + 1)) for m in (max(1, h // 50), max(1, w // 50)))
        padded = np.pad(f, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
        out[i] = padded[abs(dy) + dy:abs(dy) + dy + h, abs(dx) + dx:abs(dx) + dx + w]
    return out


def _n_frames(plan: dict[str, Any]) -> int:
    return int(round(plan["fps"] * plan["duration"]))


# --------------------------------------------------------------------------- the set


def load_outside_set(directory: str | Path) -> list[tuple[Path, dict]]:
    """(path, label) for every clip listed in directory/labels.json, sorted by file name."""
    d = Path(directory)
    clips = json.loads((d / LABELS_JSON).read_text())["clips"]
    return [(d / name, clips[name]) for name in sorted(clips)]


def decode_clip_file(path: str | Path, frames: int, height: int, width: int,
                     fit: FrameFit = "stretch") -> np.ndarray:
    """Any video file -> the model's input, float32 (frames, height, width, 3) in [0, 1], by the very
    code the service runs on an upload: `core.media.prepare_upload` (format sniffing, PyAV decoding
    with its pre-scaling and limits, then `core.frames.prepare_clip`)."""
    from core.config import ModelConfig
    from core.media import MediaLimits, prepare_upload

    cfg = ModelConfig(video_input="frames", frames=frames, height=height, width=width, frame_fit=fit)
    return prepare_upload(Path(path).read_bytes(), cfg, MediaLimits()).array


def outside_box(label: dict[str, Any], cfg: ModelConfig) -> Box | None:
    """Where an outside file's picture lies in the model's frame; None when it fills it."""
    w, h = (int(v) for v in label["size"].split("x"))
    return picture_box(h, w, cfg.height, cfg.width, cfg.frame_fit)


def outside_truth(label: dict[str, Any], cfg: ModelConfig) -> dict[str, Any]:
    """An outside clip's label with the box its picture takes in the model's frame (letterboxing models)."""
    box = outside_box(label, cfg)
    return {**label, "frame_box": list(box)} if box else label


# --------------------------------------------------------------------------- scoring


def outside_accuracy(caption_fn: Callable[[Any], str], clips: Sequence[tuple[Path, dict]],
                     frames: int | None = None, height: int | None = None, width: int | None = None,
                     max_failures: int = 20, fit: FrameFit = "stretch") -> dict[str, Any]:
    """Colour / shape / motion / all accuracy of captions (read back with `parse_attributes`), overall,
    per container, per source, per motion, per aspect-ratio group and per background (camera shake apart),
    over the one-object clips (comparable with sets that had no others); `by_objects` holds one- and two-object
    clips apart, a two-object caption scored against the object it names (`described_object`), and
    `binding_two_objects` reads each clause of those captions alone (`object_binding`).

    caption_fn is called once per clip with the decoded model input (float32 (T, H, W, 3) from
    `decode_clip_file`) when frames, height and width are given, else with the file's Path (e.g. to
    POST it to the service).
    """
    decode = frames is not None and height is not None and width is not None
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    failures, two_captions, two_labels = [], [], []
    for path, label in clips:
        caption = caption_fn(decode_clip_file(path, frames, height, width, fit) if decode else path)
        parsed = parse_attributes(caption)
        named = described_object(parsed, label)
        ok = [parsed.get(a) == named[a] for a in ATTRIBUTES]
        w, h = (int(v) for v in label["size"].split("x"))
        background = "shake" if label.get("shake") else label["bg_style"]
        groups = [f"objects:{'two' if label.get('objects') else 'one'}"]
        if label.get("objects"):
            two_captions.append(caption)
            two_labels.append(label)
        else:
            groups += ["overall", f"container:{label['container']}", f"source:{label['source']}",
                       f"motion:{label['motion']}", f"aspect:{aspect_group(w, h)}", f"background:{background}"]
        for group in groups:
            h = hits[group.split(":")[0]][group]
            for i, good in enumerate(ok):
                h[i] += good
            h[3] += all(ok)
            h[4] += 1
        if not all(ok) and len(failures) < max_failures:
            failures.append({"file": Path(path).name, "caption": caption,
                             "truth": {a: label[a] for a in ATTRIBUTES}})

    def rates(h: list[int]) -> dict[str, float]:
        return {**{a: h[i] / h[4] for i, a in enumerate(ATTRIBUTES)}, "all": h[3] / h[4], "n": h[4]}

    one = hits["overall"]["overall"]
    result: dict[str, Any] = {"n": len(clips), "overall": rates(one) if one[4] else {}}
    for kind in ("container", "source", "motion", "aspect", "background", "objects"):
        result[f"by_{kind}"] = {g.split(":", 1)[1]: rates(h) for g, h in sorted(hits[kind].items())}
    if two_labels:
        result["binding_two_objects"] = object_binding(two_captions, two_labels)
    result["failures"] = failures
    return result
