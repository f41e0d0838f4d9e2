"""The manifest's familiarity entry is one typed value: a Calibration read and written whole, refused loudly when of
another layout, and dropped on request (recalibration replaces it)."""
from __future__ import annotations

import pytest

from core.config import ModelConfig
from core.familiarity import QUANTILE_PROBS, VIDEO_SIGNALS, Calibration
from core.manifest import ArtifactError, Manifest


def manifest(calibration: Calibration | None) -> Manifest:
    return Manifest(version="v1", created="", source_checkpoint_sha256="", opset=17, precision="fp32",
                    model=ModelConfig(), graphs={}, tasks={}, files={}, parity={}, familiarity=calibration)


def calibration() -> Calibration:
    row = tuple(float(p) for p in QUANTILE_PROBS)
    return Calibration(tuple(row for _ in VIDEO_SIGNALS), threshold=0.02, clips=16, source="val")


def test_the_calibration_round_trips_typed() -> None:
    d = manifest(calibration()).to_dict()
    assert "min_known_share" not in d["familiarity"]  # a rule of the sentence score, not calibrated: not written
    back = Manifest.from_dict(d)
    assert isinstance(back.familiarity, Calibration) and back.familiarity == calibration()
    assert Manifest.from_dict(manifest(None).to_dict()).familiarity is None


def test_a_calibration_of_another_layout_is_refused_unless_dropped() -> None:
    d = manifest(calibration()).to_dict()
    d["familiarity"]["signals"] = ["rebuild_miss"]
    with pytest.raises(ArtifactError, match="slr calibrate"):
        Manifest.from_dict(d)
    assert Manifest.from_dict(d, drop_calibration=True).familiarity is None


def test_an_older_manifest_with_min_known_share_still_reads() -> None:
    d = manifest(calibration()).to_dict()
    d["familiarity"]["min_known_share"] = 0.5
    assert Manifest.from_dict(d).familiarity == calibration()
