"""The star model room: data, network, training, evaluation.

This package's __init__ imports nothing heavy on purpose: the serving process imports the
torch-free modules `core.channels`, `core.vocab` and `core.frames`, and must never pull torch in.
"""
