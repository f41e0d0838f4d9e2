"""Figures 3-5 style (Pillow only): for a few test clips, the input, the ground truth and every model's output; and
the learning curves (validation figures against steps, every model, mean over seeds) in one figure."""
from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.paper.plan import LABELS, MODELS, STAR_ROWS, TASK_TITLES

FIG_BG, FIG_FG, FIG_LABEL = (255, 255, 255), (20, 20, 20), (90, 90, 90)
LABEL_W, FRAME_H, TEXT_W = 240, 54, 74
LINE_H = 18
Row = tuple[str, Any]  # (label, frames array or text)


def _font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 (pyproject allows 10.0): the bitmap font only
        return ImageFont.load_default()


def _strip(frames: np.ndarray, height: int = FRAME_H):
    """(T, H, W, 3) in [0, 1] or uint8 -> one image of the frames side by side, 2 px apart."""
    from PIL import Image

    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    t, h, w = arr.shape[:3]
    scale = max(1, round(height / h))
    tiles = [Image.fromarray(f).resize((w * scale, h * scale), Image.NEAREST) for f in arr]
    out = Image.new("RGB", (t * (w * scale + 2) - 2, h * scale), (200, 200, 200))
    for i, tile in enumerate(tiles):
        out.paste(tile, (i * (w * scale + 2), 0))
    return out


def _lay_out(label: str, content: Any) -> tuple[str, Any, int]:
    """(label, image or wrapped lines, height in px) of one row."""
    if isinstance(content, np.ndarray):
        img = _strip(content)
        return label, img, img.height + 8
    lines = textwrap.wrap(str(content), TEXT_W) or ["(empty)"]
    return label, lines, LINE_H * len(lines) + 6


def compose_figure(title: str, examples: list[list[Row]], path: Path) -> Path:
    """One PNG: a title, then per example rows of (label, content); content is a frame array or a string."""
    from PIL import Image, ImageDraw

    font, bold = _font(14), _font(16)
    blocks = [[_lay_out(label, content) for label, content in rows] for rows in examples]
    content_w = max([900] + [LABEL_W + r[1].width + 10 for b in blocks for r in b if not isinstance(r[1], list)])
    height = 40 + sum(sum(r[2] for r in b) + 24 for b in blocks)
    canvas = Image.new("RGB", (content_w, height), FIG_BG)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 10), title, fill=FIG_FG, font=bold)
    y = 40
    for block in blocks:
        draw.line([(0, y), (content_w, y)], fill=(180, 180, 180), width=1)
        y += 8
        for label, content, h in block:
            draw.text((10, y + 2), label, fill=FIG_LABEL, font=font)
            if isinstance(content, list):
                for i, line in enumerate(content):
                    draw.text((LABEL_W, y + 2 + i * LINE_H), line, fill=FIG_FG, font=font)
            else:
                canvas.paste(content, (LABEL_W, y))
            y += h
        y += 16
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _feature_text(clip) -> str:
    f = np.asarray(clip.features)
    return f"[{clip.clip_id}: feature input, shape {tuple(f.shape)}; no frames in this corpus]"


def _first_captions(clips) -> list[str]:
    return [c.captions[0] for c in clips]


def _outputs_fn(task: str) -> Callable[[Any, list[Any]], list[Any]]:
    """task -> f(checkpoint, clips): the model's outputs on those clips (sentences or frame arrays)."""
    from model.inference import caption_clips, paraphrase_sentences, reconstruct_clips, sentences_to_video

    return {"caption": lambda c, clips: caption_clips(c.model, c.vocab, clips),
            "paraphrase": lambda c, clips: paraphrase_sentences(c.model, c.vocab, _first_captions(clips)),
            "reconstruct": lambda c, clips: reconstruct_clips(c.model, clips),
            "sentence_to_video": lambda c, clips: sentences_to_video(c.model, c.vocab, _first_captions(clips))}[task]


