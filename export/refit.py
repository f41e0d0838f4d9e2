"""Refit an exported version's video decoder on its frozen encoders, from its own ONNX graphs: the latents of every
training clip and caption come from the version's encoder graphs, the decoder starts from its graph's weights, and
the new version is the old one's graphs with the refitted decoder (captions and every encoder byte-identical). This
is the paper's task fine-tuning of the video decoder for a version whose checkpoint is not at hand (the shipped
model), and how quality-v9 gained sentence-to-video's own heads (ModelConfig.sentence_heads) on quality-v8.

The decoder learns as in training (model/losses.py: video_decoder_losses): half the rows video-to-video (the clip's
latent and first frame, the clip as target), half sentence-to-video (a caption's latent, the centred clip as
target), each from its latent's mu as the service decodes; the validation split's video probe picks the best weights."""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn
from tqdm import tqdm

from core.config import ModelConfig, TrainConfig
from core.graph_contract import VIDEO_DECODER, VIDEO_REBUILD, encoder_graph
from core.manifest import MANIFEST, sha256_file
from core.vocab import pad_tokens
from export.graph_model import BATCH, GraphModel
from export.graphs import export_graph, graph_specs
from export.parity import FP32_ATOL, max_abs_diff, open_cpu_session
from export.publish import new_version_name, publish_version
from model.data.augment import add_ramp
from model.data.corpus import Clip
from model.data.dataset import SplitTensors, tensorize
from model.inference import single_object, true_frames
from model.losses import total_loss, video_decoder_losses
from model.precision import autocast, check_precision, prepare_module, standard_layout
from model.probes import probe_accuracy
from model.star import SpriteVideoDecoder, StarModel

HEADS = ("both", "sentence")  # RefitConfig.heads
DECODER_PREFIX = "model.video_decoder."  # the decoder's weights in its graph (export/graphs.py: VideoDecoderGraph)


@dataclass
class Latents:
    """(mu, sigma) of each clip by the video encoder [N, Nz], and of each of its caption slots [N, C, Nz]."""

    v_mu: Tensor
    v_sigma: Tensor
    s_mu: Tensor
    s_sigma: Tensor
    n_captions: Tensor  # [N]


@dataclass(frozen=True)
class RefitConfig:
    steps: int = 6000
    lr: float = 1e-3  # decayed linearly to 0
    batch_size: int = 32
    sentence_share: float = 0.5  # rows drawn sentence-to-video
    eval_every: int = 500
    seed: int = 0
    # z = mu, as the service decodes, rather than a VAE draw: on quality-v8's latents, 2,000 steps of sentence rows
    # drew shape 0.56 from mu against 0.46 from draws (motion 0.99 both).
    sample: bool = False
    # Video-to-video rows whose frames get a steep colour ramp across the picture (model/data/augment.py: add_ramp),
    # input and target alike: the rebuild learns to copy such a background from the first frame. 0: the corpus as is.
    ramp_share: float = 0.0
    # Sentence-to-video's sprite alpha made this much steeper before training (its logit scaled: the same drawing at 1):
    # its stars came out fat, their notches half filled, and the probe read them as diamonds.
    sentence_alpha_gain: float = 1.0
    # "sentence": only sentence-to-video's own heads learn, from sentence rows alone, so video-to-video (reconstruct,
    # the familiarity rebuild graph and its calibration) stays the base's exactly; "both": every head, both kinds of
    # row.
    heads: str = "both"
    # The weight of the sprite alpha's term against its shape's mask (TrainConfig.lambda_sprite_mask where None). At
    # the quality preset's 1, sentence-to-video's sprites came out rounded (squares read as circles, stars and
    # crosses as diamonds: shape 65.6); at 20 their outline is the shape's (models/default/README.md, quality-v23).
    sprite_mask_weight: float | None = None


def encoder_latents(model: GraphModel, clips: Sequence[Clip], progress: bool = True) -> Latents:
    """Every clip's and caption's posterior by the version's own encoder graphs (as the service encodes)."""
    enc_v, enc_s = model.session(encoder_graph("v")), model.session(encoder_graph("s"))
    cap, slots = model.manifest.model.max_words, max(len(c.captions) for c in clips)
    v_mu, v_sigma = [], []
    s_mu = np.zeros((len(clips), slots, model.manifest.model.latent_dim), np.float32)
    s_sigma = np.ones_like(s_mu)
    for i in tqdm(range(0, len(clips), BATCH), desc="latents", unit="batch", disable=not progress):
        part = clips[i:i + BATCH]
        mu, sigma = enc_v.run(["mu", "sigma"], {"video": true_frames(part)})
        v_mu.append(mu)
        v_sigma.append(sigma)
        pairs = [(row, slot, text) for row, c in enumerate(part) for slot, text in enumerate(c.captions)]
        tokens, lengths = pad_tokens([model.vocab.encode(text, cap) for _, _, text in pairs])
        mu, sigma = enc_s.run(["mu", "sigma"], {"tokens": tokens, "lengths": lengths})
        rows = np.array([i + row for row, _, _ in pairs])
        slots_of = np.array([slot for _, slot, _ in pairs])
        s_mu[rows, slots_of], s_sigma[rows, slots_of] = mu, sigma
    return Latents(torch.from_numpy(np.concatenate(v_mu)), torch.from_numpy(np.concatenate(v_sigma)),
                   torch.from_numpy(s_mu), torch.from_numpy(s_sigma),
                   torch.tensor([len(c.captions) for c in clips]))


