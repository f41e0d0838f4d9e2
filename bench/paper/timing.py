"""The machine, and the measured costs the plan is built from: seconds per training step of every model kind and
seconds per evaluated clip."""
from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.paper.plan import baseline_models


def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def time_steps(corpus, p, tasks: Sequence[str], n: int) -> dict[str, dict[str, float]]:
    """Seconds per training step of every model kind, from n timed steps (after 2 warm-up steps) each: wall time
    ("wall") and this process's CPU time ("cpu": with one torch thread, about the wall time on a quiet machine).
    Keys: "star/<phase>" and "<kind>/<task>"."""
    import torch

    from core import channels
    from core.vocab import Vocab
    from model.baselines import baseline_phase
    from model.data.dataset import BatchStream, tensorize
    from model.phases import phases_for
    from model.star import StarModel
    from model.train import Trainer, model_config_for

    vocab = Vocab.build(corpus.all_captions("train"))
    cfg = model_config_for(corpus, p.model, vocab)
    data = tensorize(corpus.splits["train"], vocab, cfg)
    timed = {f"star/{ph.name}": (ph, True) for ph in phases_for(p.train)}  # (phase, samples z with the KL term?)
    timed |= {f"{kind}/{task}": (baseline_phase(channels.get(task), n), kind == "vae")
              for kind, task in baseline_models(tasks)}
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (phase, vae) in timed.items():
            torch.manual_seed(0)
            gen = torch.Generator().manual_seed(0)
            trainer = Trainer(StarModel(cfg), vocab, p.train, Path(tmp), progress=False, vae=vae)
            stream = BatchStream(data, p.train.batch_size, 0)
            for _ in range(2):
                trainer.train_step(stream.next(), phase, gen)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                trainer.train_step(stream.next(), phase, gen)
            out[name] = {"wall": (time.perf_counter() - start) / n, "cpu": (time.process_time() - cpu) / n}
    return out


def time_eval(corpus, p, tasks: Sequence[str], meteor: bool) -> dict[str, float]:
    """Seconds to evaluate an untrained star model on every task over 32 test clips (an upper bound: untrained
    decoders write maximum-length sentences), and one METEOR call (Java start and its tables) when on."""
    from core.vocab import Vocab
    from model.evaluate import evaluate_tasks
    from model.metrics import caption_scores
    from model.star import StarModel
    from model.train import model_config_for

    vocab = Vocab.build(corpus.all_captions("train"))
    model = StarModel(model_config_for(corpus, p.model, vocab))
    clips = corpus.splits["test"][:32]
    start = time.perf_counter()
    evaluate_tasks(model, vocab, clips, meteor=False, tasks=list(tasks))
    per_clip = (time.perf_counter() - start) / max(1, len(clips))
    out = {"eval_per_clip_s": per_clip, "meteor_call_s": 0.0}
    if meteor:
        start = time.perf_counter()
        caption_scores({"a": ["a red circle moves left"]}, {"a": "a red circle moves left"}, meteor=True)
        out["meteor_call_s"] = time.perf_counter() - start
    return out


def time_validation(corpus, p, tasks: Sequence[str]) -> dict[str, float]:
    """Seconds of one validation (the trainer's own, model.train.Trainer.figures) of an untrained star model on
    every task ("star") and on each task alone (a baseline's): an upper bound, untrained decoders write
    maximum-length sentences. Zeros when the size does not validate."""
    clips = corpus.splits["val"][: p.train.val_clips]
    if not p.train.eval_every or not clips:
        return {"star": 0.0, **{t: 0.0 for t in tasks}}
    from core.config import TrainConfig
    from core.vocab import Vocab
    from model.star import StarModel
    from model.train import Trainer, model_config_for

    vocab = Vocab.build(corpus.all_captions("train"))
    model = StarModel(model_config_for(corpus, p.model, vocab))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, val_tasks in [("star", tuple(tasks))] + [(t, (t,)) for t in tasks]:
            tc = TrainConfig.from_dict({**p.train.to_dict(), "val_tasks": val_tasks})
            trainer = Trainer(model, vocab, tc, Path(tmp), progress=False, val_clips=clips)
            start = time.perf_counter()
            trainer.figures(model)
            out[name] = time.perf_counter() - start
    return out
