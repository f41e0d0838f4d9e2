"""Training to convergence (model/train.py): validation figures, early stopping with patience, the best
validation's weights kept; and star_losses skipping the layers a phase never uses (same losses, same gradients)."""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core import channels
from core.config import ModelConfig, TrainConfig, preset
from core.vocab import Vocab
from model.checkpoint import load_checkpoint
from model.data.corpus import Clip, Corpus
from model.data.dataset import BatchStream, tensorize
from model.losses import star_losses
from model.phases import Phase, full_masks
from model.star import StarModel
from model.train import Best, Trainer, loss_figures, select_losses, train


def tiny_preset(**train: object):
    p = preset("tiny")
    return replace(p, train=TrainConfig.from_dict({**p.train.to_dict(), **train}))


def test_best_counts_validations_without_improvement_and_waits_for_min_steps():
    b = Best(patience=2, min_steps=10)
    assert b.update((0.2, 0.0), 2) and b.update((0.3, -5.0), 4)
    assert not b.update((0.3, -5.0), 6)  # a tie is no improvement
    assert b.update((0.3, -4.0), 8)  # same figure, lower MSE: the tie-break improves
    assert not b.update((0.1, 0.0), 10) and not b.exhausted(10)  # one validation since the best
    assert not b.update((0.25, 0.0), 12) and b.exhausted(12) and b.step == 8
    assert not Best(patience=2, min_steps=20, since=5).exhausted(12)  # patience spent, min_steps not reached
    assert not Best(patience=0, min_steps=0, since=99).exhausted(99)  # patience 0: never stops early


def _scripted_run(monkeypatch, tmp_path: Path, corpus, figures: list[float], **train_kw) -> tuple[dict, dict]:
    """Train one converging phase whose validations return `figures` in turn; returns ({step: weights at that
    validation}, the phase's summary)."""
    seen: dict[int, dict[str, torch.Tensor]] = {}
    scores = iter(figures)

    def validate(self: Trainer, phase: str):
        seen[self.global_step] = copy.deepcopy(self.model.state_dict())
        figure = next(scores)
        self.log({"phase": phase, "step": self.global_step, "val_figure": figure})
        return figure, 0.0

    monkeypatch.setattr(Trainer, "validate", validate)
    summaries: list[dict] = []
    real_run_phase = Trainer.run_phase
    monkeypatch.setattr(Trainer, "run_phase",
                        lambda self, *a: summaries.append(real_run_phase(self, *a)) or summaries[-1])
    p = tiny_preset(eval_every=2, **train_kw)
    phase = Phase("converging", 20, 1.0, full_masks, converge=True)
    train(corpus, p, tmp_path, seed=0, progress=False, phases=[phase])
    return seen, summaries[0]


def test_a_converging_phase_stops_after_patience_and_keeps_the_best_weights(monkeypatch, tmp_path, tiny_corpus):
    seen, summary = _scripted_run(monkeypatch, tmp_path, tiny_corpus, [0.1, 0.5, 0.2, 0.4, 0.9, 0.9],
                                  patience=2, min_steps=0)
    # validations at steps 2, 4, 6, 8: best 0.5 at step 4, then two without improvement -> stop at step 8
    assert sorted(seen) == [2, 4, 6, 8]
    assert summary["steps"] == 8 and summary["stopped_early"] is True
    assert summary["best_step"] == 4 and summary["best_figure"] == pytest.approx(0.5)
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck.extra["global_step"] == 8 and ck.extra["best_steps"] == {"converging": 4}
    kept = ck.model.state_dict()
    assert all(torch.equal(kept[k], seen[4][k]) for k in kept)  # the weights of step 4, not of step 8
    assert any(not torch.equal(kept[k], seen[8][k]) for k in kept)


def test_min_steps_and_the_cap(monkeypatch, tmp_path, tiny_corpus):
    # min_steps 14: patience is spent at step 8 but the phase runs on until step 14
    seen, summary = _scripted_run(monkeypatch, tmp_path / "a", tiny_corpus, [0.5] + [0.1] * 9, patience=2,
                                  min_steps=14)
    assert max(seen) == 14 and summary["steps"] == 14 and summary["stopped_early"] and summary["best_step"] == 2
    # never stops early: runs to the cap (20 steps), which is validated too; the last validation is the best
    seen, summary = _scripted_run(monkeypatch, tmp_path / "b", tiny_corpus, [0.1 * k for k in range(1, 11)],
                                  patience=2, min_steps=0)
    assert max(seen) == 20 and summary["steps"] == 20 and summary["stopped_early"] is False
    assert summary["best_step"] == 20


