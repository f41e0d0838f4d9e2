"""Import boundaries, checked in fresh interpreters: the serving process never loads torch, the predictor
(and media, cache, batching) never load FastAPI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(imports: list[str], heavy: list[str]) -> list[str]:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in imports)
        + f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_serving_process_never_imports_torch() -> None:
    assert loaded_after(["service.app", "service.engine", "service.server"], ["torch", "onnx"]) == []


def test_app_factory_builds_without_torch() -> None:
    assert loaded_after(["service.app"], ["torch"]) == []
    code = "import sys; from service.app import create_app; create_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("module", ["service.predictor", "service.media", "service.cache", "service.batching",
                                    "service.errors", "service.metrics"])
def test_predictor_side_never_imports_fastapi(module: str) -> None:
    assert loaded_after([module], ["fastapi", "starlette", "torch"]) == []
