"""Refit an exported version's sentence decoder (captions and paraphrases) on its frozen encoders, from its own ONNX
graphs: the paper's task fine-tuning of the decoder the captions come from, for a version whose checkpoint is not
at hand. Every training clip's latent comes from the version's video encoder graph and every caption's from its
sentence encoder graph (export/refit.py: encoder_latents); the decoder starts from its two graphs' weights and
learns from z = mu, as the service decodes (in training it read posterior draws: the noise it learnt to ignore is
never there when it serves). Rows caption a clip (rc.video_share) or paraphrase one of its captions, the target
another of its captions, as in training; the validation split's captions (colour, shape, motion, all three, the
two-object first clause) and paraphrases pick the best weights. Encoders and the video decoder stay byte-identical.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor

from core.config import TrainConfig
from core.graph_contract import SENTENCE_GRAPHS, SENTENCE_INIT, SENTENCE_STEP
from core.vocab import BOS_ID
from export.graph_model import GraphModel
from export.parity import FP32_ATOL, max_abs_diff, open_cpu_session
from export.refit import encoder_latents, publish_refit, train_keeping_best
from model.data.attributes import attribute_hits, binding_hits
from model.data.corpus import Clip
from model.data.dataset import caption_tensors, decoder_io, drop_words
from model.inference import true_frames
from model.losses import sentence_loss
from model.star import SentenceDecoder, StarModel

GRAPH_PREFIX = "decoder."  # the decoder's weights in its graphs (export/graphs.py: SentenceInitGraph, -StepGraph)
ONNX_TO_TORCH_GATES = (0, 2, 3, 1)  # ONNX's LSTM stacks its gates i, o, f, c; PyTorch's i, f, g(c), o


@dataclass(frozen=True)
class SentenceRefitConfig:
    steps: int = 3000
    lr: float = 1e-3  # decayed linearly to 0
    batch_size: int = 64
    video_share: float = 0.75  # rows that caption a clip; the others paraphrase one of its captions
    eval_every: int = 250
    seed: int = 0


def restack_gates(a: np.ndarray, hidden: int, order: Sequence[int]) -> Tensor:
    """An ONNX recurrent layer's gate blocks (each `hidden` rows of `a`) restacked in PyTorch's `order`."""
    return torch.from_numpy(np.concatenate([a[k * hidden:(k + 1) * hidden] for k in order]).copy())


def torch_lstm_weights(w: np.ndarray, r: np.ndarray, b: np.ndarray) -> dict[str, Tensor]:
    """An ONNX LSTM's W [1, 4H, I], R [1, 4H, H] and B [1, 8H] as nn.LSTM's layer-0 parameters."""
    hidden = r.shape[-1]

    def gates(a: np.ndarray) -> Tensor:
        return restack_gates(a, hidden, ONNX_TO_TORCH_GATES)

    return {"lstm.weight_ih_l0": gates(w[0]), "lstm.weight_hh_l0": gates(r[0]),
            "lstm.bias_ih_l0": gates(b[0, :4 * hidden]), "lstm.bias_hh_l0": gates(b[0, 4 * hidden:])}


def sentence_decoder_from_graphs(model: GraphModel) -> SentenceDecoder:
    """The version's sentence decoder with its two graphs' weights (the LSTM's from the step graph's LSTM node)."""
    cfg = model.manifest.model
    weights: dict[str, Tensor] = {}
    for name in SENTENCE_GRAPHS:
        graph = onnx.load(str(model.directory / model.manifest.graphs[name].file)).graph
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        weights.update({k.removeprefix(GRAPH_PREFIX): torch.from_numpy(v.copy())
                        for k, v in arrays.items() if k.startswith(GRAPH_PREFIX)})
        for node in graph.node:
            if node.op_type == "LSTM":
                w, r, b = (arrays[i] for i in node.input[1:4])
                weights.update(torch_lstm_weights(w, r, b))
    decoder = SentenceDecoder(cfg)
    decoder.load_state_dict(weights)  # strict: a graph that is not this decoder fails here, not in training
    return decoder


@torch.no_grad()
def sentence_figures(star: StarModel, vocab: Any, v_mu: Tensor, s_mu: Tensor, truths: Sequence[dict[str, Any]]
                     ) -> dict[str, float]:
    """Greedy captions of the clips (from their video mu) and paraphrases of their first captions (from their
    sentence mu), scored against the clips' attributes, as the release gate scores them."""
    star.eval()
    captions = [vocab.decode(ids) for ids in star.generate_sentences(v_mu)]
    paraphrases = [vocab.decode(ids) for ids in star.generate_sentences(s_mu)]
    star.train()
    hits, para = attribute_hits(captions, truths), attribute_hits(paraphrases, truths)
    figures = {f"caption.{k}": float(np.mean(hits[k])) for k in ("colour", "shape", "motion", "all")}
    figures["two_objects.first_clause"] = float(np.mean(binding_hits(captions, truths)["first"]))
    figures["paraphrase.all"] = float(np.mean(para["all"]))
    return figures


