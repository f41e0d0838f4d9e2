"""The paper's tables on the synthetic benchmark (`python -m bench.paper_tables`; usage in `bench/paper/cli.py`).

plan.py     which models, tasks, sizes, caps and patience; the corpus; the time estimate (an upper bound)
timing.py   the machine and the measured step / validation / evaluation costs the plan uses
jobs.py     training (to convergence) and evaluating every (seed, model), in parallel processes
stats.py    mean ± sample std over seeds, when a difference is real; steps run and mean learning curves
reading.py  the honest reading: does S2S+SLR > S2S+VAE > LSTM hold beyond the spread
figures.py  input / ground truth / each model's output per task; the learning curves (Pillow)
report.py   the markdown report (docs/results.md)
cli.py      the command line that runs them in that order
"""
