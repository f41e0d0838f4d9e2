"""Media in: mp4/webm/avi/mov/gif decoded in process with PyAV, `.npy` read with numpy, each becoming the
model's video input. The one decode path that serving, training's outside set and evaluation share; knows
nothing of HTTP (its errors carry a stable code that the service maps to a status) and nothing of the engine.

Every clip ends in `core.frames.prepare_clip`, the very function training used, so the model sees
in production what it learned on. PyAV's scaler only shrinks very large frames first (to a few times
the model size), which keeps decoding cheap without changing what the box filter averages much.
"""
from __future__ import annotations

import io
import math
import struct
import time
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from core.config import ModelConfig
from core.frames import Box, picture_box, prepare_clip, sample_indices, to_rgb_uint8

VIDEO_FORMATS = ("mp4", "mov", "webm", "avi", "gif")
SUPPORTED = VIDEO_FORMATS + ("npy",)
# Frames larger than this multiple of the model size are shrunk by PyAV while decoding.
PRE_SCALE = 4


class MediaError(ValueError):
    """An upload that cannot become the model's input; `code` is stable and machine-readable."""

    code = "media_error"


class UnsupportedMedia(MediaError):
    code = "unsupported_media_type"


class UndecodableMedia(MediaError):
    code = "undecodable_media"


class MediaLimitExceeded(MediaError):
    code = "media_limit_exceeded"


@dataclass(frozen=True)
class MediaLimits:
    max_frames: int = 2000
    max_pixels: int = 1920 * 1080
    max_decode_s: float = 10.0


@dataclass(frozen=True)
class PreparedVideo:
    """The model input of one upload and, for frames models, its first frame (reconstruct conditions on it)."""

    array: np.ndarray  # f32 [T,H,W,3] in [0,1], or [T,D] features
    first_frame: np.ndarray | None  # f32 [H,W,3] or None for features
    # Where the upload's own picture lies in a letterboxed frame ("pad" models); None when it fills the frame.
    box: Box | None = None


def detect_format(data: bytes) -> str:
    """Container format from the magic bytes; the client's filename and content type are not trusted."""
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"  # EBML: webm or matroska, both decoded by the same demuxer
    if data[4:8] == b"ftyp":
        return "mov" if data[8:12] == b"qt  " else "mp4"
    if data.startswith(b"RIFF") and data[8:12] == b"AVI ":
        return "avi"
    if not data:
        raise UndecodableMedia("the uploaded file is empty")
    raise UnsupportedMedia(f"unsupported media type; send one of {', '.join(SUPPORTED)}")


# Formats this service does not read, by their magic bytes: what an error tells a person their file looks like.
OTHER_SIGNATURES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"%PDF", "a PDF document"),
                    (b"PK\x03\x04", "a zip archive"), (b"RIFF", "a RIFF file that is not an AVI (a WAV?)"),
                    (b"ID3", "an MP3 file"), (b"OggS", "an Ogg file"), (b"BM", "a BMP image"))


def looks_like(head: bytes) -> str:
    """What an unsupported upload's first bytes look like, in words."""
    for magic, what in OTHER_SIGNATURES:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes of no format it knows"
    return "text" if text.strip() else "blank bytes"


