"""Session fixtures shared by every room's tests: a tiny synthetic corpus, a tiny star model trained on
it in seconds, and that model exported to ONNX. Real parts, small sizes."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.config import preset

TINY = preset("tiny")
REDIS_URL = os.environ.get("SLR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def tiny_corpus():
    from model.data.synthetic import generate

    m = TINY.model
    return generate(TINY.corpus_clips, seed=0, frames=m.frames, height=m.height, width=m.width,
                    aspect_share=TINY.aspect_share)


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
    # The tiny corpus has 16 validation clips: its familiarity is calibrated on them and part of the training split.
    test, val = tiny_corpus.splits["test"][:8], tiny_corpus.splits["val"] + tiny_corpus.splits["train"][:64]
    export_run(tiny_run, root, version="tiny-test",
               sample_video=np.stack([c.frames for c in test]).astype(np.float32) / 255.0,
               sample_sentences=[c.captions[0] for c in test],
               calibration_clips=val)
    return root


def refit_cli(root: Path, corpus, tmp_path: Path, version: str, *args: str) -> int:
    """`slr refit` from root's `base` version for 4 steps of the tiny preset, on `corpus` saved under tmp_path."""
    from cli.main import main

    data = tmp_path / "corpus"
    if not data.exists():
        corpus.save(data)
    return main(["refit", str(root), "--from-version", "base", "--version", version, "--data-dir", str(data),
                 "--preset", "tiny", "--steps", "4", *args])


def export_tiny_sprite(run: Path, root: Path, corpus, sentence_heads: bool, seed: int, **export_kw) -> Path:
    """An untrained tiny sprite model (sentence-to-video's own heads or not) saved in `run` and exported to `root`."""
    from dataclasses import replace

    import torch

    from core.vocab import Vocab
    from export.onnx_export import export_run
    from model.checkpoint import save_checkpoint
    from model.star import StarModel

    vocab = Vocab.build(c for clip in corpus.splits["train"] for c in clip.captions)
    torch.manual_seed(seed)
    cfg = replace(TINY.model, vocab_size=len(vocab), video_decoder="sprite", draw_channels=4, sprite_size=8,
                  sentence_heads=sentence_heads)
    save_checkpoint(run / "checkpoint.pt", StarModel(cfg), vocab, TINY.train)
    export_run(run, root, **export_kw)
    return root


@pytest.fixture(scope="session")
def sprite_heads_root(tmp_path_factory, tiny_corpus) -> Path:
    """An artifacts root whose latest is an untrained tiny sprite model with sentence-to-video's own heads: the
    layout the shipped model has (its rebuild graph included), exported and parity-checked in seconds."""
    import numpy as np

    video = np.stack([c.frames for c in tiny_corpus.splits["test"][:4]]).astype(np.float32) / 255.0
    return export_tiny_sprite(tmp_path_factory.mktemp("sprite_heads_run"), tmp_path_factory.mktemp("sprite_heads_root"),
                              tiny_corpus, True, 1, version="heads", sample_video=video)


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


# ---------------------------------------------------------------- tiers
# `make test` runs everything (CI). `make test-fast` (-m "not slow") is the tier a developer runs after every
# change, under 60 s on 2 cores: these are the modules and tests that start servers under load, browsers,
# Java, compose or training loops, listed here in one place rather than marked file by file.
SLOW_MODULES = {
    "tests/bench/test_bench_smoke.py", "tests/bench/test_paper_tables.py", "tests/bench/test_peers_smoke.py",
    "tests/service/test_faults.py", "tests/service/test_shutdown.py", "tests/service/test_fuzz.py",
    "tests/service/test_hostile_input.py", "tests/service/test_security.py", "tests/deploy/test_deploy.py",
    "tests/deploy/test_k8s.py", "tests/model/test_distributed.py", "tests/export/test_shipped_model.py",
    "tests/bench/test_gpu_check.py",
    "tests/service/test_decoding.py", "tests/model/test_convergence.py", "tests/export/test_gate.py",
}
SLOW_TESTS = {"test_meteor_runs_and_closes_its_java_process", "test_cli_trains_evaluates_and_explains",
              "test_baselines_train_one_task_each", "test_video_fine_tuning_moves_the_video_decoder_alone",
              "test_default_version_and_latest_move_to_the_newest", "test_parity_failure_raises_and_publishes_nothing",
              "test_redis_stopped_mid_test_fails_no_request", "test_readme_quick_start_runs_as_written",
              "test_bench_runs_every_task_against_pytorch", "test_8_cli_version_caption_and_generate",
              "test_quantised_export_reports_its_cost_and_serves", "test_a_few_training_steps_lower_the_loss",
              "test_encoder_variants_prints_and_writes_every_figure"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        module = Path(str(item.path)).relative_to(root).as_posix()
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


_SUITE_START = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The suite's wall time, setup of the session fixtures included (read from the run, never recorded by hand)."""
    tier = "fast" if "not slow" in (config.getoption("markexpr") or "") else "full"
    terminalreporter.write_line(f"suite wall time ({tier} tier): {time.monotonic() - _SUITE_START:.1f} s")
