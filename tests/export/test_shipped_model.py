"""The default model that ships in models/default: checksums hold, it loads in the engine and answers
every task, and re-measuring it through the ONNX engine gives the figures recorded beside it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.check import CHECK_FILE, check_figures
from core import channels
from service.engine import Engine

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "default"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(SHIPPED)  # verifies every sha256 in the manifest


def test_shipped_model_is_complete_and_small(engine: Engine) -> None:
    version_dir = SHIPPED / engine.version
    assert engine.manifest.files and all((version_dir / f).is_file() for f in engine.manifest.files)
    size_mb = sum(p.stat().st_size for p in version_dir.iterdir()) / 2**20
    assert size_mb < 40, f"shipped model is {size_mb:.1f} MB"
    assert set(engine.manifest.tasks) == set(channels.REGISTRY)
    assert (SHIPPED / "EVAL.md").is_file() and engine.version in (SHIPPED / "README.md").read_text()


def test_shipped_model_answers_every_task(engine: Engine) -> None:
    t, h, w = engine.config.frames, engine.config.height, engine.config.width
    video = np.random.default_rng(0).random((2, t, h, w, 3), dtype=np.float32)
    mu_v, _ = engine.encode(video, None)
    mu_s, _ = engine.encode(None, [engine.vocab.encode("a red circle moves to the right")] * 2)
    assert len(engine.decode_sentence(mu_v)) == 2 and len(engine.decode_sentence(mu_s, beam_size=3)) == 2
    frames = engine.decode_video(mu_s)
    assert frames.shape == (2, t, h, w, 3) and 0.0 <= frames.min() and frames.max() <= 1.0


def test_shipped_model_reproduces_its_recorded_figures() -> None:
    recorded = json.loads((SHIPPED / CHECK_FILE).read_text())
    now = check_figures(SHIPPED, recorded["check_clips"], recorded["check_seed"])
    assert now["version"] == recorded["version"]
    for attr, value in recorded["caption_attributes"].items():
        # Greedy decoding is deterministic; a tolerance of one clip absorbs float differences across CPUs.
        assert now["caption_attributes"][attr] == pytest.approx(value, abs=1.5 / recorded["check_clips"]), attr


def test_shipped_model_flags_what_it_does_not_know_and_passes_what_it_does(engine: Engine) -> None:
    """The familiarity calibration in the shipped manifest, through the service's decode path: synthetic clips as
    mp4 uploads pass; a road scene and a screen recording (model/data/ood.py) are flagged. bench/familiarity.py
    prints every group's share."""
    from bench.familiarity import scores, synthetic_uploads
    from bench.support import encode_clip
    from model.data.ood import road_clip, ui_clip

    calibration = engine.manifest.familiarity
    assert calibration is not None, "the shipped model carries its familiarity calibration"
    familiar = scores(engine, calibration, synthetic_uploads(10))
    assert np.mean(familiar >= calibration.threshold) >= 0.9, familiar
    unknown = [encode_clip(make(np.random.default_rng(i), i), "mp4") for i in range(3) for make in (road_clip, ui_clip)]
    assert np.all(scores(engine, calibration, unknown) < calibration.threshold)