def _decode_size(width: int, height: int, cfg: ModelConfig) -> tuple[int, int]:
    if cfg.frame_fit == "stretch":
        return min(width, PRE_SCALE * cfg.width), min(height, PRE_SCALE * cfg.height)
    # Letterboxing needs the clip's own aspect ratio: one scale for both sides.
    scale = min(1.0, PRE_SCALE * cfg.width / width, PRE_SCALE * cfg.height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# Frame threads from this many pixels per frame up. Measured with bench/decode.py on 2 quiet cores, threads never
# paid: prepare_upload 79 vs 74 ms at 640x480 and 203 vs 178 ms at 1280x720 (on 320x240 and below they doubled
# the time on busy cores), so they are off by default; a host with more cores may lower this.
THREAD_MIN_PIXELS = 1 << 40


def _open_video(data: bytes, limits: MediaLimits) -> tuple[Any, Any]:
    """(container, its first video stream), with the per-frame pixel limit checked from the header."""
    container = av.open(io.BytesIO(data), mode="r")
    if not container.streams.video:
        container.close()
        raise UndecodableMedia("the file has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        container.close()
        raise MediaLimitExceeded(f"video is {width}x{height}; at most {limits.max_pixels} pixels per frame")
    if width * height >= THREAD_MIN_PIXELS:
        stream.thread_type = "AUTO"
    return container, stream


def _count_frames(data: bytes, limits: MediaLimits) -> int:
    """Frames in the file, from its packets (demuxing only, no decoding): for containers that do not say."""
    container, stream = _open_video(data, limits)
    with container:
        n = 0
        for packet in container.demux(stream):
            n += packet.size > 0  # the demuxer's final flush packet is empty
            if n > limits.max_frames:
                raise MediaLimitExceeded(f"video has more than {limits.max_frames} frames")
    return n


def _decode_picked(data: bytes, cfg: ModelConfig, limits: MediaLimits, picks: set[int] | None,
                   start: float) -> tuple[dict[int, np.ndarray], int, int]:
    """Decode every frame (the codec needs them) but colour-convert and scale only the picked indices:
    ({index: uint8 [h,w,3]}, frames decoded, the frame count the picks came from). picks None: sampled from the
    container's own count, or from its packets when it has none. Memory holds the picked frames only."""
    container, stream = _open_video(data, limits)
    out_w, out_h = _decode_size(stream.codec_context.width, stream.codec_context.height, cfg)
    kept: dict[int, np.ndarray] = {}
    # One reformatter for the clip: `frame.to_ndarray(width=..., ...)` builds a new swscale context for every frame,
    # which cost more than decoding (bench/decode.py: 320x240 x 48, 18-22 ms against 8.4-8.9 ms with one shared).
    reformatter = VideoReformatter()
    n = 0
    with container:
        # The container's own count refuses a long video before decoding any of it; the decoder's count below
        # still holds for containers that do not say, or lie.
        expected = stream.frames
        if expected > limits.max_frames:
            raise MediaLimitExceeded(f"video has {expected} frames; at most {limits.max_frames}")
        if picks is None:
            expected = expected or _count_frames(data, limits)
            picks = set(sample_indices(max(expected, 1), cfg.frames).tolist())
        for frame in container.decode(stream):
            if n in picks:
                kept[n] = reformatter.reformat(frame, width=out_w, height=out_h, format="rgb24").to_ndarray()
            n += 1
            if n > limits.max_frames:
                raise MediaLimitExceeded(f"video has more than {limits.max_frames} frames")
            if time.monotonic() - start > limits.max_decode_s:
                raise MediaLimitExceeded(f"decoding took longer than {limits.max_decode_s:g} s")
    return kept, n, expected


def decode_video_bytes(data: bytes, cfg: ModelConfig, limits: MediaLimits) -> np.ndarray:
    """The T frames the model samples from a video file, uint8 [T,h,w,3], enforcing the frame, pixel and time
    limits. The indices are `sample_indices` of the clip's frame count (the container's own, or its packets'),
    so the frames are the ones a decode of the whole clip followed by sampling would pick; a container whose
    count was wrong costs a second pass, never a different answer."""
    start = time.monotonic()
    try:
        kept, n, expected = _decode_picked(data, cfg, limits, None, start)
        picks = sample_indices(max(expected, 1), cfg.frames)
        if n and n != expected:  # the count was wrong: pick again from the true count
            picks = sample_indices(n, cfg.frames)
            if not set(picks.tolist()) <= kept.keys():
                kept, n, _ = _decode_picked(data, cfg, limits, set(picks.tolist()), start)
    except (MediaLimitExceeded, UndecodableMedia):
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError, IndexError) as e:
        raise UndecodableMedia(f"could not decode the video: {e}") from None
    if n == 0:
        raise UndecodableMedia("the video has no decodable frames")
    return np.stack([kept[i] for i in picks.tolist()])


def load_npy(data: bytes) -> np.ndarray:
    """A .npy from bytes, its header checked before any array memory is allocated.

    Object and structured dtypes are refused from the header (nothing is ever unpickled), and the shape the
    header declares must match the bytes actually sent: a 100-byte file claiming a 300 GB array is refused
    here instead of numpy allocating the array first. The array is a read-only view of the upload (no copy).
    """
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not accepted (send 1.0 or 2.0)")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise UndecodableMedia(f"could not read the .npy header: {e}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise UndecodableMedia(f".npy dtype {dtype} is refused: send a plain numeric array (no objects, no records)")
    count = math.prod(shape)
    offset = buf.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise UndecodableMedia(f".npy header declares {tuple(shape)} {dtype} ({count * dtype.itemsize} bytes) "
                               f"but the file holds {len(data) - offset} bytes of data")
    a = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return a.reshape(shape[::-1]).transpose() if fortran else a.reshape(shape)


def _frames_from_npy(a: np.ndarray, limits: MediaLimits) -> np.ndarray:
    if a.ndim not in (3, 4) or a.dtype.kind not in "uif":
        raise UndecodableMedia(f".npy frames must be numeric (N,H,W[,C]); got {a.dtype} {a.shape}")
    if a.size == 0:
        raise UndecodableMedia(f".npy frames are empty: shape {a.shape}")
    if len(a) > limits.max_frames:
        raise MediaLimitExceeded(f".npy has {len(a)} frames; at most {limits.max_frames}")
    if a.shape[1] * a.shape[2] > limits.max_pixels:
        raise MediaLimitExceeded(f"frames are {a.shape[2]}x{a.shape[1]}; at most {limits.max_pixels} pixels")
    if a.dtype.kind in "ui" and a.dtype != np.uint8:
        a = a.astype(np.float32) / 255.0  # integer frames other than uint8 are taken as 0..255
    try:
        return to_rgb_uint8(a)
    except ValueError as e:
        raise UndecodableMedia(f"bad .npy frames: {e}") from None


def _features_from_npy(a: np.ndarray, cfg: ModelConfig, limits: MediaLimits) -> np.ndarray:
    """(D,) or (Tf,D) features -> (T,D) float32: time resampled like frames are."""
    if a.dtype.kind not in "uif" or a.ndim not in (1, 2) or a.shape[-1] != cfg.feature_dim:
        raise UndecodableMedia(f"features must be (D,) or (Tf, D) with D={cfg.feature_dim}; got {a.dtype} {a.shape}")
    a = np.asarray(a, dtype=np.float32).reshape(-1, cfg.feature_dim)
    if len(a) == 0 or len(a) > limits.max_frames:
        raise MediaLimitExceeded(f"features need 1..{limits.max_frames} rows; got {len(a)}")
    if not np.isfinite(a).all():
        raise UndecodableMedia("features contain NaN or infinite values")
    return np.ascontiguousarray(a[sample_indices(len(a), cfg.frames)])


def check_gif_canvas(data: bytes, limits: MediaLimits) -> None:
    """A GIF's logical screen (bytes 6..9) is the canvas every frame is drawn on: refuse a huge claim up front."""
    if len(data) < 10:
        raise UndecodableMedia("the GIF is truncated before its screen descriptor")
    width, height = struct.unpack("<HH", data[6:10])
    if width * height > limits.max_pixels:
        raise MediaLimitExceeded(f"GIF canvas is {width}x{height}; at most {limits.max_pixels} pixels per frame")


def prepare_upload(data: bytes, cfg: ModelConfig, limits: MediaLimits) -> PreparedVideo:
    """Any supported upload -> the model's video input (the one entry point the predictor calls)."""
    fmt = detect_format(data)
    if fmt == "gif":
        check_gif_canvas(data, limits)
    if cfg.video_input == "features":
        if fmt != "npy":
            raise UnsupportedMedia("this model takes precomputed features: upload a .npy of shape (Tf, D)")
        return PreparedVideo(_features_from_npy(load_npy(data), cfg, limits), None)
    frames = _frames_from_npy(load_npy(data), limits) if fmt == "npy" else decode_video_bytes(data, cfg, limits)
    clip = prepare_clip(frames, cfg.frames, cfg.height, cfg.width, cfg.frame_fit)
    return PreparedVideo(clip, clip[0], picture_box(frames.shape[1], frames.shape[2], cfg.height, cfg.width,
                                                    cfg.frame_fit))
