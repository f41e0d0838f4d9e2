"""Writing the outside test set (model/data/outside.py: what it holds, how it is read and scored): its clips
drawn and encoded by software other than the generator, and labels.json.

Two drawing sources:

* `ffmpeg`: ffmpeg's own filters (`color` / `gradients` sources for the background, a sprite whose
  alpha is a `geq` expression of time for the shape -- circle, square, triangle, growing or shrinking --
  moved by `overlay` with time expressions, optional `noise`), encoded by ffmpeg itself. Needs the
  `ffmpeg` binary (Debian: `apt-get install ffmpeg`); skipped when it is missing.
* `pil`: Pillow's ImageDraw (ellipse, rectangle, polygons for triangle / diamond / star / cross, no
  antialiasing) over plain, gradient or blotchy backgrounds, encoded by ffmpeg (PyAV / Pillow when the
  binary is missing).

Torch-free.
"""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from model.data.attributes import ATTRIBUTES
from model.data.outside import (
    CONTAINERS,
    LABELS_JSON,
    SOURCES,
    _at,
    _hex,
    _n_frames,
    _plan,
    _shake,
    aspect_group,
    ffmpeg_binary,
)

# --------------------------------------------------------------------------- ffmpeg-drawn clips

def _alpha_expr(shape: str, c: float, r: str) -> str:
    """A geq alpha expression (0..255, soft edge) of a shape of radius expression r centred at (c, c)."""
    if shape == "circle":
        d = f"hypot(X-{c:.2f},Y-{c:.2f})"
        return f"255*clip(({r})-{d}+0.5,0,1)"
    if shape == "square":
        d = f"max(abs(X-{c:.2f}),abs(Y-{c:.2f}))"
        return f"255*clip(0.85*({r})-{d}+0.5,0,1)"
    # triangle, apex up: top at c - r, base at c + 0.7 r, half base = r
    top, k = f"({c:.2f}-({r}))", 1.0 / 1.7
    inside = f"gte(Y,{top})*lte(Y,{c:.2f}+0.7*({r}))*lte(abs(X-{c:.2f}),(Y-{top})*{k:.4f})"
    return f"255*{inside}"


def _encoder_args(container: str, rng: np.random.Generator) -> list[str]:
    if container in ("mp4", "mov"):
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(rng.choice([20, 23, 26, 30]))),
                "-pix_fmt", "yuv420p"]
    if container == "webm":
        if rng.random() < 0.5:
            return ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0",
                    "-crf", str(int(rng.choice([30, 36, 42]))), "-pix_fmt", "yuv420p"]
        return ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k", "-pix_fmt", "yuv420p"]
    if container == "avi":
        return ["-c:v", "mpeg4", "-q:v", str(int(rng.choice([3, 5, 8]))), "-pix_fmt", "yuv420p"]
    raise ValueError(container)


def _gif_filter(rng: np.random.Generator) -> str:
    """Either ffmpeg's two-pass palette (palettegen + paletteuse) or its default rgb8 (3-3-2) palette."""
    if rng.random() < 0.6:
        dither = str(rng.choice(["bayer", "sierra2_4a", "none"]))
        colours = int(rng.choice([32, 64, 128, 256]))
        return f"split[g0][g1];[g0]palettegen=max_colors={colours}[pal];[g1][pal]paletteuse=dither={dither}"
    return "format=rgb8"


def _run_ffmpeg(args: list[str]) -> None:
    cmd = [ffmpeg_binary() or "ffmpeg", "-nostdin", "-v", "error", "-y", "-threads", "1"] + args
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}")


def _sprite(obj: dict[str, Any], fps: int, dur: float, label: str) -> tuple[str, str]:
    """An ffmpeg sprite source of one object (filter chain to `[label]`) and its overlay position expressions."""
    size = 2 * int(np.ceil(max(obj["r0"], obj["r1"]) * 1.05)) + 4
    c = size / 2.0
    r = f"{obj['r0']:.2f}+({obj['r1'] - obj['r0']:.2f})*T/{dur}"
    sprite = (f"color=c={_hex(obj['css_colour'])}:s={size}x{size}:r={fps}:d={dur},format=rgba,"
              f"geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='{_alpha_expr(obj['shape'], c, r)}'[{label}]")
    ox = f"{obj['x0'] - c:.2f}+({obj['x1'] - obj['x0']:.2f})*t/{dur}"
    oy = f"{obj['y0'] - c:.2f}+({obj['y1'] - obj['y0']:.2f})*t/{dur}"
    return sprite, f"overlay=x='{ox}':y='{oy}':shortest=1"


