"""Evaluation: BLEU@1-4 and METEOR (coco-caption toolkit), MSE on the 0-255 scale, and attribute
accuracy on the synthetic corpus (captions parsed back to colour / shape / motion; generated video read
by an analytic probe). One function per measurement; `evaluate_checkpoint` runs all four tasks."""
from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import ModelConfig
from core.familiarity import MIN_KNOWN_SHARE, Calibration, sentence_familiarity, video_signals
from core.frames import Box, crop_box, picture_box, prepare_clip
from core.tables import md_table
from core.vocab import UNK_ID, Vocab, pad_tokens, tokenize
from model.checkpoint import load_checkpoint
from model.data.attributes import attribute_accuracy, object_binding
from model.data.corpus import Clip, Corpus, has_truth
from model.data.synthetic import COLOUR_RGB, SHAPES, shape_sdf
from model.star import StarModel

EVAL_BATCH = 64


# ---------------------------------------------------------------- text metrics

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


# ---------------------------------------------------------------- video metrics

def frame_mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error per pixel on the 0-255 scale (inputs in [0, 1]), the paper's Tables 3 and 6."""
    return float(np.mean(((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) * 255.0) ** 2))


@dataclass
class Probe:
    colour: str | None
    motion: str | None
    shape: str | None = None


def _object_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels far from the background colour, the background being the median of the frame's border."""
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    bg = np.median(border, axis=0)
    return np.linalg.norm(frame - bg, axis=-1) > 0.25


def probe_video(frames: np.ndarray) -> Probe:
    """Read a (T, H, W, 3) clip in [0, 1] analytically: the object's dominant colour, and its motion
    from the track of its centroid and area (image y grows downwards)."""
    masks = np.stack([_object_mask(f) for f in frames])
    area = masks.sum(axis=(1, 2)).astype(np.float64)
    if (area > 0).sum() < 2:
        return Probe(None, None)
    pixels = frames[masks]
    rgb = np.median(pixels, axis=0) * 255.0
    colour = min(COLOUR_RGB, key=lambda c: float(np.linalg.norm(rgb - np.array(COLOUR_RGB[c]))))
    seen = np.flatnonzero(area > 0)
    ys, xs = np.indices(masks.shape[1:])
    cy = np.array([ys[masks[t]].mean() for t in seen])
    cx = np.array([xs[masks[t]].mean() for t in seen])
    return Probe(colour, _motion_of(cx, cy, area[seen], frames.shape[1], frames.shape[2]),
                 probe_shape(_colour_masks(frames, rgb / 255.0)))


