"""The artifacts contract is stated once, in CONTRIBUTING.md's table; this keeps it true to the graphs export writes
(`export.graphs.GRAPHS`): every graph listed, with exactly its inputs and outputs, and nothing else."""
from __future__ import annotations

import re
from pathlib import Path

from export.graphs import GRAPHS

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(?P<file>[a-z_]+)\.onnx` \| (?P<inputs>[^|]*) \| (?P<outputs>[^|]*) \|$")
# Names in backticks that are shapes, types or values rather than tensor names.
NOT_NAMES = re.compile(r"^(\[.*\]|f32|i64|[0-9.]+)$")


def names(cell: str) -> list[str]:
    return [n for n in re.findall(r"`([^`]+)`", cell) if not NOT_NAMES.match(n)]


def documented() -> dict[str, tuple[list[str], list[str]]]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("## The artifacts contract"):]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows[m["file"]] = (names(m["inputs"]), names(m["outputs"]))
    return rows


def test_every_graph_is_documented_with_its_inputs_and_outputs() -> None:
    table = documented()
    assert set(table) == {spec.name for spec in GRAPHS}, sorted(table)
    for spec in GRAPHS:
        inputs, outputs = table[spec.name]
        assert inputs == list(spec.inputs), (spec.name, inputs, spec.inputs)
        assert outputs == list(spec.outputs), (spec.name, outputs, spec.outputs)


def test_export_writes_exactly_the_core_contract() -> None:
    """export/graphs.py builds its specs from core/graph_contract.py: the same graphs, in the same order."""
    from core.graph_contract import CONTRACT

    assert [spec.io for spec in GRAPHS] == list(CONTRACT)
