"""Greedy and beam search over a one-step sentence decoder. Torch-free (numpy only).

The PyTorch model and the ONNX engine both run these functions with their own `step`, so a caption
from the exported graphs equals the PyTorch one token for token. The decoder state is a tuple of
arrays whose batch axis is axis 1 (h, c: [layers, N, hidden]; z: [1, N, Nz]). `step(tokens, state)`
takes N token ids and the state of N rows and returns (log-probs [N, V] as numpy, next state);
`select(array, rows)` gathers rows of one state array along axis 1.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from core.graph_contract import SENTENCE_INIT_IO, SENTENCE_STEP_IO
from core.vocab import BOS_ID, EOS_ID

State = tuple[Any, ...]
StepFn = Callable[[Sequence[int], State], tuple[np.ndarray, State]]
SelectFn = Callable[[Any, np.ndarray], Any]


def select_rows(state: State, rows: np.ndarray, select: SelectFn) -> State:
    return tuple(select(x, rows) for x in state)


def greedy_search(step: StepFn, state: State, batch: int, max_len: int) -> list[list[int]]:
    """Most likely word at every step; a row stops at <eos> or after max_len words."""
    tokens = np.full(batch, BOS_ID, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_len):
        logprobs, state = step(tokens.tolist(), state)
        tokens = np.argmax(logprobs, axis=-1).astype(np.int64)
        for b in np.flatnonzero(~done):
            if tokens[b] == EOS_ID:
                done[b] = True
            else:
                out[b].append(int(tokens[b]))
        if done.all():
            break
    return out


def beam_search(step: StepFn, state: State, batch: int, beam_size: int, max_len: int,
                select: SelectFn) -> list[list[int]]:
    """Beam search over `batch` items at once (rows item*K + k); sum of log-probs, no length penalty.

    Each item keeps K live hypotheses; a hypothesis that emits <eos> is set aside as finished. An item
    is done when it holds K finished ones and none of its live ones can still beat the best finished
    (scores only fall as words are added). At beam 1 this is greedy search exactly.
    """
    k = max(1, int(beam_size))
    rows = batch * k
    first = np.arange(batch).repeat(k)  # every beam starts from its item's initial state
    state = select_rows(state, first, select)
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # one live beam per item at the start, so the K beams do not duplicate
    seqs: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    tokens = np.full(rows, BOS_ID, dtype=np.int64)
    for t in range(max_len):
        logprobs, state = step(tokens.tolist(), state)
        vocab = logprobs.shape[-1]
        cand = (scores[:, :, None] + logprobs.reshape(batch, k, vocab)).reshape(batch, k * vocab)
        parent = np.arange(rows)
        for b in np.flatnonzero(~done):
            order = np.argsort(-cand[b], kind="stable")[: 2 * k]
            new_seqs: list[list[int]] = []
            new_scores: list[float] = []
            new_parent: list[int] = []
            new_tokens: list[int] = []
            for idx in order:
                score = float(cand[b, idx])
                if not np.isfinite(score):
                    break
                beam, word = divmod(int(idx), vocab)
                if word == EOS_ID:
                    finished[b].append((score, list(seqs[b][beam])))
                elif len(new_seqs) < k:
                    new_seqs.append(seqs[b][beam] + [word])
                    new_scores.append(score)
                    new_parent.append(b * k + beam)
                    new_tokens.append(word)
                if len(new_seqs) == k and len(finished[b]) >= k:
                    break
            best_done = max((s for s, _ in finished[b]), default=-np.inf)
            if len(finished[b]) >= k and (not new_scores or max(new_scores) <= best_done):
                done[b] = True
                continue
            n = len(new_seqs)
            scores[b, :] = -np.inf
            scores[b, :n] = new_scores
            seqs[b] = new_seqs + [[] for _ in range(k - n)]
            parent[b * k: b * k + n] = new_parent
            tokens[b * k: b * k + n] = new_tokens
        if done.all():
            break
        state = select_rows(state, parent, select)
    for item in range(batch):  # hypotheses still live at max_len count as finished
        if not done[item]:
            finished[item].extend((float(scores[item, j]), seqs[item][j]) for j in range(k)
                                  if np.isfinite(scores[item, j]))
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]


class Session(Protocol):
    def run(self, output_names: Any, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def decode_with_graphs(init: Session, step_graph: Session, z: np.ndarray, beam_size: int,
                       max_len: int) -> list[list[int]]:
    """Search over the exported sentence_init and sentence_step graphs (onnxruntime sessions): the
    engine and the export parity check run this one function."""
    state = tuple(init.run(list(SENTENCE_INIT_IO.outputs), {SENTENCE_INIT_IO.inputs[0]: z}))

    def step(tokens: Sequence[int], st: State) -> tuple[np.ndarray, State]:
        h, c, zs = st
        token = np.asarray(tokens, dtype=np.int64)
        feed = dict(zip(SENTENCE_STEP_IO.inputs, (token, h, c, zs), strict=True))
        lp, h2, c2 = step_graph.run(list(SENTENCE_STEP_IO.outputs), feed)
        return lp, (h2, c2, zs)  # z rides unchanged beside h and c

    if beam_size <= 1:
        return greedy_search(step, state, len(z), max_len)
    return beam_search(step, state, len(z), beam_size, max_len, select=lambda a, rows: np.ascontiguousarray(a[:, rows]))
