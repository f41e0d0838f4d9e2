"""core.media and service.media on real encoded files: every container decodes to the model's input,
limits and bad input raise."""
from __future__ import annotations

import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from core import media
from core.config import ModelConfig
from core.frames import PICTURE_FLOOR, fit_box, prepare_clip, resize_frame
from core.media import (
    MediaLimitExceeded,
    MediaLimits,
    UndecodableMedia,
    UnsupportedMedia,
    detect_format,
    prepare_upload,
)
from service.media import encode_gif, encode_png_frames, to_uint8
from tests.service_fixtures import encode_clip, moving_square_clip

CFG = ModelConfig(frames=6, height=12, width=16)
FORMATS = ("mp4", "mov", "webm", "avi", "gif", "npy")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return moving_square_clip(n_frames=12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_the_model_input(clip: np.ndarray, fmt: str) -> None:
    data = encode_clip(clip, fmt)
    assert detect_format(data) == fmt
    prepared = prepare_upload(data, CFG, MediaLimits())
    assert prepared.array.shape == (6, 12, 16, 3) and prepared.array.dtype == np.float32
    # Lossy codecs stay close to the training-side preprocessing of the original frames.
    assert np.abs(prepared.array - prepare_clip(clip, 6, 12, 16)).mean() < 0.02
    assert np.array_equal(prepared.first_frame, prepared.array[0])


def test_lossless_inputs_match_training_preprocessing_exactly(clip: np.ndarray) -> None:
    for fmt in ("npy", "gif"):
        got = prepare_upload(encode_clip(clip, fmt), CFG, MediaLimits()).array
        assert np.array_equal(got, prepare_clip(clip, 6, 12, 16)), fmt


def test_unsupported_and_undecodable_inputs() -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    with pytest.raises(UnsupportedMedia):
        prepare_upload(png.getvalue(), CFG, MediaLimits())
    with pytest.raises(UndecodableMedia):
        prepare_upload(b"", CFG, MediaLimits())
    with pytest.raises(UndecodableMedia):
        prepare_upload(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, CFG, MediaLimits())
    with pytest.raises(UndecodableMedia):
        prepare_upload(b"\x93NUMPY garbage", CFG, MediaLimits())


def test_truncated_video_is_undecodable_or_decodes_partially(clip: np.ndarray) -> None:
    data = encode_clip(clip, "webm")
    try:
        prepared = prepare_upload(data[: len(data) // 3], CFG, MediaLimits())
    except UndecodableMedia:
        return
    assert prepared.array.shape == (6, 12, 16, 3)


def test_frame_and_pixel_limits(clip: np.ndarray) -> None:
    with pytest.raises(MediaLimitExceeded):
        prepare_upload(encode_clip(clip, "mp4"), CFG, MediaLimits(max_frames=5))
    with pytest.raises(MediaLimitExceeded):
        prepare_upload(encode_clip(clip, "mp4"), CFG, MediaLimits(max_pixels=64 * 47))
    with pytest.raises(MediaLimitExceeded):
        prepare_upload(encode_clip(clip, "npy"), CFG, MediaLimits(max_frames=5))


def test_decode_time_limit(clip: np.ndarray) -> None:
    with pytest.raises(MediaLimitExceeded, match="longer than"):
        prepare_upload(encode_clip(clip, "mp4"), CFG, MediaLimits(max_decode_s=1e-9))


def test_features_model_takes_npy_features_only(clip: np.ndarray) -> None:
    cfg = ModelConfig(video_input="features", frames=6, feature_dim=10)
    feats = np.random.default_rng(0).standard_normal((9, 10)).astype(np.float32)
    prepared = prepare_upload(encode_clip(feats, "npy"), cfg, MediaLimits())
    assert prepared.array.shape == (6, 10) and prepared.first_frame is None
    assert prepare_upload(encode_clip(feats[0], "npy"), cfg, MediaLimits()).array.shape == (6, 10)
    with pytest.raises(UnsupportedMedia):
        prepare_upload(encode_clip(clip, "mp4"), cfg, MediaLimits())
    with pytest.raises(UndecodableMedia):
        prepare_upload(encode_clip(feats[:, :7], "npy"), cfg, MediaLimits())


def test_gif_and_png_output() -> None:
    frames = np.random.default_rng(0).random((6, 12, 16, 3), dtype=np.float32)
    gif = encode_gif(frames, scale=3)
    img = Image.open(io.BytesIO(gif))
    assert img.format == "GIF" and img.size == (48, 36) and img.n_frames == 6
    pngs = encode_png_frames(frames, scale=2)
    assert len(pngs) == 6
    assert to_uint8(frames, 2).shape == (6, 24, 32, 3)
    with pytest.raises(ValueError):
        to_uint8(frames, 9)


@pytest.mark.parametrize("src, box", [((48, 64), (0, 0, 12, 16)), ((64, 48), (0, 3, 12, 9)),
                                      ((40, 40), (0, 2, 12, 12)), ((20, 80), (4, 0, 4, 16))])
def test_fit_box_keeps_the_aspect_ratio_centred(src: tuple[int, int], box: tuple[int, int, int, int]) -> None:
    assert fit_box(*src, 12, 16) == box


def test_pad_letterboxes_with_black_bars_and_keeps_a_square_square() -> None:
    frame = np.full((64, 48, 3), 200, np.uint8)  # portrait, light grey
    frame[24:40, 16:32] = (255, 0, 0)  # a red square in the middle
    out = resize_frame(frame, 12, 16, "pad")
    assert out.shape == (12, 16, 3) and not out[:, :3].any() and not out[:, 12:].any()  # bars left and right
    red = np.argwhere((out[..., 0] > 200) & (out[..., 1] < 100))
    rows, cols = np.ptp(red[:, 0]) + 1, np.ptp(red[:, 1]) + 1
    assert abs(int(rows) - int(cols)) <= 1  # still a square; "stretch" makes it a flat bar
    squeezed = np.argwhere(resize_frame(frame, 12, 16, "stretch")[..., 1] < 100)
    assert np.ptp(squeezed[:, 1]) > np.ptp(squeezed[:, 0])
    same_aspect = np.tile(frame[:48], (1, 2, 1))[:, :64]  # 48 x 64: the model's own 4:3, nothing to pad
    assert np.array_equal(resize_frame(same_aspect, 12, 16, "pad"), resize_frame(same_aspect, 12, 16, "stretch"))


def test_pad_leaves_exact_black_to_the_bars() -> None:
    """A picture's exact black pixels are lifted to PICTURE_FLOOR (the decoder reads exact black rows and columns as
    bars); its colours, pure ones included, are kept."""
    frame = np.zeros((64, 48, 3), np.uint8)  # portrait, black
    frame[24:40, 16:32] = (255, 0, 0)
    out = resize_frame(frame, 12, 16, "pad")
    top, left, h, w = fit_box(64, 48, 12, 16)
    assert not out[:, :left].any() and not out[:, left + w:].any()
    picture = out[top:top + h, left:left + w]
    assert (picture.max(axis=-1) == PICTURE_FLOOR).sum() > picture.size // 6  # the background, lifted
    assert (picture == (255, 0, 0)).all(axis=-1).any()


@pytest.mark.parametrize("fmt", ("mp4", "npy", "gif"))
def test_pad_models_decode_a_portrait_upload_letterboxed(fmt: str) -> None:
    clip = moving_square_clip(n_frames=12, height=64, width=48)
    cfg = ModelConfig(frames=6, height=12, width=16, frame_fit="pad")
    prepared = prepare_upload(encode_clip(clip, fmt), cfg, MediaLimits())
    assert prepared.box == (0, 3, 12, 9)  # the picture's place, kept with the SLR for /reconstruct
    assert prepared.array[:, :, :3].max() < 0.05 and prepared.array[:, :, 12:].max() < 0.05
    assert np.abs(prepared.array - prepare_clip(clip, 6, 12, 16, "pad")).mean() < 0.02


@pytest.mark.parametrize("fmt", ("gif", "mp4"))
def test_a_large_frame_is_shrunk_to_its_place_in_one_step(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PRE_SCALE times the model's size, swscale averages a frame straight down to its letterbox box: close to
    training's box filter of the whole frame, and the box read from the clip's own size (the two-step path read it
    from the pre-scaled frames, 64 x 42 here: a picture of 10 rows where 11 are its own)."""
    clip = moving_square_clip(n_frames=12, height=132, width=200)
    cfg = ModelConfig(frames=6, height=12, width=16, frame_fit="pad")
    data = encode_clip(clip, fmt)
    direct = prepare_upload(data, cfg, MediaLimits())
    assert direct.box == fit_box(132, 200, 12, 16) == (0, 0, 11, 16)
    assert np.abs(direct.array - prepare_clip(clip, 6, 12, 16, "pad")).mean() < 0.01
    monkeypatch.setattr(media, "DIRECT_SCALE", False)
    two_step = prepare_upload(data, cfg, MediaLimits())
    assert two_step.box == (1, 0, 10, 16)

def long_h264(n_frames: int, fps: int = 30, gop: int = 48) -> bytes:
    """A small H.264 mp4 (64x48, a keyframe every `gop` frames, B-frames on) of a square that moves every frame."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"g": str(gop), "bf": "3"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(n_frames):
            frame = np.full((48, 64, 3), 20, np.uint8)
            frame[16:32, t % 48: t % 48 + 16] = (200, 60, 30)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return buf.getvalue()


def counting_decoded_frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every frame the decoder gives (each passes the limits check once)."""
    seen: list[int] = []
    check = media._check_frame
    monkeypatch.setattr(media, "_check_frame", lambda *a: (seen.append(1), check(*a))[1])
    return seen


def test_a_long_clip_costs_what_its_first_seconds_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 s and 60 s clips decode the same frames, as many as the 3 s window needs (no more as the clip grows),
    and give the frames a decode in order of that window picks: a long clip reads as its first seconds would."""
    cfg = ModelConfig(frames=8, height=12, width=16)
    window = max(media.WINDOW_MIN_FRAMES, round(media.WINDOW_S * 30))
    decoded, outputs = [], []
    for seconds in (20, 60):
        data = long_h264(30 * seconds)
        assert len(data) < 200_000  # small in bytes, long in frames
        seen = counting_decoded_frames(monkeypatch)
        outputs.append(media.decode_video(data, cfg, MediaLimits(max_frames=window + media.REORDER)))
        decoded.append(len(seen))
    assert decoded[0] == decoded[1] < window + media.REORDER
    assert np.array_equal(outputs[0], outputs[1])
    picks = set(media.sample_indices(window, 8).tolist())
    in_order, _ = media._decode_in_order(long_h264(30 * 20), cfg, MediaLimits(), picks, window, 1e12)
    assert np.array_equal(outputs[0], np.stack([in_order[i] for i in sorted(picks)]))


def test_a_short_clip_skips_the_frames_no_pick_needs_and_keeps_its_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the window: the frames a decode of every frame followed by `sample_indices` picks, bit for bit, from
    fewer decoded frames (the encoder's non-reference frames that no pick needs are skipped), in one pass."""
    cfg = ModelConfig(frames=8, height=12, width=16)
    data = long_h264(60)  # 2 s: within the window
    assert not media.probe(data, MediaLimits()).long
    whole, n = media._decode_in_order(data, cfg, MediaLimits(), set(range(60)), 60, 1e12)
    assert n == 60
    expected = np.stack([whole[i] for i in media.sample_indices(60, 8).tolist()])
    seen = counting_decoded_frames(monkeypatch)
    assert np.array_equal(media.decode_video(data, cfg, MediaLimits()), expected)
    assert len(seen) < 60


def test_a_short_clip_without_usable_times_decodes_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packets whose times cannot say which frame is which: every frame decoded, the same frames picked."""
    cfg = ModelConfig(frames=8, height=12, width=16)
    data = long_h264(60)
    expected = media.decode_video(data, cfg, MediaLimits())
    head = media._demux_head

    def timeless(*a: Any) -> tuple[media.Probe, list[Any]]:
        clip, packets = head(*a)
        return dataclasses.replace(clip, pts=None), packets

    monkeypatch.setattr(media, "_demux_head", timeless)
    seen = counting_decoded_frames(monkeypatch)
    assert np.array_equal(media.decode_video(data, cfg, MediaLimits()), expected)
    assert len(seen) == 60


@pytest.mark.parametrize("cut", (0.05, 0.3, 0.7))
def test_a_truncated_long_clip_is_a_media_error_or_its_decodable_start(cut: float, tmp_path: Path) -> None:
    """The index (moov first) promises a minute; the bytes stop early: an answer from what is there, or a media
    error (a 4xx), never another exception or a hang."""
    data = long_h264(30 * 60)
    moov_first = tmp_path / "moov-first.mp4"  # faststart rewrites the file: a path, not a buffer
    with av.open(io.BytesIO(data)) as src, av.open(str(moov_first), "w", options={"movflags": "faststart"}) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = out
                dst.mux(packet)
    whole = moov_first.read_bytes()
    assert whole[4:8] == b"ftyp" and b"moov" in whole[:4096]
    cut_data = whole[: int(len(whole) * cut)]
    try:
        frames = media.decode_video(cut_data, ModelConfig(frames=8, height=12, width=16), MediaLimits(max_decode_s=5))
    except media.MediaError:
        return
    assert frames.shape[0] == 8


def test_an_upload_is_decoded_on_one_thread_unless_frame_threads_are_asked_for(monkeypatch) -> None:
    # libavcodec's default opens slice threads, one per core, for every upload: twice the CPU of one thread on the
    # peers' 48-frame 320x240 clip (bench/decode.py)
    clip = encode_clip(moving_square_clip(), "mp4")
    container, stream = media._open_video(clip, media.MediaLimits())
    with container:
        assert stream.thread_count == 1
    seen = []
    real_open = media._open_video

    def spy(source, limits):
        container, stream = real_open(source, limits)
        seen.append(stream)
        return container, stream

    monkeypatch.setattr(media, "_open_video", spy)
    monkeypatch.setattr(media, "THREAD_MIN_PIXELS", 0)
    media._decode_in_order(clip, CFG, media.MediaLimits(), {0}, 1, time.monotonic())
    assert str(seen[-1].thread_type).endswith("AUTO")  # its count libavcodec's own (one per core and one)
