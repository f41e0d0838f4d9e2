"""The paper's six tables: `python -m bench.paper_tables --help` (or `python bench/paper_tables.py`).
The code is the package bench/paper/; this file keeps the command line of the Makefile and the docs."""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.paper.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