def _ffmpeg_clip(plan: dict[str, Any], path: Path, rng: np.random.Generator) -> None:
    w, h, fps, dur = plan["width"], plan["height"], plan["fps"], plan["duration"]
    if plan["bg_style"] == "gradient":
        bg = (f"gradients=s={w}x{h}:r={fps}:d={dur}:c0={_hex(plan['background'])}:c1={_hex(plan['bg2'])}:nb_colors=2:"
              f"speed=0.00001:x0=0:y0=0:x1={w}:y1={h}")
    else:
        bg = f"color=c={_hex(plan['background'])}:s={w}x{h}:r={fps}:d={dur}"
    chain, under = f"{bg}[bg];", "bg"
    if "second" in plan:  # drawn first: the main object passes over it
        sprite, overlay = _sprite(plan["second"], fps, dur, "spr2")
        chain, under = chain + f"{sprite};[bg][spr2]{overlay}[bg2];", "bg2"
    sprite, overlay = _sprite(plan, fps, dur, "spr")
    chain += f"{sprite};[{under}][spr]{overlay}"
    if plan["noise"]:
        chain += ",noise=alls=8:allf=t"
    if plan["container"] == "gif":
        chain += "," + _gif_filter(rng)
        _run_ffmpeg(["-filter_complex", chain + "[out]", "-map", "[out]", "-loop", "0", str(path)])
    else:
        chain += ",format=yuv420p"
        _run_ffmpeg(["-filter_complex", chain + "[out]", "-map", "[out]", *_encoder_args(plan["container"], rng),
                     str(path)])


# --------------------------------------------------------------------------- Pillow-drawn clips

def _pil_background(plan: dict[str, Any]) -> np.ndarray:
    w, h = plan["width"], plan["height"]
    a = np.array(ImageColor.getrgb(plan["background"]), np.float32)
    if plan["bg_style"] == "plain":
        return np.broadcast_to(a, (h, w, 3)).astype(np.uint8)
    rng = np.random.default_rng(plan["bg_seed"])
    if plan["bg_style"] == "gradient":
        b = np.array(ImageColor.getrgb(plan["bg2"]), np.float32)
        ramp = np.linspace(0, 1, h if rng.random() < 0.5 else w, dtype=np.float32)
        ramp = ramp[:, None, None] if len(ramp) == h else ramp[None, :, None]
        return np.broadcast_to(a * (1 - ramp) + b * ramp, (h, w, 3)).astype(np.uint8)
    # blotches: smooth low-frequency variation around the background colour
    small = rng.normal(0, 14, (4, 5, 3)).astype(np.float32)
    img = Image.fromarray(np.clip(small + 128, 0, 255).astype(np.uint8))
    up = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), np.float32) - 128
    return np.clip(a + up, 0, 255).astype(np.uint8)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + 0.7 * r), (cx - r * 0.95, cy + 0.7 * r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + 0.8 * r, cy), (cx, cy + r), (cx - 0.8 * r, cy)]
    if shape == "star":
        pts = []
        for i in range(10):
            rr = r if i % 2 == 0 else r * 0.45
            ang = -np.pi / 2 + i * np.pi / 5
            pts.append((cx + rr * np.cos(ang), cy + rr * np.sin(ang)))
        return pts
    if shape == "cross":
        a, b = r, r * 0.34
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b), (cx + a, cy + b),
                (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a), (cx - b, cy + b), (cx - a, cy + b),
                (cx - a, cy - b), (cx - b, cy - b)]
    raise ValueError(shape)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
                fill: tuple[int, ...]) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        s = 0.85 * r
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=fill)


def pil_frames(plan: dict[str, Any]) -> np.ndarray:
    """The uint8 (N, h, w, 3) frames of a Pillow-drawn clip."""
    bg = Image.fromarray(_pil_background(plan))
    n = _n_frames(plan)
    objects = [plan["second"], plan] if "second" in plan else [plan]  # the main object on top
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        im = bg.copy()
        draw = ImageDraw.Draw(im)
        for obj in objects:
            cx, cy, r = _at(obj, t)
            _draw_shape(draw, obj["shape"], cx, cy, r, tuple(obj["rgb"]))
        frames.append(np.asarray(im))
    out = np.stack(frames)
    if plan.get("shake"):
        out = _shake(out, plan["bg_seed"] + 3)
    if plan["noise"]:
        noise = np.random.default_rng(plan["bg_seed"] + 1).normal(0, 5, out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    return out


def _encode_pil(frames: np.ndarray, plan: dict[str, Any], path: Path, rng: np.random.Generator) -> None:
    n, h, w, _ = frames.shape
    if ffmpeg_binary() is None:
        _encode_without_ffmpeg(frames, plan, path, rng)
        return
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(plan["fps"]), "-i", "-"]
    if plan["container"] == "gif":
        args = raw + ["-filter_complex", f"[0:v]{_gif_filter(rng)}[out]", "-map", "[out]", "-loop", "0", str(path)]
    else:
        args = raw + _encoder_args(plan["container"], rng) + [str(path)]
    cmd = [ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-threads", "1"] + args
    cmd.remove("-nostdin")  # frames come on stdin
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}")


