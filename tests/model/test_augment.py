"""model.data.augment: encoder-like degradations of training batches keep shapes, ranges, colours and
directions; real codec round trips stay close to the clip without being the clip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.data.augment import OPS, PROBS, augment_batch
from model.data.codecs import CODECS, codec_roundtrip, roundtrip_corpus_share
from model.data.corpus import Clip
from model.data.shapes import COLOURS, render_clip
from model.probes import probe_video

T, H, W = 12, 36, 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors: one intra-op thread is faster than two fighting over a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _solid_clips(motions: tuple[str, ...], per: int = 1) -> list[tuple[str, str, np.ndarray]]:
    """Single-object clips on plain backgrounds (the analytic probe misreads gradients and noise),
    every colour x every motion, whose un-augmented probe is right."""
    out = []
    seed = 0
    for colour in COLOURS:
        for motion in motions:
            got = 0
            while got < per:
                seed += 1
                clip = render_clip({"colour": colour, "shape": "circle", "motion": motion}, T, H, W,
                                   np.random.default_rng(seed))
                border = np.concatenate([clip[0, 0], clip[0, -1], clip[0, :, 0], clip[0, :, -1]]).astype(float)
                p = probe_video(clip.astype(np.float32) / 255.0)
                if border.std(0).max() < 2.0 and p.colour == colour and p.motion == motion:
                    out.append((colour, motion, clip))
                    got += 1
    return out


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, str, np.ndarray]]:
    return _solid_clips(("left", "right", "up", "down"))


def _batch(clips) -> torch.Tensor:
    return torch.from_numpy(np.stack([c for _, _, c in clips])).float() / 255.0


def _crop_bars(clip: np.ndarray, tol: float = 0.06) -> np.ndarray:
    """Remove letterbox / pillarbox bars: outer rows and columns that stay the corner's colour in every
    frame (plus three pixels beyond, which rescaling may have blended with the bar)."""
    bar = clip[:, :1, :1]
    close = np.abs(clip - bar).max(axis=(0, 3)) < tol  # [H, W]
    rows, cols = close.all(1), close.all(0)

    def span(flags: np.ndarray) -> tuple[int, int]:
        lo = 0
        while lo < len(flags) and flags[lo]:
            lo += 1
        hi = len(flags)
        while hi > lo and flags[hi - 1]:
            hi -= 1
        lo, hi = (lo + 3 if lo else 0), (hi - 3 if hi < len(flags) else hi)
        return lo, hi

    (r0, r1), (c0, c1) = span(rows), span(cols)
    if r1 - r0 < 8 or c1 - c0 < 8:
        return clip
    return clip[:, r0:r1, c0:c1]


def test_shape_range_dtype_and_input_untouched(clips) -> None:
    video = _batch(clips)
    before = video.clone()
    out = augment_batch(video, torch.Generator().manual_seed(0))
    assert out.shape == video.shape and out.dtype == video.dtype
    assert torch.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(video, before)
    assert not torch.equal(out, video)
    assert augment_batch(video, torch.Generator(), strength=0.0) is video


def test_deterministic_with_a_seeded_generator(clips) -> None:
    video = _batch(clips)
    a = augment_batch(video, torch.Generator().manual_seed(7))
    b = augment_batch(video, torch.Generator().manual_seed(7))
    c = augment_batch(video, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("op", OPS)
def test_each_op_alone_keeps_shape_and_range(clips, op: str) -> None:
    video = _batch(clips[:6])
    out = augment_batch(video, torch.Generator().manual_seed(1), strength=1.5,
                        probs={o: (1.0 if o == op else 0.0) for o in OPS})
    assert out.shape == video.shape and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert not torch.equal(out, video), op


def test_odd_sizes_and_tiny_frames() -> None:
    video = torch.rand(3, 5, 13, 17, 3)
    out = augment_batch(video, torch.Generator().manual_seed(0), probs={o: 1.0 for o in OPS})
    assert out.shape == video.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def _augment_and_probe(video: torch.Tensor, gen: torch.Generator, **kw):
    """Augment, then probe each clip (bars cropped first where it was letterboxed: the probe takes the
    frame's border for the background)."""
    out, applied = augment_batch(video, gen, return_applied=True, **kw)
    boxed = applied[:, OPS.index("letterbox")]
    return [probe_video(_crop_bars(c) if b else c) for c, b in zip(out.contiguous().numpy(), boxed.tolist())]


def test_never_mirrors_or_reverses_and_keeps_colour(clips) -> None:
    """The probed direction and colour of every plain single-object clip survive augmentation in
    >= 90% of augmented versions (and the direction is never the opposite one)."""
    video = _batch(clips)
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}
    gen = torch.Generator().manual_seed(3)
    same_colour, same_motion, flipped, n = 0, 0, 0, 0
    for _ in range(4):
        for (colour, motion, _), p in zip(clips, _augment_and_probe(video, gen)):
            same_colour += p.colour == colour
            same_motion += p.motion == motion
            flipped += p.motion == opposite[motion]
            n += 1
    assert same_colour / n >= 0.9, same_colour / n
    assert same_motion / n >= 0.9, same_motion / n
    assert flipped == 0


