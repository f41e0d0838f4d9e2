"""Real lossy codecs for training clips: `codec_roundtrip(frames, rng)` runs a clip through a real codec
(h264 / vp8 / vp9 / mpeg4 / gif) in memory with PyAV, decodes it back and passes it through
`core.frames.prepare_clip` -- slow (milliseconds per clip), so it is meant for precomputing a share of the
training clips at data time: `roundtrip_corpus_share`. The on-the-fly degradations of a training batch are
model/data/augment.py's. Torch-free (usable from the data room, `slr data synth`).
"""
from __future__ import annotations

import io
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.frames import prepare_clip

if TYPE_CHECKING:
    from model.data.corpus import Clip


# name -> (container format, codec, pixel format); each with its own quality knob below.
CODECS: dict[str, tuple[str, str, str]] = {
    "h264": ("mp4", "libx264", "yuv420p"),
    "h264_mov": ("mov", "libx264", "yuv420p"),
    "vp8": ("webm", "libvpx", "yuv420p"),
    "vp9": ("webm", "libvpx-vp9", "yuv420p"),
    "mpeg4": ("avi", "mpeg4", "yuv420p"),
    "gif": ("gif", "pil", "pal8"),
}
# How often each codec is drawn (h264 dominates real uploads).
CODEC_WEIGHTS: dict[str, float] = {"h264": 0.4, "h264_mov": 0.1, "vp8": 0.1, "vp9": 0.15, "mpeg4": 0.1, "gif": 0.15}


def _even(n: int) -> int:
    return n + (n % 2)


def _encode_size(h: int, w: int, rng: np.random.Generator) -> tuple[int, int]:
    """The size the clip is encoded at: its own, or 2-5x larger (as an upload is, before the service
    shrinks it), sometimes at 4:3 (then squeezed back). Always even, as yuv420p needs."""
    if rng.random() < 0.4:
        return _even(h), _even(w)
    k = float(rng.choice([2.0, 3.0, 4.0, 5.0]))
    aspect = 0.75 if rng.random() < 0.25 else 1.0
    return _even(round(h * k)), _even(round(w * k * aspect))


def _resize_clip(frames: np.ndarray, h: int, w: int, resample: Image.Resampling) -> np.ndarray:
    if frames.shape[1:3] == (h, w):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), resample)) for f in frames])


def encode_frames(frames: np.ndarray, codec: str, quality: float, fps: int = 12) -> bytes:
    """uint8 (T, h, w, 3) -> the bytes of a real file, encoded in memory. `quality` in [0, 1]: 1 best.

    gif goes through Pillow's palette quantiser (as most GIF writers do); the rest through PyAV.
    """
    import av

    fmt, lib, pix = CODECS[codec]
    if lib == "pil":
        colours = int(round(16 + quality * 240))
        dither = Image.Dither.FLOYDSTEINBERG if quality < 0.5 else Image.Dither.NONE
        images = [Image.fromarray(f).quantize(colours, method=Image.Quantize.MEDIANCUT, dither=dither) for f in frames]
        buf = io.BytesIO()
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        return buf.getvalue()
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError("yuv420p codecs need even frame sizes")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        options: dict[str, str] = {}
        if lib == "libx264":
            options = {"crf": str(int(round(40 - 22 * quality))), "preset": "veryfast"}
        elif lib == "libvpx-vp9":
            options = {"crf": str(int(round(55 - 25 * quality))), "b": "0", "deadline": "realtime", "cpu-used": "8"}
        elif lib == "libvpx":
            options = {"deadline": "realtime", "cpu-used": "8"}
        stream = out.add_stream(lib, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix
        if lib in ("libvpx", "mpeg4"):  # bitrate-driven: bits per pixel per frame
            stream.bit_rate = int(frames.shape[1] * frames.shape[2] * fps * (0.05 + 0.45 * quality))
        stream.thread_count = 1
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def decode_frames(data: bytes) -> np.ndarray:
    """All frames of an in-memory video as uint8 (N, h, w, 3), decoded by PyAV (as the service does)."""
    import av
    from av.video.reformatter import VideoReformatter

    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        reformatter = VideoReformatter()  # one swscale context for the clip, not one per frame (2x faster)
        frames = [reformatter.reformat(f, format="rgb24").to_ndarray() for f in container.decode(stream)]
    if not frames:
        raise ValueError("no decodable frames")
    return np.stack(frames)


def codec_roundtrip(frames_uint8: np.ndarray, rng: np.random.Generator, codec: str | None = None,
                    quality: float | None = None) -> np.ndarray:
    """A clip through a real lossy codec and back: uint8 (T, H, W, 3) -> float32 (T, H, W, 3) in [0, 1],
    the output of `core.frames.prepare_clip` on the decoded frames, at the clip's own T, H, W.

    Codec (see CODECS, drawn by CODEC_WEIGHTS), quality and the size it is encoded at (its own, or
    2-5x larger and squeezed back by prepare_clip's box filter, as an upload is) come from `rng`.
    """
    frames = np.asarray(frames_uint8)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    names = list(CODEC_WEIGHTS)
    weights = np.array([CODEC_WEIGHTS[k] for k in names])
    pick = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    q = float(rng.uniform(0.15, 1.0))
    codec = codec or pick
    quality = q if quality is None else quality
    eh, ew = _encode_size(h, w, rng)
    resample = Image.Resampling.BILINEAR if rng.random() < 0.5 else Image.Resampling.BICUBIC
    big = _resize_clip(frames, eh, ew, resample)
    fps = int(rng.choice([8, 10, 12, 15, 25]))
    decoded = decode_frames(encode_frames(big, codec, quality, fps))
    return prepare_clip(decoded, t, h, w)


def roundtrip_corpus_share(clips: list["Clip"], share: float, seed: int) -> list["Clip"]:
    """A copy of `clips` in which a `share` of them (chosen by `seed`) carry codec-round-tripped frames
    instead of their own; their attributes gain `codec` (the codec name). Other clips are returned as
    they are (same objects). Clips without frames are left alone."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must be in [0, 1]")
    master = np.random.default_rng([seed, 0xC0DEC])
    chosen = set(master.choice(len(clips), int(round(share * len(clips))), replace=False).tolist()) if clips else set()
    out: list[Clip] = []
    for i, clip in enumerate(clips):
        if i not in chosen or clip.frames is None:
            out.append(clip)
            continue
        rng = np.random.default_rng([seed, i])
        names = list(CODEC_WEIGHTS)
        weights = np.array([CODEC_WEIGHTS[k] for k in names])
        codec = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        video = codec_roundtrip(clip.frames, rng, codec=codec)
        frames = np.rint(video * 255.0).astype(np.uint8)  # exact: prepare_clip divides uint8 by 255
        out.append(replace(clip, frames=frames, attributes={**clip.attributes, "codec": codec}))
    return out
