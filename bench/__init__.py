"""Benchmarks that print figures (`python -m bench.<name>`), and `bench.support`: the clips, processes and HTTP calls
the tests and the benches share. No room imports bench (an import-linter contract in pyproject.toml)."""
