"""A cache miss computes its familiarity score beside the request's own decoding (issue 35): the caption's beam search
and the score's rebuild run on two engine threads at once, and the verdict, the one reader of the signals, waits for
them. On the real exported tiny model: each call below waits for the other to have started, so run one after the
other they would time out."""
from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from service.engine import Engine
from service.metrics import Metrics
from service.predictor import Upload, build_predictor
from service.settings import Settings
from tests.service_fixtures import encode_clip, moving_square_clip

WAIT_S = 20.0


def both_started(engine: Engine) -> dict[str, threading.Event]:
    """Make the engine's sentence decoder and the score's rebuild each wait until the other has been entered."""
    started = {"sentence": threading.Event(), "video": threading.Event()}
    sentence, video = engine.decode_sentence, engine.rebuild_video

    def meet(mine: str, other: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        started[mine].set()
        assert started[other].wait(WAIT_S), f"{mine} decoding ran alone: the score and the caption did not overlap"
        return call(*args, **kwargs)

    engine.decode_sentence = lambda *a, **k: meet("sentence", "video", sentence, *a, **k)  # type: ignore[method-assign]
    engine.rebuild_video = lambda *a, **k: meet("video", "sentence", video, *a, **k)  # type: ignore[method-assign]
    return started


def test_a_miss_scores_familiarity_while_its_caption_decodes(artifacts_dir: Path) -> None:
    engine = Engine.load(artifacts_dir, intra_op_threads=1)
    started = both_started(engine)
    predictor = build_predictor(engine, Settings(redis_url=""), Metrics(), local=True)
    clip = encode_clip(moving_square_clip(150, 120, 160, seed=uuid.uuid4().int % 10**9), "mp4")

    async def go() -> None:
        try:
            latent = await predictor.encode(Upload(clip, "clip.mp4"), None)
            assert not latent.cached and latent.entry.video_signals is None, "the SLR comes back before its score"
            out = await predictor.describe(latent, 0, 0, 1, None)
            verdict = await predictor.verdict(latent)
            assert out.caption and verdict.familiarity is not None and 0.0 <= verdict.familiarity <= 1.0
            hit = await predictor.encode(Upload(clip, "clip.mp4"), None)
            assert hit.cached and hit.settled is None, "the second request is a hit"
            assert hit.entry.video_signals is not None and np.isfinite(hit.entry.video_signals).all(), \
                "the entry was cached with its signals"
            assert predictor.entry_verdict(hit.entry) == verdict
        finally:
            await predictor.close()

    asyncio.run(go())
    assert all(e.is_set() for e in started.values())


def test_the_signals_of_the_frames_alone_are_read_beside_the_encoder_and_cached_as_measured(
        artifacts_dir: Path) -> None:
    """`motion` and `edges` read the clip, never its rebuild: a media thread reads them while the encoder runs (the
    encoder waits here until they have started), the score reads only the rebuild's, and the entry caches every
    signal exactly as measuring them all at once gives."""
    from core.media import MediaLimits, prepare_upload

    engine = Engine.load(artifacts_dir, intra_op_threads=1)
    predictor = build_predictor(engine, Settings(redis_url=""), Metrics(), local=True)
    calibration = predictor.calibration
    assert calibration is not None and {"motion", "edges"} <= set(calibration.signals)
    read, encode = threading.Event(), engine.encode
    real_frames = calibration.measure_frames

    def measure_frames(*args: Any, **kwargs: Any) -> Any:
        assert threading.current_thread().name.startswith("media"), threading.current_thread().name
        read.set()
        return real_frames(*args, **kwargs)

    def encode_after_read(*args: Any, **kwargs: Any) -> Any:
        assert read.wait(WAIT_S), "the encoder ran before the frames' signals were read"
        return encode(*args, **kwargs)

    object.__setattr__(calibration, "measure_frames", measure_frames)
    engine.encode = encode_after_read  # type: ignore[method-assign]
    clip = encode_clip(moving_square_clip(40, 120, 160, seed=uuid.uuid4().int % 10**9), "mp4")

    async def go() -> tuple[float, ...] | None:
        try:
            latent = await predictor.encode(Upload(clip, "clip.mp4"), None)
            await predictor.verdict(latent)
            return (await predictor.encode(Upload(clip, "clip.mp4"), None)).entry.video_signals
        finally:
            await predictor.close()

    cached = asyncio.run(go())
    prepared = prepare_upload(clip, engine.config, MediaLimits())
    video = prepared.array[None].astype(np.float32)
    mu, _ = encode(video, None)
    expected = calibration.measure(video, engine.rebuild_video(mu, video[:, 0]), [prepared.box])[0]
    assert cached is not None and np.allclose(cached, expected, atol=1e-6), (cached, expected)
