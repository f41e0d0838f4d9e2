"""The paper's six tables: `python -m bench.paper_tables --help`.
The code is the package bench/paper/; this file keeps the command line of the Makefile and the docs."""
from __future__ import annotations

from bench.paper.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
