"""The star model with a shared latent representation (SLR), after the paper's "Method" section.

Two encoders (video, sentence) meet in one VAE latent; LSTM decoders regenerate either medium.
Input channels are switched per sample by masks: an inactive input's feature x_i is all zeros. At
inference an input left as None is not computed at all (its zeros are folded in), which is what the
exported per-configuration encoder graphs do. Its training terms are model/losses.py; saving and loading it,
model/checkpoint.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.config import ModelConfig, rebuilt_frames
from core.graph_contract import resolve_max_len
from core.search import beam_search, greedy_search
from core.vocab import PAD_ID
from model.data.shapes import SPRITE_MARGIN


def l2norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Unit L2 norm, scaled by sqrt(dim) so that each entry is O(1): a unit vector of 512 entries
    (~0.04 each) through a default-initialised linear layer gives a mu far below the unit noise of
    z = mu + sigma * eps, and the decoders learn to ignore z. eps keeps an inactive channel's zeros at zero."""
    return x * (x.size(-1) ** 0.5) / (x.norm(dim=-1, keepdim=True) + eps)


def switch(x: Tensor, mask: Tensor | None) -> Tensor:
    """A channel's features with the channel off (mask 0) for some samples: their rows become zeros."""
    return x if mask is None else x * mask.view(-1, 1)


