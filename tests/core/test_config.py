"""Presets are budgeted in steps: what a preset trains does not depend on how busy the machine is."""
from __future__ import annotations

import pytest

from core.config import PRESETS, ModelConfig, TrainConfig, preset


@pytest.mark.parametrize("name", PRESETS)
def test_presets_stop_on_steps_not_wall_time(name: str) -> None:
    p = preset(name)
    assert p.train.time_budget_s is None, f"{name} stops on wall time"
    assert p.train.full_steps + p.train.partial_steps > 0


def test_configs_round_trip_and_ignore_unknown_keys() -> None:
    p = preset("quality")
    assert ModelConfig.from_dict({**p.model.to_dict(), "from_the_future": 1}) == p.model
    assert TrainConfig.from_dict(p.train.to_dict()) == p.train


def test_preset_times_have_one_owner() -> None:
    """`slr train --help` prints PRESET_TABLE's descriptions; the README's presets line states the same times."""
    import re
    from pathlib import Path

    from core.config import PRESET_TABLE

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    line = readme[readme.index("Presets, budgeted in steps"):].split("\n\n")[0].replace("\n", " ")
    for name, spec in PRESET_TABLE.items():
        said = re.search(r"(about \d+ minutes|seconds|hours)", spec.description)
        assert said, (name, spec.description)
        stated = re.search(rf"`{name}` \(([^`]*)", line)
        assert stated and said.group(1) in stated.group(1), (name, said.group(1), line)
