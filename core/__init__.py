"""What every room shares, numpy only: the model configuration, the channel registry, the vocabulary and
token padding, frame preprocessing and media decoding, greedy and beam search, and the artifacts manifest.

`model/`, `export/` and `service/` import this package; it imports none of them, nor torch nor a web
framework (import-linter contracts in pyproject.toml hold that line).
"""