def _given_rows(task: str, clip) -> list[Row]:
    """The input and the ground truth of one example."""
    video_in = clip.frames if clip.frames is not None else _feature_text(clip)
    return {"caption": lambda: [("input video", video_in), ("ground truth", " | ".join(clip.captions[:2]))],
            "paraphrase": lambda: [("input sentence", clip.captions[0]),
                                   ("ground truth", " | ".join(clip.captions[1:3]) or clip.captions[0])],
            "reconstruct": lambda: [("input video", video_in), ("ground truth", clip.frames)],
            "sentence_to_video": lambda: [("input sentence", clip.captions[0]), ("ground truth", clip.frames)]}[task]()


def _checkpoint_path(work: Path, row: str, task: str) -> Path:
    from model.train import CHECKPOINT

    return work / (row if row in STAR_ROWS else f"{row}_{task}") / CHECKPOINT


def make_figures(corpus, work: Path, tasks: Sequence[str], n: int, out_dir: Path, prefix: str) -> dict[str, str]:
    """Figures 3-5 style: for a few test clips, the input, the ground truth and every model's output (seed's models
    under `work`). Returns {task: png path}."""
    from model.checkpoint import load_checkpoint

    test = corpus.splits["test"]
    single = [c for c in test if len(c.attributes.get("objects", [None])) == 1]  # one object: a readable figure
    clips = (single or test)[:n]
    paths = {(row, task): _checkpoint_path(work, row, task) for task in tasks for row in MODELS}
    # Each checkpoint loaded once (a star stage serves every task); a model not trained for a task has none.
    loaded = {path: load_checkpoint(path) for path in set(paths.values()) if path.exists()}
    figures: dict[str, str] = {}
    for task in tasks:
        outputs = {row: _outputs_fn(task)(loaded[paths[(row, task)]], clips)
                   for row in MODELS if paths[(row, task)] in loaded}
        examples = [_given_rows(task, clip) + [(LABELS[row].replace(" (video-to-sentence)", ""), out[i])
                                               for row, out in outputs.items()]
                    for i, clip in enumerate(clips)]
        title = f"{TASK_TITLES[task]} ({task}) on {corpus.name} test clips: input, ground truth, each model's output"
        figures[task] = str(compose_figure(title, examples, out_dir / "figures" / f"{prefix}{task}.png"))
    return figures


# ---------------------------------------------------------------- learning curves

CURVE_COLOURS = {"lstm": (31, 119, 180), "vae": (255, 127, 14), "slr": (44, 160, 44), "slr_noalign": (148, 103, 189),
                 "slr_ft": (214, 39, 40)}
PANEL_W, PANEL_H, PAD_L, PAD_B, PAD_T = 620, 330, 58, 40, 34
FIGURE_NAMES = {"caption": "caption attribute accuracy (colour, shape, motion)",
                "paraphrase": "paraphrase attribute accuracy (colour, shape, motion)",
                "reconstruct": "video probe on reconstructions (colour, motion)",
                "sentence_to_video": "video probe on generated clips (colour, motion)"}
Line = tuple[str, list[tuple[float, float]]]  # (row, [(step, figure)])


