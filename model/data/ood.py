"""An out-of-domain evaluation set: clips unlike the synthetic world (one or two coloured shapes on a plain-ish
background), built here by code and never by the synthetic generator. What `slr eval --ood` and the familiarity
calibration are checked against: the model should say it does not know these.

Kinds (each a few clips, deterministic by seed, 240 x 320 frames like an ordinary upload):
- `photo`: a real photograph (scikit-image's bundled ones) panned and zoomed by a moving crop;
- `texture`: a greyscale texture photograph or coloured noise under a moving camera;
- `crowd`: many small objects of many colours and shapes, each moving its own way;
- `text`: lines of text scrolling up a page;
- `road`: a road scene drawn with Pillow (sky, grass, road, a car driving across);
- `ui`: a screen recording of a window (title bar, buttons, a list scrolling, a pointer moving);
- `empty`: a plain or gradient background with camera noise and no object at all.
Torch-free.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.config import ModelConfig
from core.frames import Box, picture_box, prepare_clip

FRAMES, HEIGHT, WIDTH = 16, 240, 320
OOD_KINDS: tuple[str, ...] = ("photo", "texture", "crowd", "text", "road", "ui", "empty")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "colorwheel")
TEXTURES = ("brick", "grass", "gravel", "camera")


@dataclass
class OodClip:
    clip_id: str
    kind: str
    frames: np.ndarray  # uint8 [T, H, W, 3]


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def _moving_crops(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera over `img`: a crop of the output's aspect ratio that pans and zooms across it, resized."""
    h, w = img.shape[:2]
    zoom0, zoom1 = rng.uniform(0.45, 0.9, size=2)
    frames = []
    start, end = rng.uniform(0, 1, size=2), rng.uniform(0, 1, size=2)
    for t in np.linspace(0, 1, FRAMES):
        zoom = zoom0 + (zoom1 - zoom0) * t
        ch = int(min(h, w * HEIGHT / WIDTH) * zoom)
        cw = int(ch * WIDTH / HEIGHT)
        fy, fx = start + (end - start) * t
        y, x = int(fy * (h - ch)), int(fx * (w - cw))
        crop = Image.fromarray(img[y:y + ch, x:x + cw])
        frames.append(np.asarray(crop.resize((WIDTH, HEIGHT), Image.BILINEAR)))
    return np.stack(frames)


def photo_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    return _moving_crops(_photo(PHOTOS[i % len(PHOTOS)]), rng)


def texture_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    if i % 2 == 0:
        img = _photo(TEXTURES[(i // 2) % len(TEXTURES)])
    else:  # coloured noise, smoothed at a random scale
        small = rng.integers(0, 256, size=(rng.integers(8, 40), rng.integers(8, 40), 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((640, 480), Image.BICUBIC))
    return _moving_crops(img, rng)


def crowd_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    n = int(rng.integers(12, 30))
    pos = rng.uniform([0, 0], [WIDTH, HEIGHT], size=(n, 2))
    vel = rng.uniform(-12, 12, size=(n, 2))
    size = rng.uniform(6, 16, size=n)
    colours = rng.integers(0, 256, size=(n, 3))
    background = tuple(int(c) for c in rng.integers(0, 256, size=3))
    frames = []
    for t in range(FRAMES):
        img = Image.new("RGB", (WIDTH, HEIGHT), background)
        draw = ImageDraw.Draw(img)
        for (x, y), (vx, vy), s, c, k in zip(pos, vel, size, colours, range(n)):
            x, y = (x + vx * t) % WIDTH, (y + vy * t) % HEIGHT
            box = (x - s, y - s, x + s, y + s)
            (draw.ellipse if k % 2 else draw.rectangle)(box, fill=tuple(int(v) for v in c))
        frames.append(np.asarray(img))
    return np.stack(frames)


WORDS = ("the quarterly report shows revenue growth across all regions while costs remained stable and the team "
         "plans to expand into new markets next year with a focus on customer retention and product quality").split()


def text_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    paper = tuple(int(c) for c in rng.integers(200, 256, size=3))
    ink = tuple(int(c) for c in rng.integers(0, 80, size=3))
    page = Image.new("RGB", (WIDTH, HEIGHT * 3), paper)
    draw = ImageDraw.Draw(page)
    for row in range(0, HEIGHT * 3, 14):
        line = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 9))))
        draw.text((10, row), line, fill=ink)
    speed = int(rng.integers(6, 20))
    arr = np.asarray(page)
    return np.stack([arr[t * speed:t * speed + HEIGHT] for t in range(FRAMES)])