def refit_sentence(model: GraphModel, train: Sequence[Clip], val: Sequence[Clip], tc: TrainConfig,
                   rc: SentenceRefitConfig, progress: bool = True) -> tuple[StarModel, dict[str, Any]]:
    """Train the sentence decoder on the version's latents; the best validation weights (mean of every figure)."""
    torch.manual_seed(rc.seed)
    cfg = model.manifest.model
    star = StarModel(cfg)  # its encoders are never run: the latents come from the version's graphs
    star.sentence_decoder = sentence_decoder_from_graphs(model)
    words, lengths, n_captions = caption_tensors(list(train), model.vocab, cfg)
    latents = encoder_latents(model, train, progress)
    check_v = torch.from_numpy(model.video_mu(true_frames(val)))
    check_s = torch.from_numpy(model.sentence_mu([c.captions[0] for c in val]))
    truths = [c.attributes for c in val]
    decoder = star.sentence_decoder
    gen = torch.Generator().manual_seed(rc.seed)

    def loss_at() -> Tensor:
        idx = torch.randint(0, len(train), (rc.batch_size,), generator=gen)
        slot_in = (torch.rand(rc.batch_size, generator=gen) * n_captions[idx]).long()
        slot_out = (torch.rand(rc.batch_size, generator=gen) * n_captions[idx]).long()
        video = (torch.rand(rc.batch_size, generator=gen) < rc.video_share)[:, None]
        z = torch.where(video, latents.v_mu[idx], latents.s_mu[idx, slot_in])
        target_in, target_out = decoder_io(words[idx, slot_out], lengths[idx, slot_out])
        target_in = drop_words(target_in, tc.word_dropout, gen) if tc.word_dropout else target_in
        return sentence_loss(decoder(z, target_in), target_out)

    best_step, history = train_keeping_best(
        decoder, rc.steps, rc.lr, tc.grad_clip, rc.eval_every, loss_at,
        lambda: sentence_figures(star, model.vocab, check_v, check_s, truths), "refit sentence decoder",
        "two_objects.first_clause", progress, tc.precision)
    star.eval()
    return star, {**dataclasses.asdict(rc), "precision": tc.precision, "best_step": best_step,
                  "train_clips": len(train), "validation_clips": len(val), "validation": history}


@torch.no_grad()
def sentence_parity(decoder: SentenceDecoder, staging: Path, files: dict[str, str], z: Tensor) -> float:
    """Largest |ONNX - PyTorch| of the written graphs: the state from z, and the first word's step from it."""
    init, step = (open_cpu_session(staging / files[name]) for name in (SENTENCE_INIT, SENTENCE_STEP))
    state = decoder.init_state(z)
    bos = torch.full((len(z),), BOS_ID, dtype=torch.long)
    want_step = decoder.step(bos, *state)
    got_init = init.run(["h", "c", "z_state"], {"z": z.numpy()})
    got_step = step.run(["logprobs", "h_out", "c_out"], {"token": bos.numpy(), "h": state[0].numpy(),
                                                          "c": state[1].numpy(), "z_state": state[2].numpy()})
    return max(max_abs_diff([t.numpy() for t in state], got_init),
               max_abs_diff([t.numpy() for t in want_step], got_step))


def refit_sentence_version(root: Path, base_version: str | None, version: str, train: Sequence[Clip],
                           val: Sequence[Clip], tc: TrainConfig, rc: SentenceRefitConfig, progress: bool = True,
                           atol: float = FP32_ATOL) -> tuple[Path, dict[str, Any]]:
    """The refitted decoder's two graphs in a copy of the base version, published beside it (latest untouched)."""
    base = GraphModel.open(root, base_version)
    if base.manifest.model.video_input != "frames" or not all(g in base.manifest.graphs for g in SENTENCE_GRAPHS):
        raise ValueError(f"{base.version} has no frame encoder and sentence decoder to refit")
    star, record = refit_sentence(base, train, val, tc, rc, progress)
    z = torch.from_numpy(base.video_mu(true_frames(list(val[:16]))))
    files = {name: base.manifest.graphs[name].file for name in SENTENCE_GRAPHS}

    def parity(staging: Path) -> float:
        return sentence_parity(star.sentence_decoder, staging, files, z)

    return publish_refit(root, base, version, star, SENTENCE_GRAPHS, parity, record, atol), record

