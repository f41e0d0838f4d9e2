"""Test clips shared by the tests and the benches: a coloured square sliding over a dark background, and real files
of it in every format the service reads (mp4, mov, webm, avi by PyAV; GIF by Pillow through imageio; .npy).

`from bench.clips import ...` (tests, `python -m bench.x`) and `from clips import ...` (`python bench/x.py`).
"""
from __future__ import annotations

import io

import numpy as np

# container -> (imageio extension, PyAV codec); yuv420p needs even sizes (the default clip is 64x48).
VIDEO_CODECS = {"mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "webm": ("webm", "libvpx"),
                "avi": ("avi", "mpeg4")}
FORMATS = (*VIDEO_CODECS, "gif", "npy")


def moving_square_clip(n_frames: int = 12, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A square of a seeded colour sliding left to right over a dark background: uint8 [N,H,W,3]."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(80, 256, size=3, dtype=np.uint8)
    clip = np.full((n_frames, height, width, 3), 16, dtype=np.uint8)
    size = max(2, height // 3)
    for t in range(n_frames):
        x = int((width - size) * t / max(1, n_frames - 1))
        clip[t, height // 3: height // 3 + size, x: x + size] = colour
    return clip


def encode_clip(frames: np.ndarray, fmt: str, fps: int = 8) -> bytes:
    """uint8 frames as a real file of the given format (a key of VIDEO_CODECS, 'gif' or 'npy')."""
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, frames, allow_pickle=False)
        return buf.getvalue()
    import imageio.v3 as iio

    if fmt == "gif":
        return iio.imwrite("<bytes>", frames, extension=".gif", duration=int(1000 / fps), loop=0)
    ext, codec = VIDEO_CODECS[fmt]
    return iio.imwrite("<bytes>", frames, extension=f".{ext}", plugin="pyav", codec=codec, fps=fps)