def road_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    car = tuple(int(c) for c in rng.integers(0, 256, size=3))
    horizon = int(rng.integers(80, 120))
    direction = 1 if i % 2 == 0 else -1
    frames = []
    for t in range(FRAMES):
        img = Image.new("RGB", (WIDTH, HEIGHT), (120, 170, 235))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, horizon, WIDTH, HEIGHT), fill=(70, 140, 60))
        draw.polygon([(WIDTH * 0.4, horizon), (WIDTH * 0.6, horizon), (WIDTH, HEIGHT), (0, HEIGHT)], fill=(90, 90, 95))
        for k in range(6):  # lane marks moving towards the viewer
            y = horizon + ((k * 30 + t * 6) % (HEIGHT - horizon))
            draw.rectangle((WIDTH / 2 - 2, y, WIDTH / 2 + 2, y + 10), fill=(240, 240, 240))
        draw.ellipse((230, 20, 270, 60), fill=(250, 240, 150))  # the sun
        x = (40 + 15 * t) if direction > 0 else (WIDTH - 100 - 15 * t)
        y = horizon + 50
        draw.rectangle((x, y, x + 70, y + 22), fill=car)
        draw.rectangle((x + 15, y - 14, x + 55, y), fill=car)
        draw.ellipse((x + 8, y + 16, x + 24, y + 32), fill=(20, 20, 20))
        draw.ellipse((x + 46, y + 16, x + 62, y + 32), fill=(20, 20, 20))
        frames.append(np.asarray(img))
    return np.stack(frames)


def ui_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    accent = tuple(int(c) for c in rng.integers(0, 200, size=3))
    frames = []
    pointer = rng.uniform([40, 60], [280, 200])
    target = rng.uniform([40, 60], [280, 200])
    for t in range(FRAMES):
        img = Image.new("RGB", (WIDTH, HEIGHT), (236, 236, 240))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, WIDTH, 22), fill=accent)
        draw.text((8, 5), "Settings - Preferences", fill=(255, 255, 255))
        draw.rectangle((0, 22, 80, HEIGHT), fill=(210, 212, 220))
        for k in range(8):
            draw.text((8, 32 + k * 22), f"Section {k + 1}", fill=(30, 30, 30))
        for k in range(12):  # a list scrolling
            y = 30 + k * 20 - t * 4
            if 22 < y < HEIGHT - 30:
                draw.rectangle((90, y, WIDTH - 10, y + 16), outline=(180, 180, 190), fill=(255, 255, 255))
                draw.text((96, y + 3), f"item {k + 1}: option value {k * 7 % 13}", fill=(40, 40, 40))
        draw.rectangle((WIDTH - 90, HEIGHT - 26, WIDTH - 10, HEIGHT - 6), fill=accent)
        draw.text((WIDTH - 75, HEIGHT - 22), "Apply", fill=(255, 255, 255))
        px, py = pointer + (target - pointer) * t / (FRAMES - 1)
        draw.polygon([(px, py), (px, py + 14), (px + 4, py + 10), (px + 9, py + 12)], fill=(0, 0, 0))
        frames.append(np.asarray(img))
    return np.stack(frames)


def empty_clip(rng: np.random.Generator, i: int) -> np.ndarray:
    a, b = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    ramp = np.linspace(0, 1, WIDTH, dtype=np.float32)[None, :, None] if i % 2 else np.zeros((1, 1, 1), np.float32)
    base = a * (1 - ramp) + b * ramp
    noise = rng.normal(0, 4, size=(FRAMES, HEIGHT, WIDTH, 1)).astype(np.float32)
    return np.clip(np.broadcast_to(base, (HEIGHT, WIDTH, 3))[None] + noise, 0, 255).astype(np.uint8)


KIND_MAKERS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "photo": photo_clip, "texture": texture_clip, "crowd": crowd_clip, "text": text_clip, "road": road_clip,
    "ui": ui_clip, "empty": empty_clip,
}


def ood_set(per_kind: int = 8, seed: int = 0) -> list[OodClip]:
    """`per_kind` clips of each kind (OOD_KINDS), uint8 [16, 240, 320, 3] each."""
    clips = []
    for kind in OOD_KINDS:
        for i in range(per_kind):
            rng = np.random.default_rng([seed, OOD_KINDS.index(kind), i])
            clips.append(OodClip(f"ood_{kind}_{i:02d}", kind, KIND_MAKERS[kind](rng, i)))
    return clips


def model_input(clips: Sequence[OodClip], cfg: ModelConfig) -> tuple[np.ndarray, list[Box | None]]:
    """The clips fitted to the model's frame as an upload's frames are ([N,T,H,W,3] in [0, 1]), and where each one's
    picture lies in it: what `slr eval --ood` and the release gate score."""
    video = np.stack([prepare_clip(c.frames, cfg.frames, cfg.height, cfg.width, cfg.frame_fit) for c in clips])
    boxes = [picture_box(c.frames.shape[1], c.frames.shape[2], cfg.height, cfg.width, cfg.frame_fit) for c in clips]
    return video, boxes
