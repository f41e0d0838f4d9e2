"""Contact sheets: labelled rows of frames as one picture, for people to look at (evaluation and the benches).
numpy and Pillow only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SCALE = 3
LABEL_W = 300
PAD = 4


def frames_row(frames: np.ndarray, scale: int = SCALE) -> Image.Image:
    """T frames [T,H,W,3] in [0,1] side by side, upscaled."""
    t, h, w, _ = frames.shape
    strip = np.concatenate(list(np.clip(np.rint(frames * 255), 0, 255).astype(np.uint8)), axis=1)
    return Image.fromarray(strip).resize((t * w * scale, h * scale), Image.Resampling.NEAREST)


def sheet(rows: list[tuple[str, np.ndarray]], label_w: int = LABEL_W) -> Image.Image:
    """Labelled rows of frames, one image; a row is as tall as its frames or its label, whichever is taller."""
    images = [frames_row(f) for _, f in rows]
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    heights = [max(i.height, int(draw.multiline_textbbox((0, 0), label)[3]) + 8) for (label, _), i in zip(rows, images)]
    width = label_w + max(i.width for i in images) + 2 * PAD
    height = sum(h + PAD for h in heights) + PAD
    out = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(out)
    y = PAD
    for (label, _), img, h in zip(rows, images, heights):
        draw.text((PAD, y + 4), label, fill=(20, 20, 20))
        out.paste(img, (label_w + PAD, y))
        y += h + PAD
    return out


def save_sheet(image: Image.Image, out: str | Path) -> str:
    """Write the sheet (folders made as needed); the line to print."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return f"wrote {out} ({image.width}x{image.height})"
