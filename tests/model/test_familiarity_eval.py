"""`slr eval --ood`: the familiarity score's separation, calibrated as `slr export` calibrates it."""
from __future__ import annotations

from pathlib import Path


def test_eval_reports_the_flagged_share_per_group(tiny_run: Path, tiny_corpus) -> None:
    from model.checkpoint import load_checkpoint
    from model.evaluate import evaluate_familiarity
    from model.train import CHECKPOINT

    ck = load_checkpoint(tiny_run / CHECKPOINT)
    out = evaluate_familiarity(ck.model, ck.vocab, tiny_corpus, "test", per_kind=1)
    video = out["video"]
    assert video["calibration_clips"] == len(tiny_corpus.splits["val"])
    kinds = [k for k in video if k.startswith("out of domain: ")]
    assert len(kinds) == 7 and all(video[k]["n"] == 1 for k in kinds)
    assert video["out of domain"]["n"] == 7
    assert video["one object"]["n"] + video["two objects"]["n"] == video["synthetic test"]["n"]
    assert all(0.0 <= r["flagged"] <= 1.0 for r in video.values() if isinstance(r, dict))
    assert out["sentences"]["sentences of unknown words"]["flagged"] == 1.0
    assert out["sentences"]["synthetic test captions"]["flagged"] == 0.0
