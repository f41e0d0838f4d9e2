"""python -m bench.peers --artifacts models/default [--duration 8 --rounds 2 --json out.json]: see side_by_side.py."""
from bench.peers.side_by_side import main

if __name__ == "__main__":
    main()
