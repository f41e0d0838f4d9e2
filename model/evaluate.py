"""Evaluation of a star model on a corpus: every task on one split (text metrics, MSE, attribute accuracy on the
synthetic corpus with captions parsed back to colour / shape / motion, the video probe), the figures a training run
is validated on, the outside test set and the familiarity score's separation; `evaluate_checkpoint` runs them for
`slr eval`. Its parts: model/metrics.py (BLEU, METEOR, MSE), model/probes.py (the video probe), model/inference.py
(the model run over a split), model/familiarity.py (the calibration), model/reports.py (tables, contact sheet)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.familiarity import MIN_KNOWN_SHARE, sentence_familiarity
from core.frames import Box
from core.vocab import UNK_ID, Vocab, tokenize
from model.checkpoint import load_checkpoint
from model.data.attributes import attribute_accuracy, object_binding
from model.data.corpus import Clip, Corpus, has_truth
from model.familiarity import CALIBRATION_CLIPS, clip_boxes, familiarity_calibration, familiarity_scores
from model.inference import (
    caption_clips,
    paraphrase_sentences,
    reconstruct_clips,
    sentences_to_video,
    single_object,
    true_frames,
)
from model.metrics import caption_scores, frame_mse
from model.probes import probe_accuracy, probe_report
from model.star import StarModel

# Caption accuracy per kind of clip: one object or two (binding: issue 18), drawn at the model's own aspect ratio or
# at another and letterboxed.
CLIP_GROUPS: dict[str, Any] = {
    "attributes_one_object": lambda t: len(t.get("objects", [None])) == 1,
    "attributes_two_objects": lambda t: len(t.get("objects", [None])) == 2,
    "attributes_letterboxed": lambda t: "frame_box" in t,
}


def _attribute_groups(hyps: Sequence[str], truths: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for key, member in CLIP_GROUPS.items():
        idx = [i for i, t in enumerate(truths) if member(t)]
        if idx:
            out[key] = {**attribute_accuracy([hyps[i] for i in idx], [truths[i] for i in idx]), "n": len(idx)}
    return out


# ---------------------------------------------------------------- validation while training

FIGURE_ATTRIBUTES = ("colour", "shape", "motion")  # "all three" sits near 0 for long: a flat figure early on
# The validation figure of the video tasks: colour and motion, as since quality-v5 (the shape reading joined later:
# a run's figures stay comparable with older runs').
FIGURE_PROBE = ("colour", "motion")


def _with_figure(scores: dict[str, float], keys: Sequence[str]) -> dict[str, float]:
    return {**scores, "figure": float(np.mean([scores[k] for k in keys]))}


def _probe_figures(model: StarModel, vocab: Vocab, clips: Sequence[Clip], task: str) -> dict[str, float]:
    """The video probe (colour, motion, contrast) and the MSE of one video task on the one-object clips."""
    one = [clips[i] for i in single_object(clips)]
    if task == "reconstruct":
        pred, truths = reconstruct_clips(model, one), [c.attributes for c in one]
    else:  # a sentence names no aspect ratio: the clip it draws fills the frame (probe_report's rule)
        pred = sentences_to_video(model, vocab, [c.captions[0] for c in one])
        truths = [{k: v for k, v in c.attributes.items() if k != "frame_box"} for c in one]
    scores = {**probe_accuracy(list(pred), truths), "MSE": frame_mse(pred, true_frames(one))}
    return _with_figure(scores, FIGURE_PROBE)


def validation_figures(model: StarModel, vocab: Vocab, clips: Sequence[Clip],
                       tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per task, what a training run is validated on (clips with attributes: the synthetic corpus), each with its
    "figure" in [0, 1], higher is better: caption and paraphrase attribute accuracy (the mean over colour, shape
    and motion); reconstruct and sentence-to-video the video probe (the mean over colour and motion, one-object
    clips) beside its contrast and the MSE. Tasks a model or the clips cannot do are left out."""
    model.eval()
    truths = [c.attributes for c in clips]
    has_video = model.video_decoder is not None and clips[0].frames is not None and bool(single_object(clips))
    out: dict[str, dict[str, float]] = {}
    for task in tasks:
        if task == "caption":
            out[task] = _with_figure(attribute_accuracy(caption_clips(model, vocab, clips), truths), FIGURE_ATTRIBUTES)
        elif task == "paraphrase":
            hyps = paraphrase_sentences(model, vocab, [c.captions[0] for c in clips])
            out[task] = _with_figure(attribute_accuracy(hyps, truths), FIGURE_ATTRIBUTES)
        elif task in ("reconstruct", "sentence_to_video") and has_video:
            out[task] = _probe_figures(model, vocab, clips, task)
    return out


