"""core/search.py on its own, numpy only (no torch in the process): greedy and beam search over hand-built one-step
decoders, the length cap, and the ONNX path's feeds (decode_with_graphs) over fake sessions."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from core.graph_contract import SENTENCE_INIT_IO, SENTENCE_STEP_IO, reached_cap
from core.search import beam_search, decode_with_graphs, greedy_search
from core.vocab import BOS_ID, EOS_ID

ROOT = Path(__file__).resolve().parents[2]
V = 6  # 0 pad, 1 bos, 2 eos, 3 unk, 4 'a', 5 'b'
LOW = -20.0


def row(**probs: float) -> list[float]:
    """Log-probs over the vocabulary: the named words get their probability, the rest next to nothing."""
    ids = {"eos": EOS_ID, "a": 4, "b": 5}
    out = [LOW] * V
    for word, p in probs.items():
        out[ids[word]] = float(np.log(p))
    return out


def table_step(table: dict[int, list[float]], default: list[float]):
    def step(tokens, state):
        return np.array([table.get(t, default) for t in tokens]), state
    return step


def select(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return a[:, rows]


STATE = (np.zeros((1, 1, 1)),)


def test_greedy_stops_at_the_end_token_and_at_the_cap() -> None:
    ends = table_step({BOS_ID: row(a=0.9, b=0.1), 4: row(eos=0.8, b=0.2)}, row(eos=1.0))
    assert greedy_search(ends, STATE, 1, 5) == [[4]]
    never = table_step({}, row(a=1.0))  # never ends: the cap cuts it, and reached_cap says so
    cut = greedy_search(never, STATE, 1, 3)
    assert cut == [[4, 4, 4]] and reached_cap(cut[0], 3) and not reached_cap([4], 3)


def test_beam_finds_what_greedy_misses_and_equals_it_at_one() -> None:
    table = {BOS_ID: row(a=0.6, b=0.4), 4: row(eos=0.3, a=0.35, b=0.35), 5: row(eos=0.99)}
    step = table_step(table, row(eos=1.0))
    assert greedy_search(step, STATE, 1, 4)[0][0] == 4
    assert beam_search(step, STATE, 1, 2, 4, select) == [[5]]  # 0.4 * 0.99 beats 0.6 * 0.35 * ...
    assert beam_search(step, STATE, 1, 1, 4, select) == greedy_search(step, STATE, 1, 4)


def test_rows_of_a_batch_are_searched_apart() -> None:
    """Two items in one call: each row's state is its own (batch on axis 1), each stops on its own."""
    def step(tokens, state):
        (ids,) = state
        lp = np.array([row(eos=1.0) if t != BOS_ID else (row(a=1.0) if i == 0 else row(b=1.0))
                       for t, i in zip(tokens, ids[0, :, 0])])
        return lp, state

    state = (np.array([[[0], [1]]]),)
    assert greedy_search(step, state, 2, 4) == [[4], [5]]
    assert beam_search(step, state, 2, 3, 4, select) == [[4], [5]]


class FakeInit:
    def run(self, names, feed):
        assert list(names) == list(SENTENCE_INIT_IO.outputs) and set(feed) == set(SENTENCE_INIT_IO.inputs)
        b = len(feed["z"])
        return [np.zeros((1, b, 2)), np.zeros((1, b, 2)), feed["z"][None]]


class FakeStep:
    """Emits word 4 twice, then the end token; checks the feed names against the contract."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, names, feed):
        assert set(feed) == set(SENTENCE_STEP_IO.inputs) and feed["token"].dtype == np.int64
        self.calls += 1
        word = 4 if self.calls <= 2 else EOS_ID
        lp = np.full((len(feed["token"]), V), LOW)
        lp[:, word] = 0.0
        return [lp, feed["h"], feed["c"]]


def test_decode_with_graphs_feeds_the_contracts_names() -> None:
    z = np.zeros((3, 4), np.float32)
    assert decode_with_graphs(FakeInit(), FakeStep(), z, 1, 10) == [[4, 4]] * 3


def test_search_runs_without_torch() -> None:
    """In a fresh interpreter: searching loads no torch (the engine's path never pays for it)."""
    code = ("import sys, numpy as np; from core.search import greedy_search; "
            "greedy_search(lambda t, s: (np.zeros((len(t), 3)), s), (np.zeros((1, 1, 1)),), 1, 2); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