def decoder_from_graph(model: GraphModel, cfg: ModelConfig, graph: str = VIDEO_DECODER) -> SpriteVideoDecoder:
    """The version's sprite decoder with `graph`'s weights (the video decoder's, or the rebuild graph's: video-to-
    video's heads only); sentence heads (cfg) missing from it start as copies of the others."""
    proto = onnx.load(str(model.directory / model.manifest.graphs[graph].file))
    weights = {t.name.removeprefix(DECODER_PREFIX): torch.from_numpy(numpy_helper.to_array(t).copy())
               for t in proto.graph.initializer if t.name.startswith(DECODER_PREFIX)}
    decoder = SpriteVideoDecoder(cfg)
    missing, unexpected = decoder.load_state_dict(weights, strict=False)
    if unexpected or any(not name.startswith("sentence.") for name in missing):
        raise ValueError(f"{model.version}'s video decoder graph does not match a sprite decoder of its manifest's "
                         f"config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if any(name.startswith("sentence.") for name in missing):
        decoder.seed_sentence_heads()
    return decoder


@torch.no_grad()
def steepen_sentence_alpha(decoder: SpriteVideoDecoder, gain: float) -> None:
    """Scale the logit of sentence-to-video's sprite alpha (the last of its sprite's four output channels) by `gain`."""
    if gain == 1.0 or decoder.sentence is None:
        return
    out = decoder.sentence.sprite_out
    assert isinstance(out, nn.Conv2d) and out.bias is not None  # set by add_draw_heads
    out.weight[3] *= gain
    out.bias[3] *= gain


def batches(data: SplitTensors, latents: Latents, rc: RefitConfig, latent_dim: int
            ) -> Iterator[tuple[Tensor, Tensor, dict[str, Tensor]]]:
    """(z, mask_v, batch) forever: rows drawn uniformly, each video-to-video or sentence-to-video (one of its
    captions, drawn), z that input's mu (or a draw from its posterior: RefitConfig.sample)."""
    gen = torch.Generator().manual_seed(rc.seed)
    n = len(data)
    assert data.frames is not None and data.frames_centred is not None and data.pose is not None
    while True:
        idx = torch.randint(0, n, (rc.batch_size,), generator=gen)
        mask_v = (torch.rand(rc.batch_size, generator=gen) >= rc.sentence_share).float()
        slot = (torch.rand(rc.batch_size, generator=gen) * latents.n_captions[idx]).long()
        video = mask_v[:, None] > 0
        mu = torch.where(video, latents.v_mu[idx], latents.s_mu[idx, slot])
        sigma = torch.where(video, latents.v_sigma[idx], latents.s_sigma[idx, slot])
        noise = torch.randn(rc.batch_size, latent_dim, generator=gen)
        z = mu + sigma * noise if rc.sample else mu
        frames = data.frames[idx].float() / 255.0
        if rc.ramp_share > 0:
            frames = add_ramp(frames, (mask_v > 0) & (torch.rand(rc.batch_size, generator=gen) < rc.ramp_share), gen)
        batch = {"frames": frames, "frames_centred": data.frames_centred[idx].float() / 255.0}
        for key in ("pose", "pose_centred", "pose_known", "shape_id"):
            batch[key] = getattr(data, key)[idx]
        yield z, mask_v, batch


@torch.no_grad()
def probe_figures(decoder: SpriteVideoDecoder, clips: Sequence[Clip], v_mu: Tensor, s_mu: Tensor) -> dict[str, float]:
    """The video probe of both tasks on one-object clips, from mu (as the service decodes)."""
    decoder.eval()
    video = torch.from_numpy(true_frames(clips))
    rebuilt = decoder(v_mu, video[:, 0]).numpy()
    drawn = decoder(s_mu, torch.zeros_like(video[:, 0])).numpy()
    decoder.train()
    full = [{k: v for k, v in c.attributes.items() if k != "frame_box"} for c in clips]  # a sentence names no box
    rec, s2v = probe_accuracy(list(rebuilt), [c.attributes for c in clips]), probe_accuracy(list(drawn), full)
    keys = ("colour", "shape", "motion")
    return {**{f"reconstruct.{k}": rec[k] for k in keys}, **{f"sentence_to_video.{k}": s2v[k] for k in keys}}


def train_keeping_best(module: nn.Module, steps: int, lr: float, grad_clip: float, eval_every: int,
                       loss_at: Callable[[], Tensor], validate: Callable[[], dict[str, float]], desc: str,
                       watch: str, progress: bool = True, precision: str = "fp32") -> tuple[int, list[dict[str, Any]]]:
    """Adam at `lr` decayed linearly to 0 over `steps`, gradients clipped; `validate()` before the first step, every
    `eval_every` steps and at the end, the mean of its figures picking the weights `module` keeps on return.
    Returns the best step and the history (each validation's figures, its step and the training loss since the last).
    `loss_at()` runs at `precision` (model/precision.py); validation in float32. The refits' one loop
    (export/refit.py, export/refit_sentence.py, export/refit_encoder.py)."""
    cpu = torch.device("cpu")
    check_precision(precision, cpu)
    prepare_module(module, precision)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / steps)
    first = validate()
    history: list[dict[str, Any]] = [{"step": 0, **first}]
    best = (float(np.mean(list(first.values()))), 0, {k: v.clone() for k, v in module.state_dict().items()})
    bar = tqdm(range(1, steps + 1), desc=desc, unit="step", disable=not progress)
    window: list[float] = []  # training losses since the last validation
    for step in bar:
        with autocast(precision, cpu):
            loss = loss_at()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        opt.step()
        sched.step()
        window.append(float(loss.detach()))
        if step % eval_every == 0 or step == steps:
            figures = validate()
            history.append({"step": step, **figures, "train_loss": float(np.mean(window))})
            window = []
            score = float(np.mean(list(figures.values())))
            bar.set_postfix({watch: f"{figures[watch]:.3f}", "score": f"{score:.4f}"})
            if score >= best[0]:  # a tie goes to the more trained weights
                best = (score, step, {k: v.clone() for k, v in module.state_dict().items()})
    module.load_state_dict(best[2])
    standard_layout(module)  # as export expects, whatever the precision trained in
    return best[1], history


