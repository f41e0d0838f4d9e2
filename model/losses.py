"""The star model's training terms: the paper's L = lv * L_video + ls * L_sentence + lp * KL, and the terms this
project adds beside them (foreground-weighted frames, latent alignment, the sprite decoder's track, mask and anchor),
each weighed by its TrainConfig field. `star_losses` computes one batch's terms, `total_loss` weighs them; the
network itself is model/star.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.config import TrainConfig
from core.vocab import PAD_ID
from model.data.shapes import shape_masks
from model.star import SpriteVideoDecoder, StarModel, switch


def video_loss(pred: Tensor, true: Tensor) -> Tensor:
    """Mean Euclidean distance between predicted and true frames (the paper's L_video)."""
    return (pred - true).flatten(2).norm(dim=-1).mean()


def foreground_weights(true: Tensor) -> Tensor:
    """[B, T, H, W] weights summing to 1 per frame: each pixel's distance from the frame's background (the
    median of its border pixels), so the few pixels of the object weigh as much as the many of the scene."""
    border = torch.cat([true[:, :, 0], true[:, :, -1], true[:, :, :, 0], true[:, :, :, -1]], dim=2)  # B,T,N,3
    background = border.median(dim=2).values[:, :, None, None]  # B,T,1,1,3
    distance = (true - background).norm(dim=-1)
    return distance / (distance.sum(dim=(2, 3), keepdim=True) + 1e-6)


def foreground_loss(pred: Tensor, true: Tensor) -> Tensor:
    """Squared error weighted by foreground_weights, summed over a clip's frames, mean over the batch: the term
    that does not let the background drown the object (TrainConfig.lambda_foreground; 0 = the paper)."""
    w = foreground_weights(true).detach()
    return (w * (pred - true).pow(2).sum(-1)).sum(dim=(1, 2, 3)).mean()


def pose_loss(poses: Tensor, target: Tensor, known: Tensor) -> Tensor:
    """Squared error of the predicted track [B, T, 3] against the true one, summed over a clip's frames and the three
    numbers, mean over the rows whose truth is known (`known` [B], 0 or 1)."""
    per_row = (poses - target).pow(2).sum(dim=(1, 2))
    return (per_row * known).sum() / known.sum().clamp(min=1.0)


def anchor_loss(anchor: Tensor, batch: dict[str, Tensor], mask_v: Tensor) -> Tensor:
    """Squared error of the anchor (where the decoder finds the first frame's object, [B, 3]) against the true
    first pose, mean over the rows that show the decoder a first frame (video on) and whose truth is known."""
    rows = batch["pose_known"] * (mask_v > 0).to(anchor.dtype)
    per_row = (anchor - batch["pose"][:, 0]).pow(2).sum(dim=-1)
    return (per_row * rows).sum() / rows.sum().clamp(min=1.0)


def sprite_mask_loss(sprite: Tensor, shape_id: Tensor, masks: Tensor) -> Tensor:
    """Binary cross-entropy of the sprite's alpha against its shape's mask (masks [K, S, S]; model/data/shapes.py:
    shape_masks), mean over pixels and over the rows whose shape is known (shape_id >= 0)."""
    known = (shape_id >= 0).to(sprite.dtype)
    target = masks[shape_id.clamp(min=0)]
    alpha = sprite[:, 3].clamp(1e-5, 1 - 1e-5)
    per_row = F.binary_cross_entropy(alpha, target, reduction="none").mean(dim=(1, 2))
    return (per_row * known).sum() / known.sum().clamp(min=1.0)


def sentence_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Softmax cross-entropy summed over a sentence's words and <eos> (padding ignored), mean over the batch.

    Per sentence, not per word: the KL term is per sentence too (summed over latent dims), so their
    ratio is the paper's lambda_p = 0.01 per nat. With a per-word mean the KL term weighs ~12x more and
    pushes the posterior to the prior before the decoder learns to read z (measured: a sentence
    autoencoder's paraphrases stayed at chance colour after 500 steps)."""
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=PAD_ID, reduction="sum")
    return nll / target.size(0)


def latent_alignment(model: StarModel, x_v: Tensor, x_s: Tensor) -> Tensor:
    """Squared distance between the video's and the caption's contributions to mu (W_v x_v and W_s x_s,
    the caption's held fixed), summed over latent dims, mean over the pairs: a term the paper does not
    have, in the spirit of JMVAE (Suzuki et al., 2016), which aligns single-input posteriors.

    Why: with the video alone the decoders learn from a z that does not yet say the shape, so they
    learn to guess it, and the video encoder's only signal is one word in ten through a decoder that
    has stopped listening. The caption's contribution is a dense target for every latent dim of every
    pair, whatever the batch's channel masks. Without the bias: its gradient would move both sides
    alike and drift."""
    w_v, w_s = model.to_mu.weight.split(x_v.size(-1), dim=1)
    from_v = F.linear(x_v, w_v)
    from_s = F.linear(x_s, w_s).detach()
    return ((from_v - from_s) ** 2).sum(-1).mean()


def video_target(frames: Tensor, centred: Tensor | None, mask_v: Tensor) -> Tensor:
    """What the video decoder should draw: the clip itself when the video channel is on; when only the sentence
    is, the clip moved so its object's track is centred (model/data/dataset.py: centre_clips). A sentence does
    not say where the object starts, so against the clip itself the L2-best answer is a smudge averaged over
    every start; against centred clips it is one object doing what the sentence says."""
    if centred is None:
        return frames
    return torch.where(mask_v.view(-1, 1, 1, 1, 1) > 0, frames, centred)


BOTH_MEDIA: frozenset[str] = frozenset(("video", "sentence"))


def star_losses(model: StarModel, batch: dict[str, Tensor], mask_v: Tensor, mask_s: Tensor,
                generator: torch.Generator | None = None, sample: bool = True,
                noise: Tensor | None = None, inputs: frozenset[str] = BOTH_MEDIA,
                outputs: frozenset[str] = BOTH_MEDIA, video_z_grad: float = 1.0) -> dict[str, Tensor]:
    """The loss terms of one batch with the given per-sample input masks.
    sample=False decodes from z = mu (evaluation, and the deterministic LSTM baseline). `noise` ([B, Nz],
    drawn by the caller) replaces the draw from `generator`: a distributed rank's rows of one global draw.
    `inputs` / `outputs`: the media a phase ever switches on / learns to produce. An encoder outside `inputs`
    is not run (its features are the zeros its mask would make), nor a decoder outside `outputs` (its loss would be
    dropped), so a single-task baseline's step costs its own task's layers only, with the same gradients; the
    alignment term needs both encoders and is computed only when both run. `video_z_grad`: the share of the video
    decoder's gradient that flows back into z (TrainConfig.video_z_grad); the forward is the same."""
    video = batch["video"] if "video" in inputs else None
    tokens = batch["tokens"] if "sentence" in inputs else None
    x_v, x_s = model.features(video, tokens, batch["lengths"])
    latent = model.posterior(switch(x_v, mask_v), switch(x_s, mask_s))
    if not sample:
        z = latent.mu
    else:
        z = latent.sample(generator) if noise is None else latent.mu + latent.sigma * noise
    losses = {"kl": latent.kl()}
    if "sentence" in outputs:
        target_in = batch.get("target_in_dropped", batch["target_in"])
        losses["sentence"] = sentence_loss(model.sentence_decoder(z, target_in), batch["target_out"])
    if video is not None and tokens is not None:
        losses["align"] = latent_alignment(model, x_v, x_s)
    if "video" in outputs and model.video_decoder is not None and batch.get("frames") is not None:
        losses.update(video_decoder_losses(model.video_decoder, scale_gradient(z, video_z_grad), z.detach(), batch,
                                           mask_v))
    return losses


def video_decoder_losses(decoder: nn.Module, z: Tensor, z_aux: Tensor, batch: dict[str, Tensor],
                         mask_v: Tensor) -> dict[str, Tensor]:
    """The video decoder's terms: its frames from `z` against the clip (video on) or its centred version (sentence
    only), and the sprite decoder's auxiliary truths from `z_aux`. Also what export/refit.py trains a shipped
    version's decoder by, on its frozen encoders' latents."""
    frames = batch["frames"]
    # First input frame: the true one when the video channel is on (video-to-video), zeros otherwise.
    first = frames[:, 0] * mask_v.view(-1, 1, 1, 1)
    target = video_target(frames, batch.get("frames_centred"), mask_v)
    pred = decoder(z, first)
    losses: dict[str, Tensor] = {}
    if isinstance(decoder, SpriteVideoDecoder) and batch.get("pose") is not None:
        # The auxiliary truths teach the decoder to read z, never the encoders what to write in it: from a
        # detached z (a second, cheap pass: no compositing). Measured: with them reaching the encoders
        # (quality-v7's first run) caption shape fell from 93.4 to 76.9 (models/default/README.md).
        sprite, poses, anchor = decoder.shape_and_track(z_aux, first)
        losses.update(sprite_losses(sprite, poses, batch, mask_v))
        # Where the first frame's object is: the glimpse that gives a rebuilt sprite its colour reads there.
        losses["anchor"] = anchor_loss(anchor, batch, mask_v)
    losses["video"] = video_loss(pred, target)
    losses["foreground"] = foreground_loss(pred, target)
    return losses


def scale_gradient(x: Tensor, share: float) -> Tensor:
    """x in the forward; `share` of the gradient in the backward (1: unchanged, 0: detached)."""
    if share == 1.0:
        return x
    return x.detach() if share == 0.0 else x.detach() + share * (x - x.detach())


def sprite_losses(sprite: Tensor, poses: Tensor, batch: dict[str, Tensor], mask_v: Tensor) -> dict[str, Tensor]:
    """The sprite decoder's auxiliary terms, where the batch carries the truth (model/data/dataset.py: add_pose_truth):
    the track against the clip's (video on) or its centred version's (sentence only), the alpha against the shape."""
    if batch.get("pose") is None:
        return {}
    target = torch.where(mask_v.view(-1, 1, 1) > 0, batch["pose"], batch["pose_centred"])
    masks = shape_mask_table(sprite.size(-1), sprite.device, sprite.dtype)
    return {"pose": pose_loss(poses, target, batch["pose_known"]),
            "sprite_mask": sprite_mask_loss(sprite, batch["shape_id"], masks)}


_MASKS: dict[tuple[int, str, torch.dtype], Tensor] = {}


def shape_mask_table(size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """[K, size, size] shape masks (drawn once per size and device)."""
    key = (size, str(device), dtype)
    if key not in _MASKS:
        _MASKS[key] = torch.from_numpy(shape_masks(size)).to(device=device, dtype=dtype)
    return _MASKS[key]


def total_loss(losses: dict[str, Tensor], tc: TrainConfig, kl_weight: float) -> Tensor:
    loss = kl_weight * losses["kl"]
    if "sentence" in losses:  # a video-only baseline keeps no sentence term
        loss = loss + tc.lambda_sentence * losses["sentence"]
    if "video" in losses:
        loss = loss + tc.lambda_video * losses["video"]
    if "foreground" in losses and tc.lambda_foreground:
        loss = loss + tc.lambda_foreground * losses["foreground"]
    if "align" in losses and tc.lambda_align:
        loss = loss + tc.lambda_align * losses["align"]
    if "pose" in losses and tc.lambda_pose:
        loss = loss + tc.lambda_pose * losses["pose"]
    if "sprite_mask" in losses and tc.lambda_sprite_mask:
        loss = loss + tc.lambda_sprite_mask * losses["sprite_mask"]
    if "anchor" in losses and tc.lambda_anchor:
        loss = loss + tc.lambda_anchor * losses["anchor"]
    return loss
