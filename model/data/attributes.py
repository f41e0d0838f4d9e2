"""What a caption says about a synthetic clip, and how often captions say it right.

`parse_attributes` reads the first colour, shape and motion a sentence names (the synthetic corpus' words and
their synonyms, `model.data.synthetic`); `attribute_accuracy` and `object_binding` score captions against the
clips' ground truth (`Clip.attributes`). Evaluation, the outside test set and the benches read captions through
here. Torch-free.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.vocab import tokenize
from model.data.captions import MOTION_SYNONYMS, SHAPE_SYNONYMS
from model.data.shapes import COLOUR_RGB


def _phrase_table(synonyms: dict[str, tuple[str, ...]]) -> list[tuple[tuple[str, ...], str]]:
    """(tokens, canonical) longest first, so the longest phrase wins at a position."""
    table = [(tuple(tokenize(p)), canon) for canon, phrases in synonyms.items() for p in phrases]
    return sorted(table, key=lambda e: -len(e[0]))


_SHAPE_TABLE = _phrase_table(SHAPE_SYNONYMS)
_MOTION_TABLE = _phrase_table(MOTION_SYNONYMS)


def _first_match(tokens: list[str], table: list[tuple[tuple[str, ...], str]]) -> str | None:
    for i in range(len(tokens)):
        for phrase, canon in table:
            if tuple(tokens[i:i + len(phrase)]) == phrase:
                return canon
    return None


def parse_attributes(sentence: str) -> dict[str, str | None]:
    """The first colour, shape and motion a sentence mentions (canonical names), None where absent.

    Captions name the main object first, so for a two-object caption this reads the main object.
    """
    tokens = tokenize(sentence)  # the words as the model reads them (core/vocab.py: the one word rule)
    colour = next((t for t in tokens if t in COLOUR_RGB), None)
    return {"colour": colour, "shape": _first_match(tokens, _SHAPE_TABLE),
            "motion": _first_match(tokens, _MOTION_TABLE)}


ATTRIBUTES: tuple[str, ...] = ("colour", "shape", "motion")


def described_object(parsed: dict[str, str | None], truth: dict[str, Any]) -> dict[str, Any]:
    """The clip's object that a caption names first: the one its attributes match best (the main
    object on a tie). In a two-object clip nothing on screen says which object is the main one, so
    a caption that names the other object first, rightly, is right; scoring it against the main
    object only would cap every attribute near 0.9 (a fifth of the clips hold two objects)."""
    objects = truth.get("objects") or [truth]
    return max(objects, key=lambda o: sum(parsed.get(a) == o.get(a) for a in ATTRIBUTES))


def attribute_hits(hypotheses: Sequence[str], truths: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per caption, whether it names the right colour, shape and motion (and all three at once): bool [N] each,
    the outcomes a paired test compares (export/gate.py)."""
    rows = []
    for hyp, truth in zip(hypotheses, truths):
        parsed = parse_attributes(hyp)
        named = described_object(parsed, truth)
        ok = [parsed.get(a) == named.get(a) for a in ATTRIBUTES]
        rows.append([*ok, all(ok)])
    table = np.asarray(rows, dtype=bool).reshape(-1, len(ATTRIBUTES) + 1)
    return {a: table[:, i] for i, a in enumerate((*ATTRIBUTES, "all"))}


def attribute_accuracy(hypotheses: Sequence[str], truths: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of captions naming the right colour, shape and motion (and all three at once)."""
    if not truths:
        return {}
    return {a: float(hits.mean()) for a, hits in attribute_hits(hypotheses, truths).items()}


# Where a two-object caption's second clause begins (`_caption`'s joiners before `_clause`'s openings); "up and
# down" is no joiner.
_CLAUSE_BREAK = re.compile(r"(?:,? and|,? while| as) (?=(?:there|we|another|a|an|one|the)\b)")


def binding_hits(hypotheses: Sequence[str], truths: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """On clips of two objects (the others left out), each clause of a caption read on its own: `first`, the first
    clause binds one of the objects (colour, shape and motion all three); `both`, both objects are bound. bool [n]."""
    first, both = [], []
    for hyp, truth in zip(hypotheses, truths):
        objects = truth.get("objects") or []
        if len(objects) != 2:
            continue
        clauses = [parse_attributes(c) for c in _CLAUSE_BREAK.split(hyp)]
        bound = [[all(c.get(a) == o[a] for a in ATTRIBUTES) for o in objects] for c in clauses]
        first.append(any(bound[0]))
        both.append(all(any(row[j] for row in bound) for j in range(2)))
    return {"first": np.asarray(first, dtype=bool), "both": np.asarray(both, dtype=bool)}


def object_binding(hypotheses: Sequence[str], truths: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Binding on clips of two objects (binding_hits): the shares `first` and `both`, and `n`, the clips scored."""
    hits = binding_hits(hypotheses, truths)
    n = len(hits["first"])
    return {"first": float(hits["first"].mean()), "both": float(hits["both"].mean()), "n": n} if n else {}