def test_the_real_validation_logs_figures_per_task(tmp_path, tiny_corpus):
    p = tiny_preset(eval_every=5, val_clips=24, val_tasks=("caption", "paraphrase", "reconstruct",
                                                           "sentence_to_video"), patience=3)
    phases = [Phase("converging", 10, 1.0, full_masks, converge=True)]
    train(tiny_corpus, p, tmp_path, seed=0, progress=False, phases=phases)
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    vals = [r for r in records if "val" in r]
    assert [r["step"] for r in vals] == [5, 10]
    for r in vals:
        assert set(r["val"]) == {"caption", "paraphrase", "reconstruct", "sentence_to_video"}
        for task, f in r["val"].items():
            assert 0.0 <= f["figure"] <= 1.0, (task, f)
        assert {"colour", "motion", "contrast", "MSE"} <= set(r["val"]["reconstruct"])
        assert r["val_figure"] == pytest.approx(sum(f["figure"] for f in r["val"].values()) / 4)
        assert "val_caption_attributes" in r


def test_loss_figures_where_clips_have_no_attributes(tiny_corpus):
    clips = [Clip(c.clip_id, c.captions, c.frames, None, {}) for c in tiny_corpus.splits["val"][:8]]
    corpus = Corpus("plain", "frames", {"train": clips, "val": clips})
    vocab = Vocab.build(corpus.all_captions("train"))
    p = preset("tiny")
    model = StarModel(ModelConfig.from_dict({**p.model.to_dict(), "vocab_size": len(vocab)}))
    figs = loss_figures(model, tensorize(clips, vocab, model.cfg), p.train, ("caption", "reconstruct"))
    assert set(figs) == {"caption", "reconstruct"}
    assert all(f["loss"] > 0 and f["figure"] == -f["loss"] for f in figs.values())
    again = loss_figures(model, tensorize(clips, vocab, model.cfg), p.train, ("caption",))
    assert again["caption"] == figs["caption"]  # the same pairs every validation: comparable figures


@pytest.mark.parametrize("task", ["caption", "paraphrase", "reconstruct", "sentence_to_video"])
def test_skipping_unused_layers_keeps_losses_and_gradients(task, tiny_corpus):
    """star_losses with a task's inputs and outputs = the full computation with the task's losses kept."""
    cfg_task = channels.get(task)
    vocab = Vocab.build(tiny_corpus.all_captions("train"))
    p = preset("tiny")
    torch.manual_seed(0)
    model = StarModel(ModelConfig.from_dict({**p.model.to_dict(), "vocab_size": len(vocab)}))
    batch = BatchStream(tensorize(tiny_corpus.splits["train"][:16], vocab, model.cfg), 8, 0).next()
    v, s = (torch.full((8,), float(x)) for x in cfg_task.mask)
    noise = torch.randn(8, model.cfg.latent_dim)

    def run(**kw) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        model.zero_grad()
        losses = select_losses(star_losses(model, batch, v, s, noise=noise, **kw), cfg_task.outputs)
        losses.pop("align", None)  # needs both encoders; baselines train without it
        sum(losses.values()).backward()
        grads = {n: q.grad.clone() for n, q in model.named_parameters() if q.grad is not None}
        return {k: float(x.detach()) for k, x in losses.items()}, grads

    full_losses, full_grads = run()
    lean_losses, lean_grads = run(inputs=cfg_task.inputs, outputs=cfg_task.outputs)
    assert lean_losses == pytest.approx(full_losses, rel=1e-5)
    assert set(lean_losses) == set(full_losses) and ("video" in lean_losses) == ("video" in cfg_task.outputs)
    for name, g in full_grads.items():
        if name in lean_grads:
            assert torch.allclose(g, lean_grads[name], atol=1e-6), name
        else:  # a layer the lean step skipped got no gradient from the full step either
            assert not g.abs().any(), name
