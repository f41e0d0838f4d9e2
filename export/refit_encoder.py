"""Refit an exported version's video encoder to look past backgrounds its corpus never drew, from its own ONNX graphs,
by distillation: the version's encoder (frozen, the teacher) reads a scene over a background of the corpus' kind; its
copy (the student) learns to give the same latent for the same scene over a background of any colour (saturated and
dark ones included: model/data/shapes.py vivid_background), and for every training clip as it is. Every decoder reads
the latent as before, so no decoder is retrained: captions, sentence-to-video and the familiarity rebuild stay the
version's graphs byte for byte; only the two graphs that read video (encoder_v, encoder_vs) are written anew. With a
caption weight, the version's own caption decoder (frozen) also reads the student's latent of each training clip
against one of its captions: the paper's task loss, reaching the encoder alone.

The validation split's captions (as the version's own caption graphs read the student's latents) and the captions of
the same kind of scenes over other backgrounds pick the best weights."""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn
from tqdm import tqdm

from core.config import ModelConfig, TrainConfig
from core.graph_contract import ENCODER_V, ENCODER_VS
from core.vocab import pad_tokens
from export.graph_model import GraphModel
from export.parity import FP32_ATOL, max_abs_diff, open_cpu_session
from export.refit import publish_refit, train_keeping_best
from export.refit_sentence import restack_gates, sentence_decoder_from_graphs, torch_lstm_weights
from model.data.attributes import attribute_hits, binding_hits
from model.data.corpus import Clip
from model.data.dataset import caption_tensors, decoder_io
from model.data.synthetic import CANVAS_ASPECTS, background_pair
from model.inference import true_frames
from model.losses import sentence_loss
from model.star import FrameEncoder, StarModel

ONNX_TO_TORCH_GRU_GATES = (1, 0, 2)  # ONNX's GRU stacks its gates z, r, h; PyTorch's r, z, n
KEEP_PREFIX = "model."  # the encoders' named weights in the graph (export/graphs.py: EncoderGraph)


@dataclass(frozen=True)
class EncoderRefitConfig:
    steps: int = 3000
    lr: float = 3e-4  # decayed linearly to 0: the student starts where the teacher is
    batch_size: int = 32
    other_share: float = 0.5  # rows whose scene is over a background of any colour; the others a training clip as is
    pairs: int = 6000  # scenes drawn twice before training, at most one per training clip (the rows above draw them)
    check_pairs: int = 400  # such scenes, from their own stream, in every validation
    aspect_share: float = 0.3  # scenes letterboxed from another aspect ratio (the quality corpus draws 0.25)
    sigma_weight: float = 0.1  # the log sigma's share of the loss beside mu's
    # The version's own caption decoder (frozen) reading the student's mu of a training clip as it is, against one of
    # its captions: the paper's task loss, reaching the encoder alone. 0: distillation only.
    caption_weight: float = 0.0
    eval_every: int = 500
    seed: int = 0


def torch_gru_weights(w: np.ndarray, r: np.ndarray, b: np.ndarray) -> dict[str, Tensor]:
    """A bidirectional ONNX GRU's W [2, 3H, I], R [2, 3H, H] and B [2, 6H] as nn.GRU's layer-0 parameters."""
    hidden = r.shape[-1]

    def gates(a: np.ndarray) -> Tensor:
        return restack_gates(a, hidden, ONNX_TO_TORCH_GRU_GATES)

    out: dict[str, Tensor] = {}
    for d, suffix in enumerate(("", "_reverse")):
        out.update({f"gru.weight_ih_l0{suffix}": gates(w[d]), f"gru.weight_hh_l0{suffix}": gates(r[d]),
                    f"gru.bias_ih_l0{suffix}": gates(b[d, :3 * hidden]),
                    f"gru.bias_hh_l0{suffix}": gates(b[d, 3 * hidden:])})
    return out


