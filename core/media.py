"""Media in: mp4/webm/avi/mov/gif decoded in process with PyAV, `.npy` read with numpy, each becoming the
model's video input. The one decode path that serving, training's outside set and evaluation share; knows
nothing of HTTP (its errors carry a stable code that the service maps to a status) and nothing of the engine.

Every clip ends in `core.frames.clip_pixels` (what `prepare_clip` is made of), the very function training used, so
the model sees in production what it learned on. PyAV's scaler only shrinks very large frames first (to a few times
the model size), which keeps decoding cheap without changing what the box filter averages much.
"""
from __future__ import annotations

import functools
import io
import math
import struct
import time
from dataclasses import dataclass
from typing import IO, Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from core.config import ModelConfig
from core.frames import Box, clip_pixels, fit_box, picture_box, sample_indices, to_rgb_uint8, unit_frames

VIDEO_FORMATS = ("mp4", "mov", "webm", "avi", "gif")
SUPPORTED = VIDEO_FORMATS + ("npy",)
# Frames larger than this multiple of the model size are shrunk by PyAV while decoding.
PRE_SCALE = 4
# Frames that PyAV would shrink are shrunk to their place in the model's frame in one step (swscale's area average,
# as prepare_clip's box filter averages): a 320x240 frame 0.18 ms against 0.36 ms to PRE_SCALE times the model size
# and 0.13 ms more in Pillow; its letterbox box read from the clip's own size, not the pre-scaled one (off by a row
# on 12 of the outside set's files). False keeps the two steps (bench/decode.py --captions compares the answers).
DIRECT_SCALE = True
# An upload in memory, or spooled to a (seekable) file that is decoded from where it lies, never read whole.
Source = bytes | IO[bytes]
HEAD_BYTES = 16  # enough for every signature detect_format and check_gif_canvas read


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
    """The model input of one upload: a frames model's uint8 pixels, or a features model's features; for frames, its
    first frame too (reconstruct conditions on it). The floats are made from the pixels where first read: a decode
    worker sends the pixels alone (a quarter of the bytes; service/decoding.py) and never makes them."""

    pixels: np.ndarray | None = None  # uint8 [T,H,W,3] (core.frames.clip_pixels), or None for features
    features: np.ndarray | None = None  # f32 [T,D] for a features model
    # Where the upload's own picture lies in a letterboxed frame ("pad" models); None when it fills the frame.
    box: Box | None = None

    @functools.cached_property
    def array(self) -> np.ndarray:
        """The model's input: f32 [T,H,W,3] in [0,1] (core.frames.unit_frames of the pixels, made once), or the
        features."""
        if self.pixels is not None:
            return unit_frames(self.pixels)
        assert self.features is not None, "a PreparedVideo holds pixels or features"
        return self.features

    @property
    def first_frame(self) -> np.ndarray | None:
        """f32 [H,W,3], or None for features."""
        return self.array[0] if self.pixels is not None else None


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


def _readable(source: Source) -> IO[bytes]:
    """A file object at the source's start (each decode pass reads it from the beginning)."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    source.seek(0)
    return source


def head(source: Source) -> bytes:
    """The first bytes of an upload, for its format."""
    return source[:HEAD_BYTES] if isinstance(source, bytes) else _readable(source).read(HEAD_BYTES)


def _place(width: int, height: int, cfg: ModelConfig) -> tuple[int, int]:
    """(w, h): the size a width x height picture takes in the model's frame (its letterbox box, or all of it)."""
    if cfg.frame_fit == "stretch":
        return cfg.width, cfg.height
    _, _, h, w = fit_box(height, width, cfg.height, cfg.width)
    return w, h