def refit(model: GraphModel, train: Sequence[Clip], val: Sequence[Clip], tc: TrainConfig, rc: RefitConfig,
          progress: bool = True) -> tuple[SpriteVideoDecoder, dict[str, Any]]:
    """Train the decoder on the version's latents; the best validation weights (mean of both tasks' probe)."""
    if rc.heads not in HEADS:
        raise ValueError(f"heads {rc.heads!r}: one of {', '.join(HEADS)}")
    torch.manual_seed(rc.seed)
    cfg = dataclasses.replace(model.manifest.model, sentence_heads=True)
    decoder = decoder_from_graph(model, cfg)
    steepen_sentence_alpha(decoder, rc.sentence_alpha_gain)
    if rc.sprite_mask_weight is not None:
        tc = dataclasses.replace(tc, lambda_sprite_mask=rc.sprite_mask_weight)
    learner: nn.Module = decoder
    if rc.heads == "sentence":
        assert decoder.sentence is not None  # cfg asks for them
        learner, rc = decoder.sentence, dataclasses.replace(rc, sentence_share=1.0)
    data = tensorize(list(train), model.vocab, cfg)
    latents = encoder_latents(model, train, progress)
    check = [val[i] for i in single_object(val)]
    check_v = torch.from_numpy(model.video_mu(true_frames(check)))
    check_s = torch.from_numpy(model.sentence_mu([c.captions[0] for c in check]))
    stream = batches(data, latents, rc, cfg.latent_dim)

    def loss_at() -> Tensor:
        z, mask_v, batch = next(stream)
        return total_loss({"kl": z.new_zeros(()), **video_decoder_losses(decoder, z, z, batch, mask_v)}, tc, 0.0)

    best_step, history = train_keeping_best(  # both tasks' colour, shape and motion
        learner, rc.steps, rc.lr, tc.grad_clip, rc.eval_every, loss_at,
        lambda: probe_figures(decoder, check, check_v, check_s), "refit video decoder", "sentence_to_video.shape",
        progress, tc.precision)
    decoder.eval()
    return decoder, {**dataclasses.asdict(rc), "precision": tc.precision, "best_step": best_step,
                     "train_clips": len(train), "validation": history}