def fold_batch_norms(encoder: FrameEncoder) -> None:
    """The frame encoder's batch norms as identities: an exported graph carries them folded into its convolutions
    (and keeping them out of training keeps the student's statistics the teacher's)."""
    encoder.cnn = nn.Sequential(*(nn.Identity() if isinstance(m, nn.BatchNorm2d) else m for m in encoder.cnn))


def encoders_from_graph(model: GraphModel) -> StarModel:
    """A StarModel whose encoders and latent heads carry the version's encoder_vs graph's weights (its decoders are
    never used)."""
    return encoders_from_graph_file(model.directory / model.manifest.graphs[ENCODER_VS].file, model.manifest.model,
                                    model.version)


def encoders_from_graph_file(path: Path, cfg: ModelConfig, name: str = "the") -> StarModel:
    """A StarModel of `cfg` whose encoders and latent heads carry the weights of the encoder_vs graph at `path`: the
    convolutions' as the graph has them, batch norms folded (fold_batch_norms); the GRU's and LSTM's gates reordered
    from ONNX's stacking."""
    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = {k.removeprefix(KEEP_PREFIX): torch.from_numpy(v.copy()) for k, v in arrays.items()
               if k.startswith(KEEP_PREFIX)}
    star = StarModel(cfg)
    if not isinstance(star.video_encoder, FrameEncoder):
        raise ValueError(f"{name} model reads precomputed features: no frame encoder to read back")
    fold_batch_norms(star.video_encoder)
    convs = [i for i, m in enumerate(star.video_encoder.cnn) if isinstance(m, nn.Conv2d)]
    graph_convs = [n for n in graph.node if n.op_type == "Conv" and not n.input[1].startswith(KEEP_PREFIX)]
    if len(graph_convs) != len(convs):
        raise ValueError(f"{name} encoder graph has {len(graph_convs)} convolutions, its config {len(convs)}")
    for i, node in zip(convs, graph_convs):
        weights[f"video_encoder.cnn.{i}.weight"] = torch.from_numpy(arrays[node.input[1]].copy())
        weights[f"video_encoder.cnn.{i}.bias"] = torch.from_numpy(arrays[node.input[2]].copy())
    for node in graph.node:
        if node.op_type in ("GRU", "LSTM"):
            w, r, b = (arrays[i] for i in node.input[1:4])
            module, to_torch = (("video_encoder", torch_gru_weights) if node.op_type == "GRU"
                                else ("sentence_encoder", torch_lstm_weights))
            weights.update({f"{module}.{k}": v for k, v in to_torch(w, r, b).items()})
    missing, unexpected = star.load_state_dict(weights, strict=False)
    encoders = ("video_encoder.", "sentence_encoder.", "to_mu.", "to_sigma_hat.")
    if unexpected or any(name.startswith(encoders) for name in missing):
        raise ValueError(f"{name} encoder graph does not match its config "
                         f"(missing {[m for m in missing if m.startswith(encoders)][:3]}, unexpected {unexpected[:3]})")
    return star.eval()


def clip_frames(clips: Sequence[Clip]) -> np.ndarray:
    """The clips' own uint8 frames [N, T, H, W, 3] (a corpus of features has none: ValueError)."""
    if any(c.frames is None for c in clips):
        raise ValueError("the encoder refit needs clips with frames (slr data synth)")
    return np.stack([c.frames for c in clips if c.frames is not None])