def curve_lines(curves: dict[str, list[dict[str, Any]]], task: str) -> list[Line]:
    """The lines of one task's panel: its two baselines, the star model with and without the alignment term
    (full- then partial-model learning) and the fine-tuning phase (mean over seeds)."""
    sources = [("lstm", f"lstm/{task}", None), ("vae", f"vae/{task}", None), ("slr", "slr", None),
               ("slr_noalign", "slr_noalign", None), ("slr_ft", "slr_ft", "finetune")]
    lines = []
    for row, key, phase in sources:
        pts = [(p["step"], p["tasks"][task]) for p in curves.get(key, [])
               if task in p["tasks"] and (phase is None or p["phase"] == phase)]
        if pts:
            lines.append((row, pts))
    return lines


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def _step_ticks(hi: float) -> list[float]:
    """Round step numbers (a multiple of 1, 2 or 5 times a power of ten), about five of them."""
    raw = max(hi / 4, 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [k * step for k in range(int(hi // step) + 1)]


def draw_panel(draw, box: tuple[int, int], title: str, lines: list[Line], boundary: int | None) -> None:
    """One panel at `box` (left, top): axes, ticks, a dashed line where partial-model learning begins, the lines."""
    font = _font(12)
    x0, y0 = box[0] + PAD_L, box[1] + PAD_T
    w, h = PANEL_W - PAD_L - 16, PANEL_H - PAD_T - PAD_B
    xs = [x for _, pts in lines for x, _ in pts]
    ys = [y for _, pts in lines for _, y in pts]
    x_hi = max(xs) or 1
    y_lo, y_hi = (0.0, 1.0) if min(ys) >= 0 and max(ys) <= 1 else (min(ys), max(ys) + 1e-9)  # losses: their range

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + w * x / x_hi, y0 + h * (1 - (y - y_lo) / (y_hi - y_lo))

    draw.text((box[0] + 8, box[1] + 8), title, fill=FIG_FG, font=_font(13))
    draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(120, 120, 120))
    for yv in _ticks(y_lo, y_hi):
        _, py = at(0, yv)
        draw.line([(x0, py), (x0 + w, py)], fill=(232, 232, 232))
        draw.text((box[0] + 6, py - 7), f"{yv:.2f}", fill=FIG_LABEL, font=font)
    for xv in _step_ticks(x_hi):
        px, _ = at(xv, y_lo)
        draw.text((px - 12, y0 + h + 6), f"{xv:.0f}", fill=FIG_LABEL, font=font)
    draw.text((x0 + w // 2 - 20, y0 + h + 22), "steps", fill=FIG_LABEL, font=font)
    if boundary and boundary < x_hi:
        bx, _ = at(boundary, y_lo)
        for yy in range(int(y0), int(y0 + h), 8):
            draw.line([(bx, yy), (bx, yy + 4)], fill=(150, 150, 150))
    for row, pts in lines:
        xy = [at(x, y) for x, y in pts]
        if len(xy) > 1:
            draw.line(xy, fill=CURVE_COLOURS[row], width=2)
        for px, py in xy:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=CURVE_COLOURS[row])


def learning_curves_figure(curves: dict[str, list[dict[str, Any]]], tasks: Sequence[str], boundary: int | None,
                           path: Path, loss_figures: bool = False) -> Path | None:
    """One PNG: a panel per task (validation figure against steps, one line per model row, mean over seeds), the
    legend on top; None when nothing was validated."""
    from PIL import Image, ImageDraw

    panels = [(t, curve_lines(curves, t)) for t in tasks]
    panels = [(t, lines) for t, lines in panels if lines]
    if not panels:
        return None
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    legend_h = 64 if cols > 1 else 100
    canvas = Image.new("RGB", (cols * PANEL_W, legend_h + rows * PANEL_H), FIG_BG)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), "Learning curves: validation figure against training steps, mean over seeds (dashed: "
                       "partial-model learning begins)", fill=FIG_FG, font=_font(15))
    x, y = 10, 40
    for row, colour in CURVE_COLOURS.items():  # the legend, wrapped to the figure's width
        label = LABELS[row].replace(" (video-to-sentence)", "")
        width = 40 + int(draw.textlength(label, font=_font(12)))
        if x + width > canvas.width:
            x, y = 10, y + 18
        draw.line([(x, y + 7), (x + 24, y + 7)], fill=colour, width=3)
        draw.text((x + 30, y), label, fill=FIG_FG, font=_font(12))
        x += width
    for k, (task, lines) in enumerate(panels):
        name = "minus the validation loss" if loss_figures else FIGURE_NAMES[task]
        box = ((k % cols) * PANEL_W, legend_h + (k // cols) * PANEL_H)
        draw_panel(draw, box, f"{TASK_TITLES[task]}: {name}", lines, boundary)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
