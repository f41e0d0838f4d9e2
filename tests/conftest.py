"""Session fixtures shared by every room's tests: a tiny synthetic corpus, a tiny star model trained on
it in seconds, and that model exported to ONNX. Real parts, small sizes."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import preset

TINY = preset("tiny")
REDIS_URL = os.environ.get("SLR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def tiny_corpus():
    from model.data.synthetic import generate

    m = TINY.model
    return generate(TINY.corpus_clips, seed=0, frames=m.frames, height=m.height, width=m.width)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus) -> Path:
    """A run directory holding checkpoint.pt of the tiny preset, trained for a few seconds."""
    from model.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    train(tiny_corpus, TINY, out, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory, tiny_run, tiny_corpus) -> Path:
    """An artifacts root (`latest` + one version) exported from the tiny run, parity-checked."""
    import numpy as np

    from export.onnx_export import export_run

    root = tmp_path_factory.mktemp("artifacts")
    test = tiny_corpus.splits["test"][:8]
    export_run(tiny_run, root, version="tiny-test",
               sample_video=np.stack([c.frames for c in test]).astype(np.float32) / 255.0,
               sample_sentences=[c.captions[0] for c in test])
    return root


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the tests use; fails loudly (not skipped) when none answers."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"tests need a real Redis at {REDIS_URL}: {exc}")
    return REDIS_URL
