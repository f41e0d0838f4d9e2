"""Markdown tables, the one way every report and benchmark prints them (the model room's evaluation, bench/)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence


def md_table(head: Sequence[str], rows: Iterable[Sequence[object]], right: bool = False) -> list[str]:
    """Header, rule and rows as lines; cells are printed as given (format numbers before); `right` aligns every
    column right (tables of figures)."""
    rule = "---:|" if right else "---|"
    return (["| " + " | ".join(head) + " |", "|" + rule * len(head)]
            + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])
