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