def video_graphs_parity(decoder: SpriteVideoDecoder, staging: Path, z: Tensor, first: Tensor) -> float:
    """Largest |ONNX - PyTorch| of the video graphs written to `staging`: the decoder over both tasks' inputs (zeros
    and the clips' first frames), and its rebuild graph, where the config writes one, over the first frames."""
    specs = graph_specs(decoder.cfg)
    cases: list[tuple[str, Callable[[Tensor, Tensor], Tensor], Tensor]] = [
        (VIDEO_DECODER, decoder, torch.zeros_like(first)), (VIDEO_DECODER, decoder, first)]
    if VIDEO_REBUILD in specs:
        cases.append((VIDEO_REBUILD, decoder.rebuild, first))
    sessions = {name: open_cpu_session(staging / specs[name].file) for name, _, _ in cases}
    worst = 0.0
    with torch.no_grad():
        for name, draw, frame in cases:
            got = sessions[name].run(["frames"], {"z": z.numpy(), "first_frame": frame.numpy()})
            worst = max(worst, max_abs_diff([draw(z, frame).numpy()], got))
    return worst


def rows_difference(graph: Path, source: GraphModel, z: np.ndarray, first: np.ndarray) -> float:
    """Largest |written decoder graph - source version's decoder| on latents z and first frames (zeros: sentence-to-
    video rows): what a derived version must draw exactly as its source does."""
    got = open_cpu_session(graph).run(["frames"], {"z": z, "first_frame": first})[0]
    return float(np.abs(got - source.frames(z, first)).max())


def publish_refit(root: Path, base: GraphModel, version: str, star: StarModel, graphs: Sequence[str],
                  parity: Callable[[Path], float], record: dict[str, Any], atol: float = FP32_ATOL,
                  keep_calibration: bool = True) -> Path:
    """The base version's folder with `graphs` exported anew from `star` (its refitted decoder), published beside
    it (latest untouched: the release gate moves it). `parity(staging)`: the written graphs' largest difference from
    PyTorch; past `atol`, nothing is published (ValueError). The manifest's `refit` records the base, the graphs and
    `record`, and the base's own refit as `previous`; its familiarity calibration is the base's, or none with
    `keep_calibration` False (a rebuild that now draws otherwise: `slr calibrate` the version before its release)."""
    version = new_version_name(root, version)
    specs = graph_specs(star.cfg)

    def build(staging: Path) -> None:
        for name in base.manifest.files:
            shutil.copy2(base.directory / name, staging / name)
        for name in graphs:
            export_graph(star, specs[name], staging / specs[name].file)
        diff = parity(staging)
        if diff > atol:
            raise ValueError(f"the refitted {' and '.join(graphs)} graph differs from PyTorch by {diff:.2e} "
                             f"(> {atol:.0e})")
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file() and p.name != MANIFEST}
        parity_record = {**base.manifest.parity, **{name: {"max_abs_diff": diff, "refit": True} for name in graphs}}
        refit_record = {"from": base.version, "graphs": list(graphs), **record}
        if base.manifest.refit is not None:
            refit_record["previous"] = base.manifest.refit
        entries = {**base.manifest.graphs, **{name: specs[name].manifest_entry() for name in graphs}}
        familiarity = base.manifest.familiarity if keep_calibration else None
        dataclasses.replace(base.manifest, version=version, model=star.cfg, files=files, graphs=entries,
                            parity=parity_record, release=None, refit=refit_record, familiarity=familiarity,
                            created=datetime.now(timezone.utc).isoformat(timespec="seconds")).write(staging)

    return publish_version(root, version, build, update_latest=False)


def refit_version(root: Path, base_version: str | None, version: str, train: Sequence[Clip], val: Sequence[Clip],
                  tc: TrainConfig, rc: RefitConfig, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    base = GraphModel.open(root, base_version)
    if base.manifest.model.video_decoder != "sprite" or VIDEO_DECODER not in base.manifest.graphs:
        raise ValueError(f"{base.version} has no sprite video decoder to refit")
    if rc.heads == "sentence" and not base.manifest.model.sentence_heads:
        raise ValueError(f"{base.version} draws sentence-to-video with video-to-video's heads: refit both first")
    decoder, record = refit(base, train, val, tc, rc, progress)
    star = StarModel(decoder.cfg).eval()  # its encoders are never exported: only the decoder's graph is new
    star.video_decoder = decoder
    video = torch.from_numpy(true_frames([val[i] for i in single_object(val)][:16]))
    z = torch.from_numpy(base.video_mu(video.numpy()))
    specs = graph_specs(star.cfg)  # the video decoder, and its rebuild graph where they differ
    # Sentence heads alone: the base's rebuild graph stays (the parity check below reads it against the refit).
    redrawn = (VIDEO_DECODER,) if rc.heads == "sentence" else (VIDEO_DECODER, VIDEO_REBUILD)
    graphs = tuple(name for name in redrawn if name in specs)

    def parity(staging: Path) -> float:
        return video_graphs_parity(decoder, staging, z, video[:, 0])

    return publish_refit(root, base, version, star, graphs, parity, record), record