def evaluate_tasks(model: StarModel, vocab: Vocab, clips: Sequence[Clip], beam_size: int = 1,
                   meteor: bool = True, tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Every task a model supports, on one split: text metrics, MSE, attribute and probe accuracy."""
    model.eval()
    tasks = tasks or ["caption", "paraphrase", "reconstruct", "sentence_to_video"]
    synthetic = bool(clips and has_truth(clips[0]))
    truths = [c.attributes for c in clips]
    unseen = [i for i, c in enumerate(clips) if c.attributes.get("unseen_combo")]
    results: dict[str, Any] = {"clips": len(clips)}
    if "caption" in tasks:
        hyps = caption_clips(model, vocab, clips, beam_size)
        refs = {c.clip_id: c.captions for c in clips}
        r: dict[str, Any] = caption_scores(refs, dict(zip(refs, hyps)), meteor)
        if synthetic:
            r["attributes"] = attribute_accuracy(hyps, truths)
            r["attributes_unseen_combos"] = attribute_accuracy([hyps[i] for i in unseen], [truths[i] for i in unseen])
            r.update(_attribute_groups(hyps, truths))
            r["binding_two_objects"] = object_binding(hyps, truths)
        r["samples"] = [{"clip": c.clip_id, "caption": h, "reference": c.captions[0]} for c, h in zip(clips[:5], hyps)]
        results["caption"] = r
    if "paraphrase" in tasks:
        # Input: each clip's first description; references: its other descriptions (intra-media matching).
        inputs = [c.captions[0] for c in clips]
        hyps = paraphrase_sentences(model, vocab, inputs, beam_size)
        refs = {c.clip_id: (c.captions[1:] or c.captions) for c in clips}
        r = caption_scores(refs, dict(zip(refs, hyps)), meteor)
        if synthetic:
            r["attributes"] = attribute_accuracy(hyps, truths)
        r["samples"] = [{"input": s, "paraphrase": h} for s, h in zip(inputs[:5], hyps)]
        results["paraphrase"] = r
    if model.video_decoder is not None and clips and clips[0].frames is not None:
        true = true_frames(clips)
        single = single_object(clips)
        if "reconstruct" in tasks:
            pred = reconstruct_clips(model, clips)
            results["reconstruct"] = {"MSE": frame_mse(pred, true)}
            if synthetic:
                results["reconstruct"].update(probe_report(pred, true, truths, single, unseen))
        if "sentence_to_video" in tasks:
            pred = sentences_to_video(model, vocab, [c.captions[0] for c in clips])
            results["sentence_to_video"] = {"MSE": frame_mse(pred, true)}
            if synthetic:
                results["sentence_to_video"].update(probe_report(pred, true, truths, single, unseen, False))
    return results


def evaluate_outside(model: StarModel, vocab: Vocab, directory: str | Path, beam_size: int = 1) -> dict[str, Any]:
    """Caption accuracy on the outside test set: real files drawn by ffmpeg and Pillow, decoded by the
    service's own decode path (model/data/outside.py); and, for models that draw, the video probe on their
    reconstructions beside the same probe on the decoded files."""
    from model.data.outside import load_outside_set, outside_accuracy, outside_truth

    cfg = model.cfg
    clips: list[Clip] = []

    def caption(frames: np.ndarray) -> str:
        clips.append(Clip("outside", [], np.rint(frames * 255.0).astype(np.uint8), None, {}))
        return caption_clips(model, vocab, clips[-1:], beam_size)[0]

    labelled = load_outside_set(directory)
    result = outside_accuracy(caption, labelled, cfg.frames, cfg.height, cfg.width, fit=cfg.frame_fit)
    if model.video_decoder is not None and clips:
        truths = [outside_truth(label, cfg) for _, label in labelled]
        rows = [i for i, (_, label) in enumerate(labelled) if not label.get("objects")]  # the probe reads one
        result["reconstruct"] = probe_report(reconstruct_clips(model, clips), true_frames(clips), truths, rows, [])
    return result


# ---------------------------------------------------------------- familiarity (calibrated by model/familiarity.py)

# Sentences with no word of the model's vocabulary (other languages, keyboard mashing, another domain's words).
UNKNOWN_SENTENCES = ("bonjour le monde", "der hund bellt laut", "el gato come pescado", "lorem ipsum dolor sit amet",
                     "qwfp zxcv asdf", "ciao bella", "hej hur mar du", "xyzzy plugh", "konnichiwa sekai",
                     "obrigado amigo")


def _flagged(scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {"n": int(len(scores)), "flagged": float(np.mean(scores < threshold)) if len(scores) else 0.0}


def evaluate_familiarity(model: StarModel, vocab: Vocab, corpus: Corpus, split: str = "test",
                         outside: str | Path | None = None, per_kind: int = 8) -> dict[str, Any]:
    """The familiarity score's separation: the share of inputs flagged unfamiliar on clips like the training data
    (the split, by number of objects; the outside set's real files) and on the out-of-domain set (model/data/ood.py,
    by kind); sentences: the split's captions and sentences of unknown words. Calibrated as `slr export` does."""
    from model.data.ood import model_input, ood_set

    cfg = model.cfg
    calibration = familiarity_calibration(model, corpus.splits["val"][:CALIBRATION_CLIPS])
    out: dict[str, Any] = {}
    if calibration is not None:
        def scores(video: np.ndarray, boxes: Sequence[Box | None]) -> np.ndarray:
            return familiarity_scores(model, calibration, video, boxes)

        clips = corpus.splits[split]
        single = set(single_object(clips))
        test = scores(true_frames(clips), clip_boxes(clips))
        video: dict[str, Any] = {
            "threshold": calibration.threshold, "calibration_clips": calibration.clips,
            f"synthetic {split}": _flagged(test, calibration.threshold),
            "one object": _flagged(test[sorted(single)], calibration.threshold),
            "two objects": _flagged(test[[i for i in range(len(clips)) if i not in single]], calibration.threshold)}
        if outside is not None:
            from model.data.outside import decode_clip_file, load_outside_set, outside_box

            pairs = load_outside_set(outside)
            files = np.stack([decode_clip_file(p, cfg.frames, cfg.height, cfg.width, cfg.frame_fit) for p, _ in pairs])
            video["outside set"] = _flagged(scores(files, [outside_box(label, cfg) for _, label in pairs]),
                                            calibration.threshold)
        ood = ood_set(per_kind)
        ood_scores = scores(*model_input(ood, cfg))
        video["out of domain"] = _flagged(ood_scores, calibration.threshold)
        for kind in dict.fromkeys(c.kind for c in ood):
            video[f"out of domain: {kind}"] = _flagged(ood_scores[[c.kind == kind for c in ood]], calibration.threshold)
        out["video"] = video
    captions = [c.captions[0] for c in corpus.splits[split]]

    def sentence_scores(sentences: Sequence[str]) -> np.ndarray:
        return np.array([sentence_familiarity([vocab.id(w) for w in tokenize(s)], UNK_ID) for s in sentences])

    out["sentences"] = {f"synthetic {split} captions": _flagged(sentence_scores(captions), MIN_KNOWN_SHARE),
                        "sentences of unknown words": _flagged(sentence_scores(UNKNOWN_SENTENCES), MIN_KNOWN_SHARE)}
    return out


def evaluate_checkpoint(checkpoint: str | Path, corpus: Corpus, split: str = "test", beam_size: int = 1,
                        max_clips: int | None = None, meteor: bool = True,
                        outside: str | Path | None = None, ood: bool = False) -> dict[str, Any]:
    ck = load_checkpoint(checkpoint)
    clips = corpus.splits[split][:max_clips] if max_clips else corpus.splits[split]
    results = evaluate_tasks(ck.model, ck.vocab, clips, beam_size, meteor)
    if outside is not None:
        results["outside"] = evaluate_outside(ck.model, ck.vocab, outside, beam_size)
    if ood:
        results["familiarity"] = evaluate_familiarity(ck.model, ck.vocab, corpus, split, outside)
    results.update({"split": split, "beam_size": beam_size, "checkpoint_sha256": ck.sha256})
    return results
