"""The rooms' import rules (pyproject.toml, [tool.importlinter]) hold on the tree, and really fail when broken."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "model", "export", "service", "cli", "bench")  # the rooms and the benches
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_tree_keeps_every_contract() -> None:
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(("file", "line", "contract"), [
    ("core/vocab.py", "import torch", "core is numpy-only"),
    ("service/cache.py", "import model.star", "rooms are layered"),
    ("service/engine.py", "import torch.nn", "the serving room never reaches torch"),
    ("model/train.py", "import service.engine", "rooms are layered"),
    ("core/frames.py", "import export.graphs", "rooms are layered"),
    ("service/predictor.py", "import fastapi", "the predictor side"),
    ("model/data/corpus.py", "import model.data.load", "model.data is layered"),
    ("model/data/msrvtt.py", "import model.data.msvd", "model.data is layered"),
    ("service/cache.py", "import bench.support", "no room imports the benches"),
    ("cli/main.py", "from bench.load import Result", "no room imports the benches"),
    ("bench/support.py", "import service.app", "the tests' support imports no room"),
    ("bench/support.py", "import torch", "the tests' support imports no room"),
])
def test_a_deliberate_violation_breaks_its_contract(tmp_path: Path, file: str, line: str, contract: str) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / file
    target.write_text(target.read_text() + f"\n{line}  # deliberate violation\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0, out.stdout
    broken = [ln for ln in out.stdout.splitlines() if ln.strip().endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), out.stdout
