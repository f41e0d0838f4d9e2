"""The paper's metrics: BLEU@1-4 and METEOR from the coco-caption toolkit (METEOR runs on Java), and the MSE between
true and generated frames on the 0-255 scale (Tables 3 and 6)."""
from __future__ import annotations

import numpy as np


def caption_scores(references: dict[str, list[str]], hypotheses: dict[str, str],
                   meteor: bool = True) -> dict[str, float]:
    """BLEU@1-4 and METEOR over a corpus, tokenised by the coco-caption PTB tokenizer (needs Java)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": r} for r in refs] for k, refs in references.items()})
    res = tok.tokenize({k: [{"caption": hypotheses[k] or "<empty>"}] for k in references})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"BLEU@{i + 1}": float(b) for i, b in enumerate(bleu)}
    if meteor:
        scores["METEOR"] = meteor_score(gts, res)
    return scores


def meteor_score(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(gts, res)
    finally:
        # The wrapper only closes its Java subprocess in __del__; close it now so none outlives the run.
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()
        scorer.meteor_p.stdout.close()
        scorer.meteor_p.stderr.close()
    return float(score)


def frame_mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error per pixel on the 0-255 scale (inputs in [0, 1]), the paper's Tables 3 and 6."""
    return float(np.mean(((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) * 255.0) ** 2))
