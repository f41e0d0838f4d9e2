"""Every warning an answer can carry, one code and one text each: the familiarity verdict (core/familiarity.py) and
the service's routes raise them by code, the page (service/static/app.js) reads the code and shows the text, so a
text can be reworded without breaking a client. Standard library only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WarningCode = Literal["unfamiliar_clip", "no_known_words", "few_known_words", "some_unknown_words", "truncated"]

# What each code says to a person; `{...}` fields are filled from the answer (warning(code, words=...)).
TEXTS: dict[WarningCode, str] = {
    "unfamiliar_clip": ("this clip looks unlike anything the model was trained on: coloured shapes on plain "
                        "backgrounds; the answer is likely wrong"),
    "no_known_words": "none of these words are in the model's vocabulary: the answer says nothing about the input",
    "few_known_words": "most of these words are not in the model's vocabulary: the answer is likely wrong",
    "some_unknown_words": "some words are not in the model's vocabulary and were ignored: {words}",
    "truncated": ("the sentence reached the length cap ({max_len} words) before it ended: it is cut off, "
                  "and may stop mid-clause"),
}


@dataclass(frozen=True)
class AnswerWarning:
    """One thing to distrust in an answer: a stable code for programs, a text for people."""

    code: WarningCode
    message: str


def warning(code: WarningCode, **fields: object) -> AnswerWarning:
    return AnswerWarning(code, TEXTS[code].format(**fields))
