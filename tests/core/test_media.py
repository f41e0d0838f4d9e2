"""core.media and service.media on real encoded files: every container decodes to the model's input,
limits and bad input raise."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.config import ModelConfig
from core.frames import fit_box, prepare_clip, resize_frame
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


@pytest.mark.parametrize("fmt", ("mp4", "npy", "gif"))
def test_pad_models_decode_a_portrait_upload_letterboxed(fmt: str) -> None:
    clip = moving_square_clip(n_frames=12, height=64, width=48)
    cfg = ModelConfig(frames=6, height=12, width=16, frame_fit="pad")
    prepared = prepare_upload(encode_clip(clip, fmt), cfg, MediaLimits())
    assert prepared.box == (0, 3, 12, 9)  # the picture's place, kept with the SLR for /reconstruct
    assert prepared.array[:, :, :3].max() < 0.05 and prepared.array[:, :, 12:].max() < 0.05
    assert np.abs(prepared.array - prepare_clip(clip, 6, 12, 16, "pad")).mean() < 0.02