def test_strong_geometry_and_time_ops_keep_direction(clips) -> None:
    """Time resampling, letterboxing and rescaling always on, at strength 1: the centroid still goes the
    same way (never the opposite way)."""
    video = _batch(clips)
    probs = {o: 0.0 for o in OPS} | {"temporal": 1.0, "letterbox": 1.0, "rescale": 1.0}
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}
    probes = _augment_and_probe(video, torch.Generator().manual_seed(5), probs=probs)
    assert not any(p.motion == opposite[m] for (_, m, _), p in zip(clips, probes))
    assert np.mean([p.motion == m for (_, m, _), p in zip(clips, probes)]) >= 0.85


def test_default_probabilities_are_probabilities() -> None:
    assert set(PROBS) == set(OPS) and all(0.0 < p <= 1.0 for p in PROBS.values())


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_roundtrip_is_close_but_not_identical(clips, codec: str) -> None:
    colour, motion, clip = clips[5]
    # A GIF of a clip with fewer colours than its palette is lossless: 16 dithered colours here.
    out = codec_roundtrip(clip, np.random.default_rng(0), codec=codec, quality=0.0 if codec == "gif" else 0.6)
    assert out.shape == (T, H, W, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    err = np.abs(out - clip.astype(np.float32) / 255.0)
    assert 0.0 < err.mean() < 0.05, (codec, err.mean())
    p = probe_video(out)
    assert (p.colour, p.motion) == (colour, motion), codec


def test_codec_roundtrip_is_deterministic(clips) -> None:
    clip = clips[0][2]
    a = codec_roundtrip(clip, np.random.default_rng(3))
    b = codec_roundtrip(clip, np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_roundtrip_corpus_share(clips) -> None:
    corpus = [Clip(f"c{i}", ["a caption"], c, None, {"colour": col}) for i, (col, _, c) in enumerate(clips[:10])]
    out = roundtrip_corpus_share(corpus, 0.3, seed=0)
    changed = [i for i, (a, b) in enumerate(zip(corpus, out)) if b is not a]
    assert len(out) == 10 and len(changed) == 3
    for i in changed:
        assert out[i].frames.dtype == np.uint8 and out[i].frames.shape == corpus[i].frames.shape
        assert out[i].attributes["codec"] in CODECS and out[i].attributes["colour"] == corpus[i].attributes["colour"]
        assert "codec" not in corpus[i].attributes
    again = roundtrip_corpus_share(corpus, 0.3, seed=0)
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(out, again))
    assert roundtrip_corpus_share(corpus, 0.0, seed=0) == corpus


def test_add_ramp_grades_the_picture_alike_on_every_frame_and_keeps_the_bars() -> None:
    """model.data.augment.add_ramp: rows not chosen are untouched; a chosen row gets one linear field on every frame
    (each channel spreading by at most `span` across the picture), its letterbox bars stay black."""
    from model.data.augment import add_ramp

    gen = torch.Generator().manual_seed(3)
    frames = torch.full((6, 4, H, W, 3), 0.5)
    frames[:, :, :, :8] = 0.0  # pillarboxed: bars on the left and right
    frames[:, :, :, -8:] = 0.0
    chosen = torch.tensor([True, False, True, True, False, True])
    out = add_ramp(frames, chosen, gen, span=0.5)  # +-0.35 at most: nothing clips around 0.5
    assert torch.equal(out[~chosen], frames[~chosen])
    assert torch.equal(out[:, :, :, :8], frames[:, :, :, :8]) and torch.equal(out[:, :, :, -8:], frames[:, :, :, -8:])
    field = out[chosen] - frames[chosen]
    assert torch.allclose(field, field[:, :1].expand_as(field), atol=1e-6)  # the same on every frame
    inside = field[:, 0, :, 8:-8]  # [n, H, W', 3]
    assert torch.allclose(inside[:, 2:] - 2 * inside[:, 1:-1] + inside[:, :-2], torch.zeros(()), atol=1e-5)
    assert torch.allclose(inside[:, :, 2:] - 2 * inside[:, :, 1:-1] + inside[:, :, :-2], torch.zeros(()), atol=1e-5)
    spread = inside.flatten(1, 2).amax(dim=1) - inside.flatten(1, 2).amin(dim=1)  # [n, 3]
    assert float(spread.max()) <= 0.5 + 1e-6 and float(spread.amax(dim=1).mean()) > 0.15
    assert float(add_ramp(torch.ones(2, 2, H, W, 3), torch.tensor([True, True]), gen).max()) <= 1.0
