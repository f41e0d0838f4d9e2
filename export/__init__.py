"""Checkpoint -> ONNX artifacts (see the artifacts contract in CONTRIBUTING.md).

Importing this package is cheap; torch and onnx load when an export runs.
"""
from __future__ import annotations

from typing import Any

__all__ = ["export_run", "ExportParityError"]


def __getattr__(name: str) -> Any:
    if name == "export_run":
        from export.onnx_export import export_run
        return export_run
    if name == "ExportParityError":
        from export.parity import ExportParityError
        return ExportParityError
    raise AttributeError(name)
