"""bench/caption_sheet.py on the tiny model and a quick outside set with two-object files; bench/binding.py's
targets for both rules."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.binding import targets
from bench.caption_sheet import caption_rows, main, model_spec
from export.publish import read_latest
from model.data.outside_writers import build_outside_set


@pytest.fixture(scope="module")
def two_object_outside(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("outside")
    build_outside_set(d, seed=3, n_per_kind=1, quick=True, sources=("pil",), containers=("mp4", "gif"),
                      two_per_kind=2)
    return d


def test_caption_sheet_rows_name_both_objects_and_every_model(artifacts_dir: Path, two_object_outside: Path,
                                                             tmp_path: Path) -> None:
    rows, score = caption_rows([artifacts_dir, artifacts_dir], two_object_outside, n_clips=3)
    assert len(rows) == 3  # two-object files only, at most n_clips
    for label, frames in rows:
        lines = label.splitlines()
        assert lines[0].startswith("truth: ") and " + " in lines[0]
        assert sum(line.split(" ", 1)[0] in score for line in lines) == 2  # one caption line per model
        assert frames.ndim == 4 and frames.dtype == np.float32
    assert list(score.values())[0].endswith("of 3")
    out = tmp_path / "sheet.png"
    assert main(["--artifacts", str(artifacts_dir), "--outside", str(two_object_outside), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_one_object_caption_rows_show_only_files_the_models_disagree_on(artifacts_dir: Path,
                                                                         two_object_outside: Path) -> None:
    rows, score = caption_rows([artifacts_dir, f"{artifacts_dir}@{read_latest(artifacts_dir)}"], two_object_outside,
                               n_clips=5, one_object=True)
    assert rows == [] and list(score.values()) == ["0 of 0"]  # one model twice: never a file between them
    assert model_spec("models/default@quality-v18") == (Path("models/default"), "quality-v18")
    assert model_spec(Path("models/default")) == (Path("models/default"), None)


def test_binding_targets_both_objects_or_the_described_one() -> None:
    two = {"colour": "red", "objects": [{"colour": "red", "shape": "square", "motion": "left"},
                                        {"colour": "blue", "shape": "circle", "motion": "up"}]}
    described = targets(two, "described")
    both = targets(two, "both")
    assert len(described) == 3 and len(both) == 6 and 0 not in both
    assert described == both[:3]  # red comes before blue in COLOURS: the main object is slot 1 here
    one = {"colour": "red", "shape": "square", "motion": "left", "objects": two["objects"][:1]}
    assert targets(one, "both")[3:] == [0, 0, 0] and targets(one, "described") == described
