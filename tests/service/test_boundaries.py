"""The serving process, checked in a fresh interpreter: building the app never loads torch. The import rules
between the project's own modules are import-linter contracts (tests/core/test_contracts.py); this one test
stays because a contract cannot see what a third-party package imports at run time."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def loaded_after(imports: list[str], heavy: list[str]) -> list[str]:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in imports)
        + f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_app_factory_builds_without_torch() -> None:
    assert loaded_after(["service.app", "service.engine", "service.server"], ["torch", "onnx"]) == []
    code = "import sys; from service.app import create_app; create_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
