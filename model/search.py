"""Greedy and beam search over a one-step sentence decoder. Torch-free (numpy only).

The PyTorch model and the ONNX engine both run these functions with their own `step`, so a caption
from the exported graphs equals the PyTorch one token for token. `step(tokens, h, c)` takes N token
ids and the decoder state for N rows and returns (log-probs [N, V] as numpy, h', c'); `select(state,
rows)` gathers rows of a state (the batch axis is axis 1: [layers, N, hidden]).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from model.vocab import BOS_ID, EOS_ID

StepFn = Callable[[Sequence[int], Any, Any], tuple[np.ndarray, Any, Any]]
SelectFn = Callable[[Any, np.ndarray], Any]


def greedy_search(step: StepFn, h: Any, c: Any, batch: int, max_len: int) -> list[list[int]]:
    """Most likely word at every step; a row stops at <eos> or after max_len words."""
    tokens = np.full(batch, BOS_ID, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_len):
        logprobs, h, c = step(tokens.tolist(), h, c)
        tokens = np.argmax(logprobs, axis=-1).astype(np.int64)
        for b in np.flatnonzero(~done):
            if tokens[b] == EOS_ID:
                done[b] = True
            else:
                out[b].append(int(tokens[b]))
        if done.all():
            break
    return out


def beam_search(step: StepFn, h: Any, c: Any, batch: int, beam_size: int, max_len: int,
                select: SelectFn) -> list[list[int]]:
    """Beam search over `batch` items at once (rows item*K + k); sum of log-probs, no length penalty.

    Each item keeps K live hypotheses; a hypothesis that emits <eos> is set aside as finished. An item
    is done when it holds K finished ones and none of its live ones can still beat the best finished
    (scores only fall as words are added). At beam 1 this is greedy search exactly.
    """
    k = max(1, int(beam_size))
    rows = batch * k
    first = np.arange(batch).repeat(k)  # every beam starts from its item's initial state
    h, c = select(h, first), select(c, first)
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # one live beam per item at the start, so the K beams do not duplicate
    seqs: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    tokens = np.full(rows, BOS_ID, dtype=np.int64)
    for t in range(max_len):
        logprobs, h, c = step(tokens.tolist(), h, c)
        vocab = logprobs.shape[-1]
        cand = (scores[:, :, None] + logprobs.reshape(batch, k, vocab)).reshape(batch, k * vocab)
        parent = np.arange(rows)
        for b in np.flatnonzero(~done):
            order = np.argsort(-cand[b], kind="stable")[: 2 * k]
            new_seqs, new_scores, new_parent, new_tokens = [], [], [], []
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
        h, c = select(h, parent), select(c, parent)
    for b in range(batch):  # hypotheses still live at max_len count as finished
        if not done[b]:
            finished[b].extend((float(scores[b, j]), seqs[b][j]) for j in range(k) if np.isfinite(scores[b, j]))
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]
