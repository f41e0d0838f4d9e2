"""Tokenizer, vocabulary (saved as JSON) and token padding. Torch-free: training, export and the service
tokenise and pad with the same code."""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
MAX_WORDS = 35  # the paper's sentence length
# Words of room above a corpus's longest caption (word_cap): a paraphrase may say a little more than any caption.
CAP_ROOM = 2

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(sentence: str) -> list[str]:
    """Lowercased words; punctuation and symbols are dropped (the paper's preprocessing)."""
    return _WORD.findall(sentence.lower())


def word_cap(sentences: Iterable[str], percentile: float = 100.0, room: int = CAP_ROOM) -> int:
    """The longest sentence a model trained on `sentences` takes and says: their length in words at `percentile`
    (100: the longest; a real corpus's rare run-on captions are cut below it) plus `room`. A cap taken from the
    corpus, not a preset, so no caption of the training world is ever cut mid-clause."""
    lengths = np.fromiter((len(tokenize(s)) for s in sentences), dtype=np.int64)
    if lengths.size == 0:
        raise ValueError("no captions to take a length cap from")
    return int(np.ceil(np.percentile(lengths, percentile))) + room


@dataclass
class Vocab:
    """Word <-> id mapping with the four specials at fixed ids 0..3."""

    words: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        if tuple(self.words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        if len(set(self.words)) != len(self.words):
            raise ValueError("vocabulary has duplicate words")
        self._index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, sentences: Iterable[str], min_count: int = 1, max_size: int | None = None) -> "Vocab":
        """Vocabulary of a training split: most frequent first, ties broken alphabetically (deterministic)."""
        counts = Counter(w for s in sentences for w in tokenize(s))
        ranked = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + ranked)

    def id(self, word: str) -> int:
        return self._index.get(word, UNK_ID)

    def encode(self, sentence: str, max_words: int = MAX_WORDS) -> list[int]:
        """Word ids of a sentence, without <bos>/<eos>, cut to max_words."""
        return [self.id(w) for w in tokenize(sentence)[:max_words]]

    def unknown_words(self, sentence: str | None) -> list[str]:
        """The sentence's words this vocabulary does not know (read as <unk>), once each, in order."""
        if not sentence:
            return []
        return list(dict.fromkeys(w for w in tokenize(sentence) if self.id(w) == UNK_ID))

    def decode(self, ids: Iterable[int]) -> str:
        """Sentence of ids: stops at <eos>, skips <pad>/<bos>."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            out.append(self.words[i] if 0 <= i < len(self.words) else UNK)
        return " ".join(out)

    def to_json(self) -> str:
        return json.dumps({"specials": list(SPECIALS), "words": self.words}, indent=0)

    @classmethod
    def from_json(cls, text: str) -> "Vocab":
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("words"), list):
            raise ValueError("vocab JSON must be an object with a 'words' list")
        return cls([str(w) for w in data["words"]])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def pad_tokens(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """int64 (tokens [B, L], lengths [B]): right-padded with <pad> to the longest row. The one rule for an
    empty sentence everywhere (training, parity, evaluation, serving): one <pad> of length 1, since the
    encoder reads the state after the last word and so needs at least one step."""
    if len(rows) == 0:
        raise ValueError("tokens must hold at least one sentence")
    width = max(1, max(len(r) for r in rows))
    tokens = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
    lengths = np.array([max(1, len(r)) for r in rows], dtype=np.int64)
    return tokens, lengths