class FrameEncoder(nn.Module):
    """Raw frames -> x_v. No pretrained CNN can be loaded here, so a small CNN learns end to end.

    Per frame: RGB, the difference to the previous frame (motion) and x/y coordinate planes (where),
    through three conv layers, pooled over space by max and mean (mean alone cannot learn colour of a
    small object) and, optionally, by attention heads. A bidirectional GRU over time keeps the direction
    of motion that mean-pooling over time would erase; its outputs are then mean-pooled over time and
    projected, as in the paper.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.cnn_channels
        # Strided convolutions instead of full-resolution conv + pooling: half the FLOPs of the
        # encoder (the training bottleneck on a CPU) for the same receptive field.
        # Batch normalisation after each convolution, measured: a shape classifier on this CNN
        # (quality corpus, 1,000 steps) named the shape in 0.31 of validation clips without it, 0.73 with.
        self.cnn = nn.Sequential(
            nn.Conv2d(8, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),
        )
        # Optional attention heads (softmax over positions, one map each): a weighted mean of the feature
        # map per head, so one object's colour and shape features arrive together; max and mean pooling
        # alone give a bag of attributes that a two-object clip's caption mixes up.
        heads = cfg.attention_heads
        self.attend = nn.Conv2d(2 * c, heads, 1) if heads else None
        self.gru = nn.GRU((2 + heads) * 2 * c, cfg.hidden // 2, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * (cfg.hidden // 2), cfg.x_dim)
        ys = torch.linspace(-1.0, 1.0, cfg.height).view(1, 1, cfg.height, 1).expand(1, 1, cfg.height, cfg.width)
        xs = torch.linspace(-1.0, 1.0, cfg.width).view(1, 1, 1, cfg.width).expand(1, 1, cfg.height, cfg.width)
        self.register_buffer("coords", torch.cat([xs, ys], dim=1), persistent=False)

    def forward(self, video: Tensor) -> Tensor:
        b, t, h, w, _ = video.shape
        x = video.permute(0, 1, 4, 2, 3) - 0.5  # B,T,3,H,W, centred: convolutions learn faster on zero-mean input
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
        coords = self.coords.unsqueeze(0).expand(b, t, 2, h, w)
        frames = torch.cat([x, diff, coords], dim=2).reshape(b * t, 8, h, w)
        fmap = self.cnn(frames)
        pooled = [fmap.amax(dim=(2, 3)), fmap.mean(dim=(2, 3))]
        if self.attend is not None:
            flat = fmap.flatten(2)  # BT, C, N
            weights = torch.softmax(self.attend(fmap).flatten(2), dim=-1)  # BT, K, N
            pooled.append(torch.bmm(weights, flat.transpose(1, 2)).flatten(1))  # BT, K * C
        pooled = torch.cat(pooled, dim=1).view(b, t, -1)
        seq, _ = self.gru(pooled)
        return torch.tanh(self.proj(seq.mean(dim=1)))


class FeatureEncoder(nn.Module):
    """Precomputed per-clip features (the paper's VGG + C3D fc6) -> x_v = tanh(W mean_t(f) + b)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(cfg.feature_dim, cfg.x_dim)

    def forward(self, feats: Tensor) -> Tensor:
        return torch.tanh(self.proj(feats.mean(dim=1)))


class SentenceEncoder(nn.Module):
    """Words -> embedding -> LSTM; the hidden state after the last real word -> x_s."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True)
        self.proj = nn.Linear(cfg.hidden, cfg.x_dim)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        out, _ = self.lstm(self.embed(tokens))
        # Gather at length-1 instead of packing: with right padding it is the same state, and it exports to ONNX.
        idx = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.size(-1))
        return self.proj(out.gather(1, idx).squeeze(1))


# Deviation from the paper's Eq. 6, measured: z also joins every step's input, beside the previous
# word or frame. With z in the initial state only, the LSTM drives tanh(W z + b) into saturation while
# it learns the language prior and z stops reaching it (on the demo corpus a sentence autoencoder with
# no KL term, 400 steps: initial-state spread across a batch 3e-6, loss with shuffled z no worse than
# with the true z); with z at every step it reaches loss 1.17 after 1,500 steps, 3.11 for shuffled z.


class SentenceDecoder(nn.Module):
    """[h0; c0] = tanh(W_z z + b); an LSTM over [word embedding; z]; softmax over the vocabulary.

    The decoder state carried between steps is (h, c, z) with the batch on axis 1, so that search
    (core/search.py) can reorder beams without knowing which array is which.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.hidden = cfg.hidden
        self.init = nn.Linear(cfg.latent_dim, 2 * cfg.hidden)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(cfg.embed_dim + cfg.latent_dim, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.vocab_size)

    def init_state(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h, c = torch.tanh(self.init(z)).chunk(2, dim=-1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous(), z.unsqueeze(0).contiguous()

    def forward(self, z: Tensor, tokens_in: Tensor) -> Tensor:
        """Teacher-forced logits for every position of tokens_in ([B, L] starting with <bos>)."""
        h, c, _ = self.init_state(z)
        words = self.embed(tokens_in)
        out, _ = self.lstm(torch.cat([words, z.unsqueeze(1).expand(-1, words.size(1), -1)], dim=-1), (h, c))
        return self.out(out)

    def step(self, token: Tensor, h: Tensor, c: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One word: token [B], state (h, c [1, B, H]; z [1, B, Nz]) -> log-probs [B, V], h', c'
        (the exported step graph)."""
        x = torch.cat([self.embed(token), z.squeeze(0)], dim=-1).unsqueeze(1)
        out, (h2, c2) = self.lstm(x, (h, c))
        return F.log_softmax(self.out(out.squeeze(1)), dim=-1), h2, c2


class VideoDecoder(nn.Module):
    """[h0; c0] = tanh(W_z z + b); an LSTM over [previous frame's projection; z]; its state h_t draws frame t.

    Two ways to draw (ModelConfig.video_decoder):
    - "linear", the paper's: sigmoid(W h_t + b), one weight per pixel. Measured on the shipped quality-v4:
      a grey mean with a faint stain (sentence-to-video contrast 0.19): a linear map has no notion of where
      things are, and plain L2 over frames where the object covers a few percent of the pixels is minimised
      by the background.
    - "layers": a composition of a background (from z and, for video-to-video, the first frame pooled to a
      quarter of the size) and an object layer with its own mask, drawn from h_t by upsampling convolutions
      over coordinate planes (CoordConv): frame = mask * object + (1 - mask) * background. Where things are
      is a spatial map, and the object keeps its colour whatever the background does.
    It always runs free (its own previous output fed back), in training too, so what it learned is exactly
    what the exported graph computes. The first input frame is the first true frame for video-to-video and
    zeros for sentence-to-video.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.init = nn.Linear(cfg.latent_dim, 2 * cfg.hidden)
        self.frame_in = nn.Linear(cfg.frame_pixels, cfg.frame_embed)
        self.cell = nn.LSTMCell(cfg.frame_embed + cfg.latent_dim, cfg.hidden)
        if cfg.video_decoder == "linear":
            self.out = nn.Linear(cfg.hidden, cfg.frame_pixels)
            return
        c = cfg.draw_channels
        self.grid = (-(-cfg.height // 4), -(-cfg.width // 4))  # ceil: any frame size
        self.mid = (-(-cfg.height // 2), -(-cfg.width // 2))
        cells = self.grid[0] * self.grid[1]
        self.bg_from_z = nn.Linear(cfg.latent_dim, 3 * cells)
        self.bg_from_first = nn.Linear(3 * cells, 3 * cells)
        self.seed = nn.Linear(cfg.hidden, c * cells)
        # The previous frame at half size joins the drawing convolutions: the object is where it was, moved a
        # little, so drawing it is a local shift of what the convolutions see (reconstruct motion 0.59 -> see
        # models/default/README.md), not a position regressed from the LSTM state alone.
        self.conv_mid = nn.Conv2d(c + 2 + 3, c, 3, padding=1)
        self.conv_out = nn.Conv2d(c, 4, 3, padding=1)  # RGB + the object's mask
        ys = torch.linspace(-1.0, 1.0, self.mid[0]).view(1, 1, -1, 1).expand(1, 1, *self.mid)
        xs = torch.linspace(-1.0, 1.0, self.mid[1]).view(1, 1, 1, -1).expand(1, 1, *self.mid)
        self.register_buffer("coords", torch.cat([xs, ys], dim=1), persistent=False)

    def background(self, z: Tensor, first_frame: Tensor) -> Tensor:
        return background_field(self, z, first_frame)

    def draw(self, h: Tensor, bg: Tensor, prev: Tensor) -> Tensor:
        """One frame [B, H, W, 3]: the object layer drawn from h (and the previous frame) over the background."""
        b, cfg = h.size(0), self.cfg
        x = F.interpolate(self.seed(h).view(b, -1, *self.grid), size=self.mid, mode="bilinear", align_corners=False)
        before = F.avg_pool2d(prev.view(b, cfg.height, cfg.width, 3).permute(0, 3, 1, 2), 2, ceil_mode=True)
        x = torch.relu(self.conv_mid(torch.cat([x, self.coords.expand(b, -1, -1, -1), before], dim=1)))
        # Both convolutions at half size (the one at full size cost most of a training step): the layers'
        # colour and mask are then upsampled, and composed at full size.
        x = F.interpolate(self.conv_out(x), size=(cfg.height, cfg.width), mode="bilinear", align_corners=False)
        rgb, mask = torch.sigmoid(x[:, :3]), torch.sigmoid(x[:, 3:])
        return (mask * rgb + (1.0 - mask) * bg).permute(0, 2, 3, 1)

    def forward(self, z: Tensor, first_frame: Tensor) -> Tensor:
        b = z.size(0)
        h, c = torch.tanh(self.init(z)).chunk(2, dim=-1)
        layered = self.cfg.video_decoder != "linear"
        bg = self.background(z, first_frame) if layered else None
        prev = first_frame.reshape(b, -1)
        frames = []
        for _ in range(self.cfg.frames):
            h, c = self.cell(torch.cat([torch.relu(self.frame_in(prev)), z], dim=-1), (h, c))
            frame = self.draw(h, bg, prev).reshape(b, -1) if layered else torch.sigmoid(self.out(h))
            frames.append(frame)
            prev = frame.detach() if self.training else frame
        return torch.stack(frames, dim=1).view(b, self.cfg.frames, self.cfg.height, self.cfg.width, 3)


def background_field(dec: nn.Module, z: Tensor, first_frame: Tensor, heads: nn.Module | None = None) -> Tensor:
    """[B, 3, H, W]: a drawing decoder's scene from z (a field at a quarter of the frame's size, so plain or
    gradient), corrected by the first frame pooled to that size (zeros, and so no correction, for
    sentence-to-video). `dec` holds bg_from_z, bg_from_first, grid and cfg; `heads`, where given, its own bg_from_z."""
    b = z.size(0)
    pooled = F.avg_pool2d(first_frame.permute(0, 3, 1, 2), 4, ceil_mode=True).reshape(b, -1)
    bg = torch.sigmoid((heads or dec).bg_from_z(z) + dec.bg_from_first(pooled)).view(b, 3, *dec.grid)
    return F.interpolate(bg, size=(dec.cfg.height, dec.cfg.width), mode="bilinear", align_corners=False)


# core/frames.py letterboxes with exact black; a decoded picture is never that dark from edge to edge.
BAR_LEVEL = 1.0 / 255.0


def has_first_frame(first_frame: Tensor) -> Tensor:
    """[B] bool: the row has a first frame (video-to-video, the rebuild); sentence-to-video's rows are all zeros."""
    return first_frame.flatten(1).abs().amax(dim=1) > 0


def picture_mask(first_frame: Tensor) -> Tensor:
    """[B, H, W]: 0 on a letterboxed first frame's bars (rows or columns black from edge to edge), 1 elsewhere, and
    1 everywhere for a clip without a first frame (sentence-to-video). Float ops only, for ONNX."""
    dark = (first_frame.amax(dim=-1) < BAR_LEVEL).to(first_frame.dtype)  # B, H, W
    bars = torch.maximum(dark.amin(dim=2, keepdim=True), dark.amin(dim=1, keepdim=True))
    return 1.0 - bars * has_first_frame(first_frame).to(first_frame.dtype).view(-1, 1, 1)


# first_frame_scene: a first-frame pixel this far (RGB distance, 0-1) from its picture's mean colour is taken for an
# object (the video probe reads objects at 0.25 from the background), and the objects' pixels are grown by a pixel on
# each side (their soft edges); the holes are filled by SCENE_PASSES box blurs of SCENE_BLUR pixels of the rest.
SCENE_FAR, SCENE_GROW, SCENE_BLUR, SCENE_PASSES = 0.2, 3, 9, 3


def first_frame_scene(first_frame: Tensor, alpha0: Tensor, drawn: Tensor) -> Tensor:
    """[B, 3, H, W] what video-to-video draws its sprite over: the first frame ([B, H, W, 3]) where no object is, and
    where one is (a pixel far from the picture's mean colour, or under the first frame's sprite, alpha0 [B, 1, H,
    W]) the rest of the picture blurred into the hole; `drawn` (the decoder's own background) where no picture is
    near, and for rows without a first frame. Fixed arithmetic, no weights: measured on quality-v16's decoder, the
    outside files' reconstructions read colour / shape / motion 70.0 / 66.2 / 75.0 over the drawn background and
    87.5 / 78.8 / 90.0 over this one (docs/figures/first_frame_scene.png)."""
    img = first_frame.permute(0, 3, 1, 2)
    picture = picture_mask(first_frame).unsqueeze(1)  # B, 1, H, W
    mean = (img * picture).sum(dim=(2, 3), keepdim=True) / picture.sum(dim=(2, 3), keepdim=True).clamp(min=1.0)
    far = ((img - mean).norm(dim=1, keepdim=True) > SCENE_FAR).to(img.dtype)
    hole = torch.maximum(F.max_pool2d(far, SCENE_GROW, 1, SCENE_GROW // 2), (alpha0 > 0.05).to(img.dtype))
    scene = fill_holes(img, (1.0 - hole) * picture, drawn)
    return torch.where(has_first_frame(first_frame).view(-1, 1, 1, 1), scene, drawn)


def fill_holes(img: Tensor, keep: Tensor, fallback: Tensor) -> Tensor:
    """[B, 3, H, W]: img where keep [B, 1, H, W] is 1, and elsewhere the kept pixels blurred into the hole
    (SCENE_PASSES box blurs of SCENE_BLUR pixels); `fallback` where no kept pixel is near."""
    total, weight = img * keep, keep
    for _ in range(SCENE_PASSES):
        total = F.avg_pool2d(total, SCENE_BLUR, 1, SCENE_BLUR // 2, count_include_pad=False)
        weight = F.avg_pool2d(weight, SCENE_BLUR, 1, SCENE_BLUR // 2, count_include_pad=False)
    fill = torch.where(weight > 1e-3, total / weight.clamp(min=1e-6), fallback)
    return keep * img + (1.0 - keep) * fill


# clear_track: the pixels the sprite covers in any frame (alpha above 0.05), grown by TRACK_GROW pixels on each side:
# the smear is drawn at a quarter of the frame's size and upsampled, so it reaches past the sprite's own edge (at 4, a
# still object kept a halo: 50 of 2,668 sentence-to-video clips stained past model/probes.py STAIN_CLEAN; at 6 and 8
# none of them, shape the same).
TRACK_GROW = 8


def clear_track(drawn: Tensor, alpha: Tensor) -> Tensor:
    """[B, 3, H, W]: a background drawn from z (`drawn`) with the sprite's whole track (alpha [B, T, 1, H, W], every
    frame's) filled from the rest of it (fill_holes): what sentence-to-video draws its sprite over
    (ModelConfig.clear_sentence_track), without the smear of the object a background learns along its track."""
    track = (alpha.amax(dim=1) > 0.05).to(drawn.dtype)  # B, 1, H, W
    keep = 1.0 - F.max_pool2d(track, 2 * TRACK_GROW + 1, 1, TRACK_GROW)
    # Deep inside a wide track no kept pixel is near: the rest's mean colour there, not the smear itself.
    kept = keep.sum(dim=(2, 3), keepdim=True)
    rest = (drawn * keep).sum(dim=(2, 3), keepdim=True) / kept.clamp(min=1.0)
    return fill_holes(drawn, keep, torch.where(kept > 0, rest, drawn))


def pixel_centres(size: int) -> Tensor:
    """[size]: each pixel's centre along one side in [-1, 1] (grid_sample's align_corners=False convention)."""
    return (torch.arange(size) + 0.5) / size * 2 - 1


def coordinate_planes(height: int, width: int) -> Tensor:
    """[1, 2, H, W]: x and y of each pixel's centre in [-1, 1] (grid_sample's align_corners=False convention)."""
    ys = pixel_centres(height).view(1, 1, -1, 1).expand(1, 1, height, width)
    xs = pixel_centres(width).view(1, 1, 1, -1).expand(1, 1, height, width)
    return torch.cat([xs, ys], dim=1)


def bilinear_taps(pos: Tensor, size: int) -> Tensor:
    """[..., size]: each of `size` pixels' weight in a bilinear sample at pos [...] (grid_sample's normalised
    coordinates, align_corners=False, zeros padding): the hat max(0, 1 - |p - i|) at p = ((pos + 1) size - 1) / 2
    pixels; pixels past either end weigh nothing, as grid_sample's zeros."""
    p = ((pos + 1) * size - 1) / 2
    return torch.relu(1 - (p.unsqueeze(-1) - torch.arange(size, dtype=pos.dtype, device=pos.device)).abs())


def sample_separable(images: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """[..., C, H, W]: images [..., C, h, w] sampled bilinearly at (xs[j], ys[i]) for columns xs [..., W] and rows
    ys [..., H] (normalised coordinates, as grid_sample's): grid_sample's values on a grid that scales and
    translates without rotating, as two matrix products (a row's weights times the image times the columns'). In
    onnxruntime 0.28x GridSample's cost for the sprite's placement (docs/performance.md), equal to float rounding;
    broadcasting over the leading axes places one sprite in every frame without copying it."""
    rows = bilinear_taps(ys, images.size(-2)).unsqueeze(-3)  # [..., 1, H, h]
    columns = bilinear_taps(xs, images.size(-1)).unsqueeze(-3)  # [..., 1, W, w]
    return rows @ images @ columns.transpose(-1, -2)


def add_draw_heads(module: nn.Module, cfg: ModelConfig, first_frame_layers: bool = False) -> None:
    """The layers a sprite decoder draws from z with: the background's field, the sprite (seed, two convolutions
    and the glimpse's) and the track's LSTM; `first_frame_layers` adds the decoder's readers of the first frame in
    their place (the creation order, and so a seed's initial weights, as before the sentence heads)."""
    c, size = cfg.draw_channels, cfg.sprite_size
    cells = (-(-cfg.height // 4)) * (-(-cfg.width // 4))
    module.bg_from_z = nn.Linear(cfg.latent_dim, 3 * cells)
    if first_frame_layers:
        module.bg_from_first = nn.Linear(3 * cells, 3 * cells)
        module.locate = nn.Sequential(nn.Conv2d(5, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1),
                                      nn.ReLU(), nn.Conv2d(c, 2, 1))  # where (logits over positions) and how large
    module.sprite_seed = nn.Linear(cfg.latent_dim, c * max(1, size // 4) ** 2)
    module.sprite_mid = nn.Conv2d(c, c, 3, padding=1)
    module.sprite_glimpse = nn.Conv2d(c + 3, c, 3, padding=1)
    module.sprite_out = nn.Conv2d(c, 4, 3, padding=1)
    module.init = nn.Linear(cfg.latent_dim, 2 * cfg.hidden)
    module.cell = nn.LSTMCell(cfg.latent_dim + 4 + 3, cfg.hidden)
    module.pose_out = nn.Linear(cfg.hidden, 3)


class DrawHeads(nn.Module):
    """Sentence-to-video's own drawing heads (ModelConfig.sentence_heads). One set of heads for both video tasks
    learnt video-to-video (the first frame's glimpse and anchor) and kept sentence-to-video at chance on shape: with
    the encoders frozen (quality-v8), 2,000 steps of both tasks together left it at 0.20, the same steps on
    sentences alone reached 0.57 but lost reconstruct's colour (0.84 -> 0.65)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        add_draw_heads(self, cfg)


class SpriteVideoDecoder(nn.Module):
    """The object drawn once, moved along a track: frame_t = alpha * sprite + (1 - alpha) * background, the
    sprite (RGB + alpha, sprite_size^2) placed at pose_t = (centre x, centre y, radius) by a spatial transformer.

    The synthetic world (and the caption it is asked for) is one object of fixed appearance moved and scaled over a
    background: a decoder that draws it once keeps its shape sharp by construction and makes the track an explicit
    output that can be trained and checked (the "layers" decoder redrew a blob each frame). One z still decodes
    everything:
    - background: from z, corrected by the first frame (as the "layers" decoder);
    - anchor: where the first frame's object is and how large (a small CNN, soft-argmax over positions); zeros in,
      a constant out, for sentence-to-video, which a `has_first` flag tells the track;
    - sprite: from z at a quarter of its size, upsampled by convolutions; for video-to-video the first frame's
      glimpse at the anchor joins the last convolutions (its exact colour and edges);
    - track: an LSTM over time reading z, the anchor and its previous pose; poses are offsets from the anchor
      when there is a first frame, absolute (a centred track, as the sentence-only targets) when there is not.
    The sampling grid is the scale-and-translate affine_grid written out (x - cx) / sx: two ops in ONNX instead of
    AffineGrid (opset 20), and no rotation, which the data never has.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.grid = (-(-cfg.height // 4), -(-cfg.width // 4))
        add_draw_heads(self, cfg, first_frame_layers=True)  # video-to-video's: named as before, older checkpoints load
        self.seed_size = max(1, cfg.sprite_size // 4)
        self.sentence = DrawHeads(cfg) if cfg.sentence_heads else None
        self.register_buffer("coords", coordinate_planes(cfg.height, cfg.width), persistent=False)
        self.register_buffer("columns", pixel_centres(cfg.width), persistent=False)
        self.register_buffer("rows", pixel_centres(cfg.height), persistent=False)
        self.register_buffer("sprite_line", pixel_centres(cfg.sprite_size), persistent=False)

    def seed_sentence_heads(self) -> None:
        """Start sentence-to-video's heads as copies of video-to-video's (a model trained without them)."""
        if self.sentence is not None:
            own = self.state_dict()
            self.sentence.load_state_dict({name: own[name] for name in self.sentence.state_dict()})

    def anchor(self, first_frame: Tensor) -> tuple[Tensor, Tensor]:
        """([B, 3] the first frame's object pose (x, y, radius), [B, 1] 1 where there is a first frame)."""
        b = first_frame.size(0)
        img = first_frame.permute(0, 3, 1, 2)
        maps = self.locate(torch.cat([img - 0.5, self.coords.expand(b, -1, -1, -1)], dim=1)).flatten(2)  # B, 2, N
        weights = torch.softmax(maps[:, 0], dim=-1)  # B, N
        xy = torch.bmm(weights.unsqueeze(1), self.coords.flatten(2).expand(b, -1, -1).transpose(1, 2)).squeeze(1)
        radius = F.softplus((weights * maps[:, 1]).sum(-1, keepdim=True))
        has_first = has_first_frame(first_frame).to(first_frame.dtype).unsqueeze(1)  # B, 1
        return torch.cat([xy, radius], dim=-1) * has_first, has_first

    def half_sides(self, radius: Tensor) -> tuple[Tensor, Tensor]:
        """(x, y, each radius' shape [...]): a sprite's half-sides in the frame's [-1, 1] coordinates for radii in
        half-heights (the sprite's half-side is SPRITE_MARGIN radii; a half-height is fewer units of x than of y)."""
        half_y = SPRITE_MARGIN * radius
        return half_y * (self.cfg.height / self.cfg.width), half_y

    def place(self, sprite: Tensor, pose: Tensor) -> Tensor:
        """[..., 4, H, W]: sprites [..., 4, S, S] placed in the frame at poses [..., 3] (the leading axes broadcast:
        one sprite [B, 1, ...] at each of a clip's poses [B, T, 3]). A frame pixel (x, y) shows the sprite's point
        ((x - cx) / half_x, (y - cy) / half_y): scale and translate, so the sampling is separable."""
        half_x, half_y = self.half_sides(pose[..., 2].clamp(min=1e-3))
        u = (self.columns - pose[..., :1]) / half_x.unsqueeze(-1)  # [..., W]
        v = (self.rows - pose[..., 1:2]) / half_y.unsqueeze(-1)  # [..., H]
        return sample_separable(sprite, u, v)

    def sprite(self, heads: nn.Module, z: Tensor, anchor: Tensor, has_first: Tensor, first_frame: Tensor) -> Tensor:
        """[B, 4, S, S] in [0, 1]: RGB and alpha, drawn by `heads` (self or self.sentence)."""
        b, size = z.size(0), self.cfg.sprite_size
        x = heads.sprite_seed(z).view(b, -1, self.seed_size, self.seed_size)
        x = F.interpolate(torch.relu(x), size=(size // 2, size // 2), mode="bilinear", align_corners=False)
        x = F.interpolate(torch.relu(heads.sprite_mid(x)), size=(size, size), mode="bilinear", align_corners=False)
        # The first frame seen through the anchor, on the sprite's pixels: sprite pixel (u, v) is the frame point
        # anchor + half-side * (u, v), the inverse of place's map.
        half_x, half_y = self.half_sides(anchor[:, 2:].clamp(min=0.05))  # [B, 1]
        glimpse = sample_separable(first_frame.permute(0, 3, 1, 2), anchor[:, :1] + self.sprite_line * half_x,
                                   anchor[:, 1:2] + self.sprite_line * half_y) * has_first.view(b, 1, 1, 1)
        x = torch.relu(heads.sprite_glimpse(torch.cat([x, glimpse], dim=1)))
        return torch.sigmoid(heads.sprite_out(x))

    def track(self, heads: nn.Module, z: Tensor, anchor: Tensor, has_first: Tensor) -> Tensor:
        """[B, T, 3] poses by `heads`: centre x, y in [-1, 1] of the frame, radius in half-heights."""
        h, c = torch.tanh(heads.init(z)).chunk(2, dim=-1)
        prev, poses = anchor, []
        for _ in range(self.cfg.frames):
            h, c = heads.cell(torch.cat([z, anchor, has_first, prev], dim=-1), (h, c))
            out = heads.pose_out(h)
            xy = anchor[:, :2] + 1.5 * torch.tanh(out[:, :2])  # anchor is zeros without a first frame
            radius = 0.05 + 1.2 * torch.sigmoid(out[:, 2:])
            prev = torch.cat([xy, radius], dim=-1)
            poses.append(prev)
        return torch.stack(poses, dim=1)

    def shape_and_track(self, z: Tensor, first_frame: Tensor,
                        sentence_rows: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """(sprite [B, 4, S, S], poses [B, T, 3], anchor [B, 3]): what is drawn and where, without drawing it.
        `sentence_rows=False`: every row has a first frame, and sentence-to-video's heads are not run."""
        anchor, has_first = self.anchor(first_frame)
        sprite, poses = self.sprite(self, z, anchor, has_first, first_frame), self.track(self, z, anchor, has_first)
        if self.sentence is not None and sentence_rows:  # each row from its own kind's heads
            first = has_first > 0
            sprite = torch.where(first.view(-1, 1, 1, 1), sprite,
                                 self.sprite(self.sentence, z, anchor, has_first, first_frame))
            poses = torch.where(first.view(-1, 1, 1), poses, self.track(self.sentence, z, anchor, has_first))
        return sprite, poses, anchor

    def background(self, z: Tensor, first_frame: Tensor, sentence_rows: bool = True) -> Tensor:
        """[B, 3, H, W]: the scene behind the sprite (sentence-to-video's from its own heads)."""
        bg = background_field(self, z, first_frame)
        if self.sentence is None or not sentence_rows:
            return bg
        return torch.where(has_first_frame(first_frame).view(-1, 1, 1, 1), bg,
                           background_field(self, z, first_frame, self.sentence))

    def draw(self, z: Tensor, first_frame: Tensor, sentence_rows: bool = True, scene: bool = True,
             stride: int = 1) -> tuple[Tensor, Tensor, Tensor]:
        """(frames [B, T, H, W, 3], sprite [B, 4, S, S], poses [B, T, 3]); `sentence_rows` as shape_and_track;
        `scene` False: over the decoder's own background even where cfg.first_frame_background asks for the first
        frame's (the familiarity rebuild); `stride` > 1: only the frames core.config.rebuilt_frames names are drawn
        (the track still runs through every frame: the same poses, so the same pixels as a full draw's)."""
        cfg = self.cfg
        sprite, poses, _ = self.shape_and_track(z, first_frame, sentence_rows)
        drawn = poses if stride == 1 else poses[:, rebuilt_frames(cfg.frames, stride)]  # no Slice in other graphs
        layer = self.place(sprite.unsqueeze(1), drawn)  # [B, T, 4, H, W]
        bg = self.background(z, first_frame, sentence_rows)
        if cfg.first_frame_background and scene:
            bg = first_frame_scene(first_frame, layer[:, 0, 3:], bg)
        if cfg.clear_sentence_track and sentence_rows:
            bg = torch.where(has_first_frame(first_frame).view(-1, 1, 1, 1), bg, clear_track(bg, layer[:, :, 3:]))
        bg = bg.unsqueeze(1)
        alpha = layer[:, :, 3:]
        frames = alpha * layer[:, :, :3] + (1.0 - alpha) * bg
        if cfg.exact_bars:
            frames = frames * picture_mask(first_frame)[:, None, None]
        return frames.permute(0, 1, 3, 4, 2), sprite, poses

    def forward(self, z: Tensor, first_frame: Tensor) -> Tensor:
        return self.draw(z, first_frame)[0]

    def rebuild(self, z: Tensor, first_frame: Tensor) -> Tensor:
        """Video-to-video's frames only (every row has a first frame), without running sentence-to-video's heads, over
        the decoder's own background (the familiarity score's rebuild: core/graph_contract.py VIDEO_REBUILD): the
        pixels it misses are what the latent does not explain. Without cfg.first_frame_background, forward's rows;
        every cfg.rebuild_stride-th of them."""
        return self.draw(z, first_frame, sentence_rows=False, scene=False, stride=self.cfg.rebuild_stride)[0]


def has_rebuild_graph(cfg: ModelConfig) -> bool:
    """Whether a model exports a rebuild graph apart from its video decoder: only where they differ (a sprite decoder
    with sentence-to-video's own heads, drawing video-to-video over the first frame's scene, or rebuilding every n-th
    frame)."""
    return cfg.video_output and cfg.video_decoder == "sprite" and (cfg.sentence_heads or cfg.first_frame_background
                                                                   or cfg.rebuild_stride > 1)


@dataclass
class Latent:
    mu: Tensor
    sigma: Tensor

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + self.sigma * eps

    def kl(self) -> Tensor:
        """KL(N(mu, sigma) || N(0, I)), summed over latent dims, mean over the batch."""
        var = self.sigma.pow(2)
        return 0.5 * (self.mu.pow(2) + var - 1.0 - torch.log(var)).sum(-1).mean()


SIGMA_HAT_INIT = -4.0


class StarModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.vocab_size <= 4:
            raise ValueError("ModelConfig.vocab_size must be set from the vocabulary")
        self.cfg = cfg
        self.video_encoder: nn.Module = FrameEncoder(cfg) if cfg.video_input == "frames" else FeatureEncoder(cfg)
        self.sentence_encoder = SentenceEncoder(cfg)
        self.to_mu = nn.Linear(2 * cfg.x_dim, cfg.latent_dim)
        self.to_sigma_hat = nn.Linear(2 * cfg.x_dim, cfg.latent_dim)
        # Start with little noise (sigma ~ 0.14): the KL term widens sigma as far as the data allows.
        nn.init.constant_(self.to_sigma_hat.bias, SIGMA_HAT_INIT)
        self.sentence_decoder = SentenceDecoder(cfg)
        self.video_decoder: nn.Module | None = None
        if cfg.video_output:
            self.video_decoder = SpriteVideoDecoder(cfg) if cfg.video_decoder == "sprite" else VideoDecoder(cfg)

    def encode(self, video: Tensor | None = None, tokens: Tensor | None = None, lengths: Tensor | None = None,
               mask_v: Tensor | None = None, mask_s: Tensor | None = None) -> Latent:
        """x = [L2norm(x_v); L2norm(x_s)] -> (mu, sigma). A None input is inactive and never computed;
        masks ([B] floats) switch channels per sample during partial-model learning."""
        x_v, x_s = self.features(video, tokens, lengths)
        return self.posterior(switch(x_v, mask_v), switch(x_s, mask_s))

    def features(self, video: Tensor | None, tokens: Tensor | None, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """(L2norm(x_v), L2norm(x_s)); an input left as None gives zeros and is never computed."""
        if video is None and tokens is None:
            raise ValueError("at least one input channel must be on")
        b = (video if video is not None else tokens).size(0)
        ref = next(self.parameters())
        zeros = torch.zeros(b, self.cfg.x_dim, dtype=ref.dtype, device=ref.device)
        x_v = l2norm(self.video_encoder(video)) if video is not None else zeros
        x_s = l2norm(self.sentence_encoder(tokens, lengths)) if tokens is not None else zeros
        return x_v, x_s

    def posterior(self, x_v: Tensor, x_s: Tensor) -> Latent:
        x = torch.cat([x_v, x_s], dim=-1)
        return Latent(self.to_mu(x), torch.exp(self.to_sigma_hat(x) / 2.0))

    def decode_video(self, z: Tensor, first_frame: Tensor | None = None) -> Tensor:
        if self.video_decoder is None:
            raise ValueError("this model has no video output channel (trained on features only)")
        if first_frame is None:
            first_frame = z.new_zeros(z.size(0), self.cfg.height, self.cfg.width, 3)
        return self.video_decoder(z, first_frame)

    def rebuild_video(self, z: Tensor, first_frame: Tensor) -> Tensor:
        """The familiarity score's rebuild (every row has a first frame): the sprite decoder's rebuild, which keeps
        its own background (core/graph_contract.py VIDEO_REBUILD), else decode_video's frames."""
        if isinstance(self.video_decoder, SpriteVideoDecoder):
            return self.video_decoder.rebuild(z, first_frame)
        return self.decode_video(z, first_frame)

    # -- sentence search: the same algorithms the ONNX engine runs, so parity is token for token --
    @torch.no_grad()
    def generate_sentences(self, z: Tensor, beam_size: int = 1, max_len: int | None = None) -> list[list[int]]:
        """Word ids per row of z: greedy at beam 1, beam search above."""
        dec = self.sentence_decoder
        max_len = resolve_max_len(max_len, self.cfg.max_words)

        def step(tokens: list[int], state: tuple[Tensor, ...]) -> tuple[np.ndarray, tuple[Tensor, ...]]:
            h, c, zs = state
            lp, h2, c2 = dec.step(torch.tensor(tokens, dtype=torch.long, device=z.device), h, c, zs)
            return lp.cpu().numpy(), (h2, c2, zs)

        state = dec.init_state(z)
        if beam_size <= 1:
            return greedy_search(step, state, z.size(0), max_len)
        return beam_search(step, state, z.size(0), beam_size, max_len,
                           select=lambda s, idx: s[:, torch.as_tensor(idx, dtype=torch.long, device=z.device)])