def scene_pairs(clips: Sequence[Clip], n: int, rng: np.random.Generator, aspect_share: float,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """n scenes of the clips' (colour, shape, motion) combinations, each drawn over a background of the corpus' kind
    and over one of any colour (`aspect_share` of them letterboxed from another aspect ratio, portrait ones
    included: a coloured picture between black bars): two uint8 [n, T, H, W, 3] arrays and each scene's truth."""
    t, h, w = clip_frames(clips[:1]).shape[1:4]
    truths = [{k: c.attributes[k] for k in ("colour", "shape", "motion")}
              for c in (clips[int(i)] for i in rng.integers(len(clips), size=n))]
    pairs = [background_pair((c["colour"], c["shape"], c["motion"]), t, h, w, rng,
                             float(rng.choice(CANVAS_ASPECTS)) if rng.random() < aspect_share else None)
             for c in tqdm(truths, desc="background pairs", unit="scene", disable=not progress)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), truths


def latent_of(star: StarModel, video: Tensor) -> tuple[Tensor, Tensor]:
    """(mu, log sigma) of uint8 [B, T, H, W, 3] clips by the video encoder alone."""
    latent = star.encode(video.float() / 255.0)
    return latent.mu, torch.log(latent.sigma)


@torch.no_grad()
def caption_figures(student: StarModel, model: GraphModel, clips: Sequence[Clip], other: np.ndarray,
                    other_truths: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Captions of the student's latents by the version's caption graphs: validation clips (colour, shape, motion,
    two-object first clause) and scenes over other backgrounds (colour, shape, motion)."""
    student.eval()
    mu = student.encode(torch.from_numpy(true_frames(clips))).mu.numpy()
    other_mu = torch.cat([student.encode(torch.from_numpy(other[i:i + 256]).float() / 255.0).mu
                          for i in range(0, len(other), 256)]).numpy()
    student.train()
    hyps, truths = model.captions(mu), [c.attributes for c in clips]
    hits, other_hits = attribute_hits(hyps, truths), attribute_hits(model.captions(other_mu), list(other_truths))
    keys = ("colour", "shape", "motion")
    return {**{f"caption.{k}": float(np.mean(hits[k])) for k in keys},
            "two_objects.first_clause": float(np.mean(binding_hits(hyps, truths)["first"])),
            **{f"other_background.{k}": float(np.mean(other_hits[k])) for k in keys}}


def caption_loss(model: GraphModel, train: Sequence[Clip], gen: torch.Generator) -> Callable[[Tensor, Tensor], Tensor]:
    """loss(mu, idx): the version's caption decoder (its graphs' weights, frozen) reading mu [B, Nz] of training clips
    idx [B] against one of each clip's captions (teacher forcing, summed over words as in training)."""
    decoder = sentence_decoder_from_graphs(model).eval().requires_grad_(False)
    words, lengths, n_captions = caption_tensors(list(train), model.vocab, model.manifest.model)

    def loss(mu: Tensor, idx: Tensor) -> Tensor:
        slot = (torch.rand(len(idx), generator=gen) * n_captions[idx]).long()
        target_in, target_out = decoder_io(words[idx, slot], lengths[idx, slot])
        return sentence_loss(decoder(mu, target_in), target_out)

    return loss


def refit_encoder(model: GraphModel, train: Sequence[Clip], val: Sequence[Clip], tc: TrainConfig,
                  rc: EncoderRefitConfig, progress: bool = True) -> tuple[StarModel, dict[str, Any]]:
    """Distil the version's video encoder into a copy that reads scenes over any background as it reads them over
    the corpus' own; the best validation weights (mean of every caption figure)."""
    torch.manual_seed(rc.seed)
    teacher = encoders_from_graph(model)
    student = copy.deepcopy(teacher).train()
    for p in [*student.sentence_encoder.parameters(), *student.sentence_decoder.parameters()]:
        p.requires_grad_(False)
    if student.video_decoder is not None:
        student.video_decoder.requires_grad_(False)
    clips = torch.from_numpy(clip_frames(train))
    # The pool no larger than the corpus: a small corpus' scenes are few.
    n_pairs = min(rc.pairs, len(train))
    familiar_np, other_np, _ = scene_pairs(train, n_pairs, np.random.default_rng([rc.seed, 7]), rc.aspect_share,
                                           progress)
    familiar, other = torch.from_numpy(familiar_np), torch.from_numpy(other_np)
    _, check_other, check_truths = scene_pairs(val, rc.check_pairs, np.random.default_rng([rc.seed, 11]),
                                               rc.aspect_share, progress=False)
    gen = torch.Generator().manual_seed(rc.seed)
    n_other = round(rc.batch_size * rc.other_share)
    captions = caption_loss(model, train, gen) if rc.caption_weight else None

    def loss_at() -> Tensor:
        idx = torch.randint(0, len(clips), (rc.batch_size - n_other,), generator=gen)
        pick = torch.randint(0, len(familiar), (n_other,), generator=gen)
        with torch.no_grad():
            want_mu, want_log_sigma = latent_of(teacher, torch.cat([clips[idx], familiar[pick]]))
        mu, log_sigma = latent_of(student, torch.cat([clips[idx], other[pick]]))
        loss = torch.mean((mu - want_mu) ** 2) + rc.sigma_weight * torch.mean((log_sigma - want_log_sigma) ** 2)
        return loss + rc.caption_weight * captions(mu[:len(idx)], idx) if captions is not None else loss

    best_step, history = train_keeping_best(
        student, rc.steps, rc.lr, tc.grad_clip, rc.eval_every, loss_at,
        lambda: caption_figures(student, model, val, check_other, check_truths), "refit video encoder",
        "other_background.colour", progress, tc.precision)
    student.eval()
    return student, {**dataclasses.asdict(rc), "precision": tc.precision, "best_step": best_step,
                     "pairs": n_pairs, "train_clips": len(train), "validation_clips": len(val), "validation": history}


@torch.no_grad()
def encoder_parity(star: StarModel, staging: Path, files: dict[str, str], video: Tensor, tokens: np.ndarray,
                   lengths: np.ndarray) -> float:
    """Largest |ONNX - PyTorch| of the written graphs' (mu, sigma): video alone, and video with a sentence."""
    tok, lens = torch.from_numpy(tokens), torch.from_numpy(lengths)
    want_v, want_vs = star.encode(video), star.encode(video, tok, lens)
    got_v = open_cpu_session(staging / files[ENCODER_V]).run(["mu", "sigma"], {"video": video.numpy()})
    got_vs = open_cpu_session(staging / files[ENCODER_VS]).run(
        ["mu", "sigma"], {"video": video.numpy(), "tokens": tokens, "lengths": lengths})
    return max(max_abs_diff([want_v.mu.numpy(), want_v.sigma.numpy()], got_v),
               max_abs_diff([want_vs.mu.numpy(), want_vs.sigma.numpy()], got_vs))


def refit_encoder_version(root: Path, base_version: str | None, version: str, train: Sequence[Clip],
                          val: Sequence[Clip], tc: TrainConfig, rc: EncoderRefitConfig, progress: bool = True,
                          atol: float = FP32_ATOL) -> tuple[Path, dict[str, Any]]:
    """The refitted encoder's two video graphs in a copy of the base version, published beside it (latest
    untouched); the sentence encoder's graph and every decoder's stay the base's files."""
    base = GraphModel.open(root, base_version)
    if base.manifest.model.video_input != "frames" or ENCODER_VS not in base.manifest.graphs:
        raise ValueError(f"{base.version} has no frame encoder to refit")
    star, record = refit_encoder(base, train, val, tc, rc, progress)
    video = torch.from_numpy(true_frames(list(val[:16])))
    tokens, lengths = pad_tokens([base.vocab.encode(c.captions[0], base.manifest.model.max_words) for c in val[:16]])
    files = {name: base.manifest.graphs[name].file for name in (ENCODER_V, ENCODER_VS)}

    def parity(staging: Path) -> float:
        return encoder_parity(star, staging, files, video, tokens, lengths)

    return publish_refit(root, base, version, star, (ENCODER_V, ENCODER_VS), parity, record, atol), record
