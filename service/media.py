"""Video out: the model's frames as a looping GIF or as PNG frames (the `format=json` answer)."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

MAX_SCALE = 8
DISPLAY_WIDTH = 256  # the default scale makes a clip at least this wide: the model's 64 px are a thumbnail


def display_scale(width: int, scale: int | None = None) -> int:
    """The asked scale, or the smallest that shows a `width`-pixel frame at DISPLAY_WIDTH or more."""
    return scale if scale is not None else max(1, min(MAX_SCALE, -(-DISPLAY_WIDTH // max(1, width))))


def to_uint8(frames: np.ndarray, scale: int = 1) -> np.ndarray:
    """f32 [T,H,W,3] in [0,1] -> uint8, upsampled by an integer factor (nearest: crisp pixels for viewing)."""
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be in 1..{MAX_SCALE}")
    out = np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=-3).repeat(scale, axis=-2)
    return out


def encode_gif(frames: np.ndarray, scale: int = 1, fps: float = 8.0) -> bytes:
    """A looping GIF of f32 frames [T,H,W,3]."""
    # Quantise each frame ourselves (fast octree, no dither): Pillow's default conversion costs ~50 ms per
    # 8-frame GIF, the whole cost of a /sentence-to-video request; this takes ~2 ms.
    images = [Image.fromarray(f).quantize(method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
              for f in to_uint8(frames, scale)]
    buf = io.BytesIO()
    # GIF stores a delay in centiseconds as 16 bits, and Pillow merges identical frames by adding their delays:
    # clamp so that even all frames merged fit, whatever tiny fps passed validation (5e-324 is > 0).
    delay_ms = int(min(max(1000.0 / fps, 20.0), 655_000.0 / max(1, len(images))))
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=delay_ms, loop=0, disposal=1)
    return buf.getvalue()


def encode_png_frames(frames: np.ndarray, scale: int = 1) -> list[str]:
    """Each frame as a base64 PNG (the `format=json` answer)."""
    out = []
    for f in to_uint8(frames, scale):
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out