def _decode_size(width: int, height: int, cfg: ModelConfig) -> tuple[int, int]:
    if cfg.frame_fit == "stretch":
        return min(width, PRE_SCALE * cfg.width), min(height, PRE_SCALE * cfg.height)
    # Letterboxing needs the clip's own aspect ratio: one scale for both sides.
    scale = min(1.0, PRE_SCALE * cfg.width / width, PRE_SCALE * cfg.height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# Frame threads from this many pixels per frame up. Measured with bench/decode.py on 2 quiet cores, threads never
# paid: prepare_upload 79 vs 74 ms at 640x480 and 203 vs 178 ms at 1280x720 (on 320x240 and below they doubled
# the time on busy cores), so they are off by default; a host with more cores may lower this. The skipping decode
# (_decode_window: any clip whose packets carry usable times) never uses them: it sets skip_frame packet by packet,
# which frame threads would apply out of order; only the in-order fallback may.
THREAD_MIN_PIXELS = 1 << 40
# A clip longer than this is captioned as its first WINDOW_S seconds: the model samples its T frames there, so the
# cost of a cache miss stops growing with the clip's length. 3 s keeps every clip of the outside set (2-3 s) whole,
# and the window never holds fewer than WINDOW_MIN_FRAMES frames, so low-rate clips of a few dozen frames (the test
# suite's 48 frames at 8 fps) keep today's exact frames too.
WINDOW_S = 3.0
WINDOW_MIN_FRAMES = 96
FALLBACK_FPS = 30.0  # for containers that state no frame rate
# Packets demuxed past the window before its frames' presentation order is known: B-frames arrive after the
# frames that follow them on screen, by at most the codec's reorder depth (H.264: 16).
REORDER = 16


def _open_video(source: Source, limits: MediaLimits) -> tuple[Any, Any]:
    """(container, its first video stream), with the per-frame pixel limit checked from the header."""
    container = av.open(_readable(source), mode="r")
    if not container.streams.video:
        container.close()
        raise UndecodableMedia("the file has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        container.close()
        raise MediaLimitExceeded(f"video is {width}x{height}; at most {limits.max_pixels} pixels per frame")
    # One decoding thread, set before the codec opens: left alone, libavcodec opens slice threads, as many as the
    # machine has cores, for every upload, and every frame waits on them; a 48-frame 320x240 H.264 clip decoded in
    # 6.4 ms of CPU that way and in 3.2 single-threaded, the same pixels (bench/decode.py). Frame threads stay
    # opt-in (THREAD_MIN_PIXELS).
    stream.thread_count = 1
    return container, stream


def window_frames(stream: Any, limits: MediaLimits) -> int:
    """How many frames make the first WINDOW_S seconds of this stream, from its stated frame rate."""
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate and 0 < float(rate) < 1000 else FALLBACK_FPS
    return max(WINDOW_MIN_FRAMES, min(math.ceil(WINDOW_S * fps), limits.max_frames + 1))


@dataclass(frozen=True)
class Probe:
    """What the container's packets say about the clip's start, without decoding: the window's length in frames,
    whether the clip runs past it, and the presentation times of its first packets (sorted: frame i's is pts[i])."""

    window: int
    frames: int  # packets seen, at most window + REORDER
    pts: list[int] | None  # None when some packet has no timestamp, or two share one: then no skipping

    @property
    def long(self) -> bool:
        return self.frames > self.window


def _demux_head(container: Any, stream: Any, limits: MediaLimits) -> tuple[Probe, list[Any]]:
    """The Probe of an open container, and every packet demuxed for it in order (those an edit list hides and the
    final flush included): the skipping decode reads these rather than the file again."""
    window = window_frames(stream, limits)
    times: list[int | None] = []
    packets: list[Any] = []
    for packet in container.demux(stream):
        packets.append(packet)
        if packet.size == 0 or packet.is_discard:  # the final flush packet; frames an edit list hides
            continue
        times.append(packet.pts)
        if len(times) >= window + REORDER:
            break
    known = [t for t in times if t is not None]
    usable = len(known) == len(times) and len(set(known)) == len(known)
    return Probe(window, len(times), sorted(known) if usable else None), packets


def probe(source: Source, limits: MediaLimits) -> Probe:
    """Demux (never decode) the first window + REORDER packets; a lying or truncated index changes only the
    first guess, since decoding counts the frames it sees."""
    container, stream = _open_video(source, limits)
    with container:
        return _demux_head(container, stream, limits)[0]


def _check_frame(frame: Any, n: int, start: float, limits: MediaLimits) -> None:
    """The limits, measured on what is decoded: frames so far, this frame's pixels, the time spent."""
    if n > limits.max_frames:
        raise MediaLimitExceeded(f"video has more than {limits.max_frames} frames")
    if frame.width * frame.height > limits.max_pixels:
        raise MediaLimitExceeded(f"a frame is {frame.width}x{frame.height}; at most {limits.max_pixels} pixels")
    if time.monotonic() - start > limits.max_decode_s:
        raise MediaLimitExceeded(f"decoding took longer than {limits.max_decode_s:g} s")


class _Scaler:
    """Colour conversion and shrinking of the picked frames only, by one swscale context for the clip:
    `frame.to_ndarray(width=..., ...)` builds a new one per frame, which cost more than decoding (bench/decode.py:
    320x240 x 48, 18-22 ms against 8.4-8.9 ms with one shared). A frame up to PRE_SCALE times the model's size is
    converted at its own size (prepare_clip's box filter shrinks it exactly as training does); a larger one is
    shrunk straight to its place in the model's frame by swscale's area average (DIRECT_SCALE), or else first to
    PRE_SCALE times the model's size."""

    def __init__(self, stream: Any, cfg: ModelConfig) -> None:
        width, height = stream.codec_context.width, stream.codec_context.height
        self.size, self.interpolation = _decode_size(width, height, cfg), None
        if DIRECT_SCALE and self.size != (width, height):
            self.size, self.interpolation = _place(width, height, cfg), "AREA"
        self.reformatter = VideoReformatter()

    def __call__(self, frame: Any) -> np.ndarray:
        w, h = self.size
        # threads=1: swscale's default opens a pool of slice threads, one per core, for each clip's context and
        # every frame waits on it (the peers' 320x240 clip: prepare_upload 6.2 -> 4.0 ms of CPU, the same pixels).
        return self.reformatter.reformat(frame, width=w, height=h, format="rgb24", interpolation=self.interpolation,
                                         threads=1).to_ndarray()


def _decode_in_order(source: Source, cfg: ModelConfig, limits: MediaLimits, picks: set[int], stop: int,
                     start: float) -> tuple[dict[int, np.ndarray], int]:
    """Decode frames in order, keeping the picked indices, until frame `stop` (inclusive) or the end:
    ({index: uint8 [h,w,3]}, frames decoded). Memory holds the picked frames only."""
    container, stream = _open_video(source, limits)
    if stream.codec_context.width * stream.codec_context.height >= THREAD_MIN_PIXELS:
        stream.thread_type, stream.thread_count = "AUTO", 0  # 0: as many as the machine has cores
    scale = _Scaler(stream, cfg)
    kept: dict[int, np.ndarray] = {}
    n = 0
    with container:
        for frame in container.decode(stream):
            if n in picks:
                kept[n] = scale(frame)
            n += 1
            _check_frame(frame, n, start, limits)
            if n > stop:
                break
    return kept, n


def _decode_window(stream: Any, cfg: ModelConfig, limits: MediaLimits, picks: set[int], pts: list[int],
                   packets: list[Any], start: float) -> dict[int, np.ndarray]:
    """The picked frames of a clip's window from its demuxed packets, each found by its presentation time, with
    every packet no pick needs sent at skip_frame NONREF: the decoder drops it unless a later frame refers to it, so
    the picked frames are bit for bit those of a decode in order, for part of the work (bench/decode.py)."""
    index = {t: i for i, t in enumerate(pts)}
    scale, codec = _Scaler(stream, cfg), stream.codec_context
    kept: dict[int, np.ndarray] = {}
    n = 0
    for packet in packets:
        if len(kept) == len(picks):
            break
        # The final, empty packet flushes the frames the decoder still holds: a short clip's last picks.
        codec.skip_frame = "DEFAULT" if packet.size == 0 or index.get(packet.pts) in picks else "NONREF"
        for frame in codec.decode(packet):
            n += 1
            _check_frame(frame, n, start, limits)
            i = index.get(frame.pts)
            if i in picks:
                kept[i] = scale(frame)
    return kept


def _sample_window(source: Source, cfg: ModelConfig, limits: MediaLimits, start: float) -> np.ndarray:
    """The T frames the model samples: `sample_indices` over the clip's frames, or over its first `window`
    frames when it is longer (a long clip reads as its first WINDOW_S seconds would)."""
    container, stream = _open_video(source, limits)
    with container:
        clip, packets = _demux_head(container, stream, limits)
        guess = min(clip.frames, clip.window)
        if guess > limits.max_frames:  # counted from the packets: the frames skipped below count as decoded ones do
            raise MediaLimitExceeded(f"video has more than {limits.max_frames} frames")
        if clip.pts is not None and guess > cfg.frames:
            # Short clips too: their packets' times say which frame is which, so the frames no pick needs are
            # skipped where the codec allows (a 48-frame 320x240 H.264 upload: 26 of its 48 frames decoded), from
            # the packets already demuxed (one pass over the file).
            picks = sample_indices(guess, cfg.frames)
            kept = _decode_window(stream, cfg, limits, set(picks.tolist()), clip.pts[:guess], packets, start)
            if kept.keys() >= set(picks.tolist()):
                return np.stack([kept[i] for i in picks.tolist()])
    del packets
    return _sample_in_order(source, cfg, limits, clip, start)


def _sample_in_order(source: Source, cfg: ModelConfig, limits: MediaLimits, clip: Probe, start: float) -> np.ndarray:
    """In order: clips of no more frames than the model samples, those whose packets carry no usable times, and any
    whose packets and frames disagree (sampled from the count of frames the decoder gives). The count is checked by
    decoding to the end of the window; a wrong first guess costs a second pass, never a different answer. Also the
    reference the skipping decode is checked against (bench/decode.py)."""
    guess = min(clip.frames, clip.window)
    picks = sample_indices(max(guess, 1), cfg.frames)
    kept, n = _decode_in_order(source, cfg, limits, set(picks.tolist()), clip.window, start)
    if n == 0:
        raise UndecodableMedia("the video has no decodable frames")
    if min(n, clip.window) != guess:
        picks = sample_indices(min(n, clip.window), cfg.frames)
        if not set(picks.tolist()) <= kept.keys():
            kept, _ = _decode_in_order(source, cfg, limits, set(picks.tolist()), clip.window, start)
    return np.stack([kept[i] for i in picks.tolist()])


def decode_video(source: Source, cfg: ModelConfig, limits: MediaLimits) -> np.ndarray:
    """The T frames the model samples from a video file, uint8 [T,h,w,3], enforcing the frame, pixel and time
    limits on what is decoded. A clip of at most WINDOW_S seconds gives the frames a decode of the whole clip
    followed by `sample_indices` would pick; a longer one gives those of its first WINDOW_S seconds."""
    try:
        return _sample_window(source, cfg, limits, time.monotonic())
    except (MediaLimitExceeded, UndecodableMedia):
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError, IndexError) as e:
        raise UndecodableMedia(f"could not decode the video: {e}") from None


def decode_video_bytes(data: bytes, cfg: ModelConfig, limits: MediaLimits) -> np.ndarray:
    """decode_video of an upload held in memory (the outside set and older callers)."""
    return decode_video(data, cfg, limits)


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


def _in_memory(source: Source) -> bytes:
    return source if isinstance(source, bytes) else _readable(source).read()


def prepare_upload(source: Source, cfg: ModelConfig, limits: MediaLimits) -> PreparedVideo:
    """Any supported upload -> the model's video input (the one entry point the predictor calls). Video is decoded
    from where it lies; a .npy is read into memory (its array is a view of those bytes)."""
    fmt = detect_format(head(source))
    if fmt == "gif":
        check_gif_canvas(head(source), limits)
    if cfg.video_input == "features":
        if fmt != "npy":
            raise UnsupportedMedia("this model takes precomputed features: upload a .npy of shape (Tf, D)")
        return PreparedVideo(features=_features_from_npy(load_npy(_in_memory(source)), cfg, limits))
    if fmt == "npy":
        frames = _frames_from_npy(load_npy(_in_memory(source)), limits)
    else:
        frames = decode_video(source, cfg, limits)
    pixels = clip_pixels(frames, cfg.frames, cfg.height, cfg.width, cfg.frame_fit)
    return PreparedVideo(pixels, box=picture_box(frames.shape[1], frames.shape[2], cfg.height, cfg.width,
                                                 cfg.frame_fit))