def _encode_without_ffmpeg(frames: np.ndarray, plan: dict[str, Any], path: Path, rng: np.random.Generator) -> None:
    """PyAV (mp4 / mov / webm / avi) or Pillow (gif) when there is no ffmpeg binary."""
    import av

    if plan["container"] == "gif":
        images = [Image.fromarray(f).quantize(128, method=Image.Quantize.MEDIANCUT) for f in frames]
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 / plan["fps"]), loop=0)
        return
    codec = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4"}[plan["container"]]
    options = {"libx264": {"crf": "26", "preset": "veryfast"},
               "libvpx-vp9": {"crf": "36", "b": "0", "deadline": "realtime", "cpu-used": "8"}}.get(codec, {})
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=plan["fps"], options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 600_000
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def build_outside_set(out_dir: str | Path, seed: int = 0, n_per_kind: int = 8,
                      sources: Sequence[str] = SOURCES, containers: Sequence[str] = CONTAINERS,
                      quick: bool = False, two_per_kind: int | None = None) -> list[dict]:
    """Write n_per_kind one-object clips and two_per_kind two-object clips (default a quarter of n_per_kind)
    per (source, container) into out_dir plus labels.json; return the labels (each with its `file` name).
    2 sources x 5 containers x (8 + 2) = 100 clips by default. Sources whose tool is missing (ffmpeg) are
    skipped. Deterministic by seed (the drawing; encoders may differ by version). `quick` (tests): small
    frames, 2 s at 10 fps."""
    if two_per_kind is None:
        two_per_kind = n_per_kind // 4
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    have_ffmpeg = ffmpeg_binary() is not None
    labels: dict[str, dict] = {}
    t0 = time.monotonic()
    for si, source in enumerate(sources):
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        if source == "ffmpeg" and not have_ffmpeg:
            continue
        for ci, container in enumerate(containers):
            if container not in CONTAINERS:
                raise ValueError(f"unknown container {container!r}")
            for k in range(n_per_kind + two_per_kind):
                two = k >= n_per_kind
                rng = np.random.default_rng([seed, si, ci, k] + ([2] if two else []))
                plan = _plan(source, container, k, rng, quick, two)
                kind = f"two{k - n_per_kind:02d}" if two else f"{k:02d}"
                name = f"{source}_{container}_{kind}_{plan['colour']}_{plan['shape']}_{plan['motion']}.{container}"
                if source == "ffmpeg":
                    _ffmpeg_clip(plan, out / name, rng)
                else:
                    _encode_pil(pil_frames(plan), plan, out / name, rng)
                labels[name] = {
                    "colour": plan["colour"], "shape": plan["shape"], "motion": plan["motion"], "source": source,
                    "container": container, "size": f"{plan['width']}x{plan['height']}", "fps": plan["fps"],
                    "duration": plan["duration"], "css_colour": plan["css_colour"], "rgb": plan["rgb"],
                    "background": plan["background"], "bg_style": plan["bg_style"], "noise": plan["noise"],
                    "shake": plan["shake"], "aspect": aspect_group(plan["width"], plan["height"]),
                    "encoder": "ffmpeg" if have_ffmpeg else "pyav",
                }
                if two:  # the main object (described first: the larger) then the second, as the corpus lists them
                    labels[name]["objects"] = [{a: o[a] for a in (*ATTRIBUTES, "css_colour")}
                                               for o in (plan, plan["second"])]
    meta = {"seed": seed, "n_per_kind": n_per_kind, "two_per_kind": two_per_kind, "quick": quick,
            "build_s": round(time.monotonic() - t0, 2), "ffmpeg": have_ffmpeg}
    (out / LABELS_JSON).write_text(json.dumps({"meta": meta, "clips": labels}, indent=1, sort_keys=True))
    return [{"file": k, **v} for k, v in labels.items()]