def _colour_masks(frames: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """[T, H, W] pixels nearer the object's colour than half its distance from the background: the outline the
    shape is read from (the distance-from-background mask also takes in a noisy background's outliers)."""
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    background = np.median(border, axis=1)[:, None, None]  # T, 1, 1, 3
    reach = np.linalg.norm(rgb - background, axis=-1)
    return np.linalg.norm(frames - rgb, axis=-1) < reach / 2


def _shape_extent(shape: str, n: int = 401) -> tuple[float, float, float, float]:
    """A shape of radius 1's bounding box: (centre x, centre y, half-width, half-height)."""
    g = np.linspace(-2.0, 2.0, n, dtype=np.float32)
    x, y = np.meshgrid(g, g)
    inside = shape_sdf(shape, x, y, np.ones_like(x)) < 0
    xs, ys = x[inside], y[inside]
    return ((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, (xs.max() - xs.min()) / 2, (ys.max() - ys.min()) / 2)


_EXTENTS = {shape: _shape_extent(shape) for shape in SHAPES}
MIN_SHAPE_AREA = 12  # pixels: below this an object is a few pixels of any shape


def _shape_overlaps(mask: np.ndarray) -> np.ndarray | None:
    """Each shape's IoU with one frame's object mask, the shape drawn upright to fill the mask's bounding box; None
    when the object is too small to tell or touches the frame's edge (cut off, its box is not its shape's)."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if len(ys) < MIN_SHAPE_AREA or ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    gy, gx = np.mgrid[max(0, y0 - 2):min(h, y1 + 2), max(0, x0 - 2):min(w, x1 + 2)].astype(np.float32) + 0.5
    window = mask[max(0, y0 - 2):min(h, y1 + 2), max(0, x0 - 2):min(w, x1 + 2)]
    ious = []
    for shape in SHAPES:
        ex, ey, hx, hy = _EXTENTS[shape]
        r = ((x1 - x0) / 2 / hx + (y1 - y0) / 2 / hy) / 2
        cx, cy = (x0 + x1) / 2 - ex * r, (y0 + y1) / 2 - ey * r
        drawn = shape_sdf(shape, gx - cx, gy - cy, np.full_like(gx, r)) < 0
        ious.append((drawn & window).sum() / max(1, (drawn | window).sum()))
    return np.array(ious)


def probe_shape(masks: np.ndarray) -> str | None:
    """The shape whose upright outline best overlaps the object's mask, summed over the frames it can be read in
    (model/data/synthetic.py: SHAPES); None when no frame can be read."""
    overlaps = [o for o in (_shape_overlaps(m) for m in masks) if o is not None]
    return SHAPES[int(np.argmax(np.sum(overlaps, axis=0)))] if overlaps else None


def _motion_of(cx: np.ndarray, cy: np.ndarray, area: np.ndarray, height: int, width: int) -> str:
    dx, dy = (cx[-1] - cx[0]) / width, (cy[-1] - cy[0]) / height
    growth = area[-1] / max(area[0], 1.0)
    if max(abs(dx), abs(dy)) < 0.08:
        if growth > 1.4:
            return "grow"
        if growth < 1 / 1.4:
            return "shrink"
        return "bounce" if (cy.max() - cy.min()) / height > 0.12 else "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def contrast(frames: np.ndarray, colour: str) -> float:
    """How visible the object is: the 99.5th percentile of a pixel's distance from its frame's background (the
    median of the borders) over the asked colour's own distance from that background. Real clips score about
    1; a grey mean with a faint stain, the paper's "a little bit blur", about 0.2."""
    f = np.asarray(frames, np.float32)
    border = np.concatenate([f[:, 0], f[:, -1], f[:, :, 0], f[:, :, -1]], axis=1)  # T, N, 3
    background = np.median(border, axis=1)[:, None, None]  # T, 1, 1, 3
    reach = np.linalg.norm(np.array(COLOUR_RGB[colour], np.float32) / 255.0 - background, axis=-1).mean()
    return float(np.percentile(np.linalg.norm(f - background, axis=-1), 99.5) / max(float(reach), 1e-6))


def probe_hits(videos: Sequence[np.ndarray], truths: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per generated clip, whether the probe reads the colour, shape and motion it was asked for (bool [N] each,
    the outcomes a paired test compares: export/gate.py), and its contrast (float [N]); each clip inside its
    picture's box when it has one: a letterboxed clip's bars would pass for the background."""
    videos = [crop_box(v, t.get("frame_box")) for v, t in zip(videos, truths)]
    probes = [probe_video(v) for v in videos]
    return {
        **{a: np.asarray([getattr(p, a) == t.get(a) for p, t in zip(probes, truths)], dtype=bool)
           for a in PROBE_READINGS},
        "contrast": np.asarray([contrast(v, t["colour"]) for v, t in zip(videos, truths)], dtype=np.float64),
    }


def probe_accuracy(videos: Sequence[np.ndarray], truths: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of generated clips whose probed colour / shape / motion match the attributes they were asked for,
    and their mean contrast."""
    if not truths:
        return {}
    return {k: float(v.mean()) for k, v in probe_hits(videos, truths).items()}


def probe_report(pred: np.ndarray, true: np.ndarray, truths: Sequence[dict[str, Any]], rows: Sequence[int],
                 unseen: Sequence[int], pred_letterboxed: bool = True) -> dict[str, Any]:
    """The probe on generated clips (one-object clips; and those of held-out combinations), beside the same
    probe on the true clips as its ceiling. pred_letterboxed False: the generated clips fill the frame whatever
    the true clip's box (sentence-to-video: a sentence names no aspect ratio)."""
    full = [{k: v for k, v in t.items() if k != "frame_box"} for t in truths]

    def on(videos: np.ndarray, idx: Sequence[int], boxed: bool = True) -> dict[str, float]:
        return probe_accuracy([videos[i] for i in idx], [(truths if boxed else full)[i] for i in idx])

    held = [i for i in unseen if i in set(rows)]
    return {"probe": on(pred, rows, pred_letterboxed), "probe_unseen_combos": on(pred, held, pred_letterboxed),
            "probe_on_ground_truth": on(true, rows)}


# ---------------------------------------------------------------- running a model over a split

def _batches(items: Sequence[Any], size: int = EVAL_BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i: i + size]


def _video_tensor(clips: Sequence[Clip], model: StarModel) -> torch.Tensor:
    if model.cfg.video_input == "frames":
        return torch.from_numpy(np.stack([c.frames for c in clips])).float() / 255.0
    feats = [np.asarray(c.features, np.float32) for c in clips]
    return torch.from_numpy(np.stack([f[None] if f.ndim == 1 else f.mean(0, keepdims=True) for f in feats]))


def _token_tensors(sentences: Sequence[str], vocab: Vocab, max_words: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens, lengths = pad_tokens([vocab.encode(s, max_words) for s in sentences])
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


@torch.no_grad()
def caption_clips(model: StarModel, vocab: Vocab, clips: Sequence[Clip], beam_size: int = 1) -> list[str]:
    out: list[str] = []
    for chunk in _batches(clips):
        z = model.encode(video=_video_tensor(chunk, model)).mu
        out += [vocab.decode(ids) for ids in model.generate_sentences(z, beam_size)]
    return out


@torch.no_grad()
def paraphrase_sentences(model: StarModel, vocab: Vocab, sentences: Sequence[str], beam_size: int = 1) -> list[str]:
    out: list[str] = []
    for chunk in _batches(sentences):
        tokens, lengths = _token_tensors(chunk, vocab, model.cfg.max_words)
        z = model.encode(tokens=tokens, lengths=lengths).mu
        out += [vocab.decode(ids) for ids in model.generate_sentences(z, beam_size)]
    return out


@torch.no_grad()
def reconstruct_clips(model: StarModel, clips: Sequence[Clip]) -> np.ndarray:
    out = []
    for chunk in _batches(clips):
        video = _video_tensor(chunk, model)
        out.append(model.decode_video(model.encode(video=video).mu, video[:, 0]).numpy())
    return np.concatenate(out)


@torch.no_grad()
def sentences_to_video(model: StarModel, vocab: Vocab, sentences: Sequence[str]) -> np.ndarray:
    out = []
    for chunk in _batches(sentences):
        tokens, lengths = _token_tensors(chunk, vocab, model.cfg.max_words)
        out.append(model.decode_video(model.encode(tokens=tokens, lengths=lengths).mu).numpy())
    return np.concatenate(out)


def _true_frames(clips: Sequence[Clip]) -> np.ndarray:
    return np.stack([c.frames for c in clips]).astype(np.float32) / 255.0


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


def _single_object(clips: Sequence[Clip]) -> list[int]:
    return [i for i, c in enumerate(clips) if len(c.attributes.get("objects", [None])) == 1]


# ---------------------------------------------------------------- validation while training

FIGURE_ATTRIBUTES = ("colour", "shape", "motion")  # "all three" sits near 0 for long: a flat figure early on
PROBE_READINGS = ("colour", "shape", "motion")  # what the probe reads of a clip (contrast is not a share)
# The validation figure of the video tasks: colour and motion, as since quality-v5 (the shape reading joined later:
# a run's figures stay comparable with older runs').
FIGURE_PROBE = ("colour", "motion")


def _with_figure(scores: dict[str, float], keys: Sequence[str]) -> dict[str, float]:
    return {**scores, "figure": float(np.mean([scores[k] for k in keys]))}


def _probe_figures(model: StarModel, vocab: Vocab, clips: Sequence[Clip], task: str) -> dict[str, float]:
    """The video probe (colour, motion, contrast) and the MSE of one video task on the one-object clips."""
    one = [clips[i] for i in _single_object(clips)]
    if task == "reconstruct":
        pred, truths = reconstruct_clips(model, one), [c.attributes for c in one]
    else:  # a sentence names no aspect ratio: the clip it draws fills the frame (probe_report's rule)
        pred = sentences_to_video(model, vocab, [c.captions[0] for c in one])
        truths = [{k: v for k, v in c.attributes.items() if k != "frame_box"} for c in one]
    scores = {**probe_accuracy(list(pred), truths), "MSE": frame_mse(pred, _true_frames(one))}
    return _with_figure(scores, FIGURE_PROBE)


def validation_figures(model: StarModel, vocab: Vocab, clips: Sequence[Clip],
                       tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per task, what a training run is validated on (clips with attributes: the synthetic corpus), each with its
    "figure" in [0, 1], higher is better: caption and paraphrase attribute accuracy (the mean over colour, shape
    and motion); reconstruct and sentence-to-video the video probe (the mean over colour and motion, one-object
    clips) beside its contrast and the MSE. Tasks a model or the clips cannot do are left out."""
    model.eval()
    truths = [c.attributes for c in clips]
    has_video = model.video_decoder is not None and clips[0].frames is not None and bool(_single_object(clips))
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
        true = _true_frames(clips)
        single = _single_object(clips)
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
    from model.data.outside import load_outside_set, outside_accuracy

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
        result["reconstruct"] = probe_report(reconstruct_clips(model, clips), _true_frames(clips), truths, rows, [])
    return result


# ---------------------------------------------------------------- familiarity (core/familiarity.py)

CALIBRATION_CLIPS = 1000  # validation clips `slr export` calibrates on (cli/main.py: --calibration-clips)
# Sentences with no word of the model's vocabulary (other languages, keyboard mashing, another domain's words).
UNKNOWN_SENTENCES = ("bonjour le monde", "der hund bellt laut", "el gato come pescado", "lorem ipsum dolor sit amet",
                     "qwfp zxcv asdf", "ciao bella", "hej hur mar du", "xyzzy plugh", "konnichiwa sekai",
                     "obrigado amigo")


@torch.no_grad()
def rebuild(model: StarModel, video: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """The model's rebuilds of clips [N,T,H,W,3] in [0, 1], as the service computes them from the graphs: the video
    decoder from z = mu and the clip's first frame."""
    model.eval()
    parts: list[np.ndarray] = []
    for i in range(0, len(video), batch):
        v = torch.from_numpy(np.ascontiguousarray(video[i:i + batch], dtype=np.float32))
        parts.append(model.decode_video(model.encode(video=v).mu, v[:, 0]).numpy())
    return np.concatenate(parts)


def clip_boxes(clips: Sequence[Clip]) -> list[Box | None]:
    """Where each corpus clip's picture lies in the model's frame (letterboxed synthetic clips record it)."""
    return [tuple(c.attributes["frame_box"]) if c.attributes.get("frame_box") else None for c in clips]


def familiarity_calibration(model: StarModel, clips: Sequence[Clip] | None) -> Calibration | None:
    """The calibration from clips like the training data (the validation split). None for a model that cannot
    rebuild video (features input or no video output) or when no clips are given."""
    if not clips or model.cfg.video_input != "frames" or model.video_decoder is None:
        return None
    video = _true_frames(clips)
    return Calibration.fit(video, rebuild(model, video), clip_boxes(clips), f"{len(clips)} validation clips")


def familiarity_scores(model: StarModel, calibration: Calibration, video: np.ndarray,
                       boxes: Sequence[Box | None]) -> np.ndarray:
    return calibration.familiarity(video_signals(video, rebuild(model, video), boxes))


def _flagged(scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {"n": int(len(scores)), "flagged": float(np.mean(scores < threshold)) if len(scores) else 0.0}


def evaluate_familiarity(model: StarModel, vocab: Vocab, corpus: Corpus, split: str = "test",
                         outside: str | Path | None = None, per_kind: int = 8) -> dict[str, Any]:
    """The familiarity score's separation: the share of inputs flagged unfamiliar on clips like the training data
    (the split, by number of objects; the outside set's real files) and on the out-of-domain set (model/data/ood.py,
    by kind); sentences: the split's captions and sentences of unknown words. Calibrated as `slr export` does."""
    from model.data.ood import ood_set

    cfg = model.cfg
    calibration = familiarity_calibration(model, corpus.splits["val"][:CALIBRATION_CLIPS])
    out: dict[str, Any] = {}
    if calibration is not None:
        def scores(video: np.ndarray, boxes: Sequence[Box | None]) -> np.ndarray:
            return familiarity_scores(model, calibration, video, boxes)

        clips = corpus.splits[split]
        single = set(_single_object(clips))
        test = scores(_true_frames(clips), clip_boxes(clips))
        video: dict[str, Any] = {
            "threshold": calibration.threshold, "calibration_clips": calibration.clips,
            f"synthetic {split}": _flagged(test, calibration.threshold),
            "one object": _flagged(test[sorted(single)], calibration.threshold),
            "two objects": _flagged(test[[i for i in range(len(clips)) if i not in single]], calibration.threshold)}
        if outside is not None:
            from model.data.outside import decode_clip_file, load_outside_set

            pairs = load_outside_set(outside)
            files = np.stack([decode_clip_file(p, cfg.frames, cfg.height, cfg.width, cfg.frame_fit) for p, _ in pairs])
            video["outside set"] = _flagged(scores(files, [outside_box(label, cfg) for _, label in pairs]),
                                            calibration.threshold)
        ood = ood_set(per_kind)
        ood_scores = scores(np.stack([prepare_clip(c.frames, cfg.frames, cfg.height, cfg.width, cfg.frame_fit)
                                      for c in ood]),
                            [picture_box(*c.frames.shape[1:3], cfg.height, cfg.width, cfg.frame_fit) for c in ood])
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


def outside_box(label: dict[str, Any], cfg: ModelConfig) -> Box | None:
    """Where an outside file's picture lies in the model's frame; None when it fills it."""
    w, h = (int(v) for v in label["size"].split("x"))
    return picture_box(h, w, cfg.height, cfg.width, cfg.frame_fit)


def outside_truth(label: dict[str, Any], cfg: ModelConfig) -> dict[str, Any]:
    """An outside clip's label with the box its picture takes in the model's frame (letterboxing models)."""
    box = outside_box(label, cfg)
    return {**label, "frame_box": list(box)} if box else label


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


def caption_sheet(checkpoint: str | Path, clips: Sequence[Clip], out: str | Path, beam_size: int = 1) -> str:
    """A contact sheet of clips (the frames the model reads) with the model's caption and the first reference
    beside each; returns the line to print."""
    from core.sheet import save_sheet, sheet

    ck = load_checkpoint(checkpoint)
    hyps = caption_clips(ck.model, ck.vocab, clips, beam_size)
    rows = [(f"{c.clip_id}\nmodel: {_wrap(h)}\nreference: {_wrap(c.captions[0])}",
             np.asarray(c.frames, dtype=np.float32) / 255.0) for c, h in zip(clips, hyps)]
    return save_sheet(sheet(rows), out)


SHEET_LABEL_CHARS = 46  # characters per label line at the sheet's label width


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, SHEET_LABEL_CHARS)) or "(nothing)"


# ---------------------------------------------------------------- reports

def markdown_table(results: dict[str, Any]) -> str:
    """The paper's layout: METEOR and BLEU@1-4 for the sentence tasks, MSE for the video tasks."""
    lines = [f"Split `{results.get('split')}`, {results.get('clips')} clips, beam {results.get('beam_size')}.", ""]
    text_tasks = [t for t in ("caption", "paraphrase") if t in results]
    if text_tasks:
        rows: list[list[str]] = []
        for t in text_tasks:
            r, a = results[t], results[t].get("attributes", {})
            cells = [r.get("METEOR"), *(r.get(f"BLEU@{i}") for i in range(1, 5)),
                     a.get("colour"), a.get("shape"), a.get("motion"), a.get("all")]
            rows.append([t, *("-" if v is None else f"{100 * v:.1f}" for v in cells)])
        for key, label in (("attributes_unseen_combos", "unseen combinations"),
                           ("attributes_one_object", "one object"), ("attributes_two_objects", "two objects"),
                           ("attributes_letterboxed", "other aspect ratios, letterboxed")):
            group = results.get("caption", {}).get(key)
            if group:
                rows.append([f"caption, {label}", "", "", "", "", "", *_shares(group)])
        lines += md_table(["task", "METEOR", "BLEU@1", "BLEU@2", "BLEU@3", "BLEU@4", *ATTRIBUTE_HEAD], rows)
        binding = results.get("caption", {}).get("binding_two_objects")
        if binding:
            lines += ["", (f"Two-object clips ({binding['n']}), each clause of the caption read on its own: the first "
                           f"clause names all three attributes of one of the objects in {100 * binding['first']:.1f}%, "
                           f"both objects are named right in {100 * binding['both']:.1f}%.")]
        lines.append("")
    video_tasks = [t for t in ("reconstruct", "sentence_to_video") if t in results]
    if video_tasks:
        rows = []
        for t in video_tasks:
            for label, key in (("", "probe"), (", unseen combinations", "probe_unseen_combos"),
                               (", ground truth (the ceiling)", "probe_on_ground_truth")):
                p = results[t].get(key)
                if key != "probe" and not p:
                    continue
                mse = f"{results[t]['MSE']:.1f}" if key == "probe" else ""
                cells = [mse] + [f"{100 * p[k]:.1f}" if p and k in p else "-" for k in PROBE_READINGS]
                cells.append(f"{p['contrast']:.2f}" if p and "contrast" in p else "-")
                rows.append([f"{t}{label}", *cells])
        lines += md_table(["task", "MSE (0-255)", *PROBE_HEAD], rows)
    if "outside" in results:
        lines += ["", "Caption accuracy on the outside test set (files drawn by ffmpeg / Pillow, real encoders):", ""]
        out = results["outside"]
        groups = [("overall (one object)", out["overall"])] + [
            (g, r) for kind in ("by_source", "by_container", "by_motion", "by_aspect", "by_background")
            for g, r in sorted(out.get(kind, {}).items())]
        if "two" in out.get("by_objects", {}):  # its "one" group is the overall row
            groups.append(("two objects, the described one", out["by_objects"]["two"]))
        lines += md_table(["group", "clips", *ATTRIBUTE_HEAD], [[group, r["n"], *_shares(r)] for group, r in groups])
        binding = out.get("binding_two_objects")
        if binding:
            lines += ["", (f"Outside two-object files ({binding['n']}), each clause read on its own: the first clause "
                           f"names all three attributes of one of the objects in {100 * binding['first']:.1f}%, both "
                           f"objects in {100 * binding['both']:.1f}%.")]
        rec = out.get("reconstruct")
        if rec:
            lines += ["", "Reconstruct on the outside test set (the video probe):", ""]
            lines += md_table(["clips", *PROBE_HEAD], [
                [label, *(f"{100 * rec[key][k]:.1f}" if k in rec[key] else "-" for k in PROBE_READINGS),
                 f"{rec[key]['contrast']:.2f}"]
                for label, key in (("reconstructed", "probe"),
                                   ("the decoded files (the ceiling)", "probe_on_ground_truth"))])
    if "familiarity" in results:
        lines += ["", "Familiarity (`slr eval --ood`; core/familiarity.py): the share of inputs flagged unfamiliar.",
                  ""]
        lines += md_table(["inputs", "n", "flagged"], [
            [f"{medium}: {group}", r["n"], f"{100 * r['flagged']:.1f}%"]
            for medium in ("video", "sentences") for group, r in results["familiarity"].get(medium, {}).items()
            if isinstance(r, dict)])
    return "\n".join(lines) + "\n"


ATTRIBUTE_HEAD = ("colour", "shape", "motion", "all three")
PROBE_HEAD = ("probe colour", "probe shape", "probe motion", "contrast")


def _shares(accuracy: dict[str, float]) -> list[str]:
    """Colour, shape, motion and all three, in percent."""
    return [f"{100 * accuracy[a]:.1f}" for a in ("colour", "shape", "motion", "all")]


def write_report(results: dict[str, Any], out_dir: str | Path, name: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{name}.json", out / f"{name}.md"
    js.write_text(json.dumps(results, indent=2))
    md.write_text(markdown_table(results))
    return js, md
