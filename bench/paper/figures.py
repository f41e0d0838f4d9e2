"""Figures 3-5 style (Pillow only): for a few test clips, the input, the ground truth and every model's output."""
from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.paper.plan import LABELS, MODELS, STAR_STAGES, TASK_TITLES

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
    from model.evaluate import caption_clips, paraphrase_sentences, reconstruct_clips, sentences_to_video

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

    return work / (row if row in STAR_STAGES else f"{row}_{task}") / CHECKPOINT


def make_figures(corpus, work: Path, tasks: Sequence[str], n: int, out_dir: Path, prefix: str) -> dict[str, str]:
    """Figures 3-5 style: for a few test clips, the input, the ground truth and every model's output (seed's models
    under `work`). Returns {task: png path}."""
    from model.star import load_checkpoint

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
