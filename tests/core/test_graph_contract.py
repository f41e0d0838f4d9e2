"""The ONNX graph contract has one owner (core/graph_contract.py): no other module of a room spells a graph's name,
and the decode length is the one rule every room reads."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.graph_contract import (
    CONTRACT,
    ENCODER_V,
    SENTENCE_STEP_IO,
    VIDEO_DECODER,
    decode_length,
    encoder_graph,
    encoder_io,
    graph_io,
    resolve_max_len,
)

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("core", "model", "export", "service", "cli", "bench")
OWNER = ROOT / "core" / "graph_contract.py"
GRAPH_LITERAL = re.compile(r"""["'](encoder_(?:v|s|vs)|sentence_init|sentence_step|video_decoder)(?:\.onnx)?["']""")
# The same words meaning something else: a ModelConfig field and a StarModel submodule, not graph names.
NOT_GRAPH_NAMES = {
    ("model/phases.py", 'trainable="video_decoder"'),
    ("bench/paper/report.py", 'RECIPE_MODEL = ("video_decoder"'),
    ("bench/paper/report.py", "mc.get('video_decoder'"),
}


def graph_literals(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    hits = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if GRAPH_LITERAL.search(line) and not any(rel == f and text in line for f, text in NOT_GRAPH_NAMES):
            hits.append(f"{rel}: {line.strip()}")
    return hits


def test_no_room_spells_a_graph_name_but_the_contract() -> None:
    files = [p for room in ROOMS for p in (ROOT / room).rglob("*") if p.suffix in (".py", ".js") and p != OWNER]
    hits = [hit for path in files for hit in graph_literals(path)]
    assert not hits, "\n".join(hits)


def test_the_grep_sees_a_literal(tmp_path: Path) -> None:
    """The check above can fail: a graph name in quotes is found, a constant is not."""
    assert GRAPH_LITERAL.search('self.graph("sentence_step")')
    assert GRAPH_LITERAL.search("open('encoder_vs.onnx')")
    assert not GRAPH_LITERAL.search("self.graph(SENTENCE_STEP)")


def test_every_graph_once_with_its_file() -> None:
    names = [io.name for io in CONTRACT]
    assert len(names) == len(set(names)) == 7
    assert graph_io(VIDEO_DECODER).file == "video_decoder.onnx"
    assert encoder_io("vs").inputs == ("video", "tokens", "lengths") and encoder_io("s").inputs == ("tokens", "lengths")
    assert encoder_graph("v") == ENCODER_V
    assert SENTENCE_STEP_IO.inputs[1:] == graph_io("sentence_init").outputs  # the state goes round the loop
    with pytest.raises(KeyError):
        encoder_graph("x")


def test_decode_length_is_every_word_plus_the_end() -> None:
    assert decode_length(16) == 17
    assert resolve_max_len(None, 16) == 17 and resolve_max_len(5, 16) == 5
