"""Frame preprocessing shared by training and serving: the model sees in production what it learned on.

A clip of any length and size becomes exactly T frames of H x W RGB, float32 in [0, 1], layout
(T, H, W, 3). Torch-free (numpy + Pillow): the service imports this module.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from core.config import FrameFit

# Box filter when shrinking: it averages every source pixel, as an area resize does, so thin edges
# and small objects keep their colour instead of aliasing away.
RESIZE_FILTER = Image.Resampling.BOX

# FrameFit "stretch" squeezes a frame of another aspect ratio to H x W (a square in a portrait clip reaches the model
# as a flat bar); "pad" scales it whole into the largest centred box of its own aspect ratio and fills the rest with
# black bars, as a player letterboxes.
Box = tuple[int, int, int, int]  # top, left, height, width
# What an exact black pixel of a "pad" picture becomes (uint8, each channel): exact black is left to the bars, so that
# a black background is not read as bars (the sprite decoder finds bars as black rows and columns from edge to edge,
# model/star.py picture_mask; it drew a clip on black inside its object's bounding box only). 0: black stays black.
PICTURE_FLOOR = 1


def sample_indices(n_frames: int, t: int) -> np.ndarray:
    """T indices spread evenly over n_frames (centres of T equal segments); repeats when n < T."""
    if n_frames <= 0:
        raise ValueError("a clip needs at least one frame")
    return np.minimum(((np.arange(t) + 0.5) * n_frames / t).astype(np.int64), n_frames - 1)


def fit_box(src_h: int, src_w: int, height: int, width: int) -> Box:
    """(top, left, h, w): where a src_h x src_w picture lands, its aspect ratio kept, in a height x width frame."""
    scale = min(height / src_h, width / src_w)
    h = min(height, max(1, round(src_h * scale)))
    w = min(width, max(1, round(src_w * scale)))
    return (height - h) // 2, (width - w) // 2, h, w


def picture_box(src_h: int, src_w: int, height: int, width: int, fit: FrameFit) -> Box | None:
    """Where a src_h x src_w clip's own picture lies in the model's frame; None when it fills the frame."""
    if fit != "pad":
        return None
    box = fit_box(src_h, src_w, height, width)
    return None if box[2:] == (height, width) else box


def crop_box(frames: np.ndarray, box: Box | list[int] | None) -> np.ndarray:
    """[..., H, W, C] frames cut to a letterboxed picture's box (the bars left out); unchanged without a box."""
    if not box:
        return frames
    top, left, h, w = box
    return frames[..., top:top + h, left:left + w, :]


def resize_frame(frame: np.ndarray, height: int, width: int, fit: FrameFit = "stretch") -> np.ndarray:
    """One uint8 (h, w, 3) frame to (height, width, 3) (stretched: a no-op when it already has that size; padded: the
    picture's exact black pixels lifted to PICTURE_FLOOR, the bars exact black)."""
    if fit == "pad":
        top, left, h, w = fit_box(frame.shape[0], frame.shape[1], height, width)
        out = np.zeros((height, width, 3), np.uint8)
        picture = out[top:top + h, left:left + w]
        picture[:] = resize_frame(frame, h, w)
        # The channels OR-ed as three views, not picture.max(axis=-1): numpy reduces a 3-long last axis slowly
        # (53 against 13 us a 36x48 picture, 8 of them an upload: a tenth of a decode worker's CPU per upload).
        picture[(picture[..., 0] | picture[..., 1] | picture[..., 2]) == 0] = PICTURE_FLOOR
        return out
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), RESIZE_FILTER))


def to_rgb_uint8(frames: np.ndarray) -> np.ndarray:
    """Accept (N, h, w), (N, h, w, 1|3|4) uint8 or float in [0, 1]; return (N, h, w, 3) uint8."""
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"frames must be (N, H, W[, C]) with C in 1, 3, 4; got shape {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError("frames contain NaN or infinite values")
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def clip_pixels(frames: np.ndarray, t: int, height: int, width: int, fit: FrameFit = "stretch") -> np.ndarray:
    """Any clip -> the model's frames as uint8 (T, height, width, 3): the pixels prepare_clip scales to [0, 1]."""
    rgb = to_rgb_uint8(frames)
    picked = rgb[sample_indices(len(rgb), t)]
    return np.stack([resize_frame(f, height, width, fit) for f in picked])


def unit_frames(pixels: np.ndarray) -> np.ndarray:
    """uint8 frames -> the model's float32 input in [0, 1] (each value exactly k / 255: rounding back is exact)."""
    return pixels.astype(np.float32) / 255.0


def prepare_clip(frames: np.ndarray, t: int, height: int, width: int, fit: FrameFit = "stretch") -> np.ndarray:
    """Any clip -> the model's input: (T, height, width, 3) float32 in [0, 1]."""
    return unit_frames(clip_pixels(frames, t, height, width, fit))
