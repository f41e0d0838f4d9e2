"""Every warning an answer carries has one owner (core/answer_warnings.py): a code for programs and the page, a text
for people, spelled nowhere else."""
from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from core.answer_warnings import TEXTS, WarningCode, warning

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "core" / "answer_warnings.py"
ROOMS = ("core", "model", "export", "service", "cli", "bench")


def phrases() -> list[str]:
    """A stretch of each text long enough to be its own (the words before any `{field}`)."""
    return [re.split(r"[{:(]", text)[0].strip()[:40] for text in TEXTS.values()]


def test_every_code_has_a_text_and_fills_its_fields() -> None:
    assert set(TEXTS) == set(get_args(WarningCode))
    w = warning("some_unknown_words", words="zebra, lion")
    assert w.code == "some_unknown_words" and w.message.endswith("zebra, lion")
    assert "7 words" in warning("truncated", max_len=7).message


def test_no_room_spells_a_warning_text_but_its_owner() -> None:
    files = [p for room in ROOMS for p in (ROOT / room).rglob("*")
             if p.suffix in (".py", ".js", ".html") and p != OWNER]
    hits = [f"{p.relative_to(ROOT)}: {phrase!r}" for p in files for phrase in phrases()
            if phrase in p.read_text(encoding="utf-8")]
    assert not hits, hits


def test_the_page_reads_codes_not_sentences() -> None:
    """app.js chooses warnings by `code` and shows `message`; a code it names must exist."""
    js = (ROOT / "service" / "static" / "app.js").read_text(encoding="utf-8")
    assert "w.message" in js and not re.search(r"startsWith\(\"(some|none|most|this)", js)
    assert set(re.findall(r"code [!=]==? \"([a-z_]+)\"", js)) <= set(TEXTS)
