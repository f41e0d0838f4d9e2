"""The paper's tables on the synthetic benchmark (`python -m bench.paper_tables`; usage in `bench/paper/cli.py`).

plan.py     which models, tasks, sizes and steps; the corpus; the time estimate
timing.py   the machine and the measured step / evaluation costs the plan uses
jobs.py     training and evaluating every (seed, model), in parallel processes
stats.py    mean ± sample std over seeds, and when a difference is real
reading.py  the honest reading: does S2S+SLR > S2S+VAE > LSTM hold beyond the spread
figures.py  input / ground truth / each model's output per task (Pillow)
report.py   the markdown report (docs/results.md)
cli.py      the command line that runs them in that order
"""
