"""Robustness to real encoders and real players: what an ordinary upload does to a clip that the
generator never does.

* `augment_batch(video, gen, strength)`: cheap, on-the-fly, torch, applied to a training batch
  (float [B, T, H, W, 3] in [0, 1]). Per clip, each of a list of degradations is applied with its own
  probability (a clip can get several): frame-rate changes (repeat / drop frames, T kept), letter- and
  pillarboxing, downscale-then-upscale, mild colour jitter, blur, chroma subsampling, JPEG-like block
  quantisation, GIF-like palette quantisation (with ordered dithering) and camera-like noise.
  Never a mirror, a flip or time running backwards (they change left / right / up / down), and colour
  changes stay small enough that a canonical colour stays nearest to itself (hue shifts < 8 degrees).
* A real lossy codec run in memory and decoded back, precomputed for a share of the training clips at data time:
  model/data/codecs.py (`codec_roundtrip`, `roundtrip_corpus_share`).

Torch is imported inside the torch functions only.
"""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# --------------------------------------------------------------------------- on-the-fly (torch)

# Probability of each degradation per clip at strength 1 (scaled by strength, capped at 1).
PROBS: dict[str, float] = {
    "temporal": 0.3,
    "letterbox": 0.12,
    "rescale": 0.2,
    "colour": 0.45,
    "blur": 0.15,
    "chroma": 0.25,
    "jpeg": 0.05,
    "quantise": 0.1,
    "noise": 0.25,
}
OPS: tuple[str, ...] = tuple(PROBS)
N_PARAMS = 8  # uniforms drawn per clip and op, whether it is applied or not (fixed consumption)
MAX_HUE_DEGREES = 8.0

# RGB <-> YCbCr (BT.601 full range, as JPEG) and RGB <-> YIQ (hue rotation).
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], np.float32)
_BAYER4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32)
# The JPEG standard's luminance and chrominance tables (Annex K), on the 0..255 scale.
_JPEG_Y = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
_JPEG_C = np.full((8, 8), 99, np.float32)
_JPEG_C[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


def augment_batch(video: "torch.Tensor", gen: "torch.Generator", strength: float = 1.0,
                  probs: dict[str, float] | None = None, return_applied: bool = False
                  ) -> "torch.Tensor | tuple[torch.Tensor, torch.Tensor]":
    """Randomly degrade each clip of a float [B, T, H, W, 3] batch in [0, 1] like a real encoder would.

    Returns a new tensor of the same shape and dtype in [0, 1] (its memory is planar, [B, T, 3, H, W],
    so it is not contiguous: call .contiguous() if you need that); `video` is not modified. CPU only (as
    make_batch builds batches). Deterministic given the state of `gen` (a CPU torch.Generator).
    `strength` scales every probability (capped at 1) and every magnitude; 0 returns `video` itself.
    `probs` overrides entries of `PROBS` (e.g. to switch one degradation off with 0). With
    `return_applied`, also returns a bool [B, len(OPS)] tensor of the ops each clip got (logs, tests).

    Internally the batch is planar ([B, T, 3, H, W]): per-channel arithmetic on the interleaved layout
    is several times slower in torch on CPU than one transpose each way.
    """
    import torch

    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"video must be [B, T, H, W, 3], got {tuple(video.shape)}")
    if strength <= 0:
        none = torch.zeros(video.shape[0], len(OPS), dtype=torch.bool)
        return (video, none) if return_applied else video
    p = {**PROBS, **(probs or {})}
    b = video.shape[0]
    s = float(strength)
    # Which ops each clip gets, and their parameters: drawn for every clip and op, so the stream of
    # random numbers does not depend on which ops fired (noise and stutter are drawn only where used).
    fire = torch.rand(b, len(OPS), generator=gen)
    params = torch.rand(b, len(OPS), N_PARAMS, generator=gen)
    applied = fire < torch.tensor([min(1.0, p[name] * s) for name in OPS])
    chosen = [(k, name, torch.nonzero(applied[:, k]).flatten()) for k, name in enumerate(OPS)]
    chosen = [c for c in chosen if len(c[2])]
    if not chosen:
        return (video.clone(), applied) if return_applied else video.clone()
    x = _planar(video)  # a copy: the input is never written
    for k, name, sel in chosen:
        if len(sel) == b:
            x = _APPLY[name](x, params[:, k], s, gen)
        else:
            x.index_copy_(0, sel, _APPLY[name](x.index_select(0, sel), params[sel, k], s, gen))
    # Back to [B, T, H, W, 3] as a strided view of planar memory (no transposing copy): the frame
    # encoder permutes to [B, T, 3, H, W] first thing, which is then free.
    out = torch.clamp(x, 0.0, 1.0).permute(0, 1, 3, 4, 2).to(video.dtype)
    return (out, applied) if return_applied else out


def _planar(video: "torch.Tensor") -> "torch.Tensor":
    """[B, T, H, W, 3] -> a new contiguous float32 [B, T, 3, H, W] (numpy's transposing copy is about
    twice as fast as torch's on CPU)."""
    import torch

    if video.device.type == "cpu" and video.dtype == torch.float32 and not video.requires_grad:
        return torch.from_numpy(np.ascontiguousarray(video.numpy().transpose(0, 1, 4, 2, 3)))
    return video.float().permute(0, 1, 4, 2, 3).contiguous()


# Every op below takes planar clips x [n, T, 3, H, W] in (about) [0, 1], their uniforms u [n, N_PARAMS],
# the strength and the generator, and returns a new [n, T, 3, H, W] tensor.

def _temporal(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """Frame-rate change: play at rate r in [0.6, 1.4] (frames repeat or are skipped; the clip starts
    later or holds its last frame), sometimes with stutter. Indices never decrease: time runs forward."""
    import torch

    n, t = x.shape[:2]
    r = (1.0 + (u[:, 0] * 2 - 1) * 0.4 * min(s, 1.0)).clamp(0.6, 1.4)
    span = (t - 1) * r
    start = u[:, 1] * (t - 1 - span).clamp(min=0) + (u[:, 1] - 1) * (span - (t - 1)).clamp(min=0)
    pos = start[:, None] + torch.arange(t, dtype=torch.float32)[None] * r[:, None]
    stutter = (u[:, 2] < 0.4)[:, None] * (torch.rand(n, t, generator=gen) - 0.5) * 1.5
    idx = torch.round(pos + stutter).clamp(0, t - 1).long()
    idx = torch.cummax(idx, dim=1).values
    flat = (torch.arange(n)[:, None] * t + idx).flatten()
    return x.reshape(n * t, -1).index_select(0, flat).view(x.shape)


@functools.lru_cache(maxsize=512)
def _resize_matrix(n_in: int, n_out: int, mode: str) -> "torch.Tensor":
    """The [n_out, n_in] matrix of torch's 1-D resampling (mode 'area' = antialiased bilinear,
    'bilinear', 'nearest' = nearest-exact): resizing is separable, so a frame resizes as R_h X R_w^T,
    two matmuls with a wide inner size, much faster on CPU than F.interpolate per clip."""
    import torch
    import torch.nn.functional as F

    eye = torch.eye(n_in).view(n_in, 1, 1, n_in)
    if mode == "nearest":
        out = F.interpolate(eye, size=(1, n_out), mode="nearest-exact")
    else:
        out = F.interpolate(eye, size=(1, n_out), mode="bilinear", align_corners=False, antialias=mode == "area")
    return out.view(n_in, n_out).T.contiguous()


def _apply_separable(x: "torch.Tensor", mh: "torch.Tensor", mw: "torch.Tensor") -> "torch.Tensor":
    """Planar clips x [n, T, 3, H, W] -> [n, T, 3, H', W'] = mh[i] @ frame @ mw[i]^T per clip i
    (mh [n, H', H], mw [n, W', W])."""
    n, t, c, h, w = x.shape
    y = x.reshape(n, t * c * h, w) @ mw.transpose(1, 2)  # [n, T*3*H, W']
    y = mh[:, None] @ y.view(n, t * c, h, -1)  # [n, T*3, H', W']
    return y.view(n, t, c, mh.shape[1], mw.shape[1])


def _letterbox(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """The whole picture squeezed (area-averaged) into a centred sub-rectangle with bars (black, grey
    or a dull tint), as when a video of another aspect ratio is fitted to the frame. Nothing is cropped."""
    import torch

    n, t, _, h, w = x.shape
    mh, mw = torch.zeros(n, h, h), torch.zeros(n, w, w)
    inside = torch.zeros(n, 1, 1, h, w)
    bars = torch.zeros(n, 3)
    for i in range(n):
        kind = int(u[i, 0] * 3)  # 0 letterbox (bars top/bottom), 1 pillarbox, 2 both
        squeeze = 1.0 - (0.1 + 0.3 * float(u[i, 1])) * min(s, 1.0)
        hh = max(2, round(h * squeeze)) if kind in (0, 2) else h
        ww = max(2, round(w * squeeze)) if kind in (1, 2) else w
        if float(u[i, 2]) >= 0.8:  # a dull tint, like a player's or an editor's background
            bars[i] = (0.2 + 0.5 * u[i, 3] + (u[i, 4:7] - 0.5) * 0.25).clamp(0, 1)
        elif float(u[i, 2]) >= 0.6:
            bars[i] = float(u[i, 3]) * 0.5  # grey; black otherwise
        y0 = (h - hh) // 2 + (round(float(u[i, 7]) * 2 - 1) if h - hh >= 2 else 0)
        x0 = (w - ww) // 2
        mh[i, y0:y0 + hh] = _resize_matrix(h, hh, "area")
        mw[i, x0:x0 + ww] = _resize_matrix(w, ww, "area")
        inside[i, 0, 0, y0:y0 + hh, x0:x0 + ww] = 1.0
    out = _apply_separable(x, mh, mw)
    return out.add_((1.0 - inside) * bars.view(n, 1, 3, 1, 1))


_RESCALE_FACTORS = (0.35, 0.45, 0.55, 0.7)


def _rescale(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """Down to 35-70% of the size (less at strength < 1) and back up, with a random pair of scaling
    filters (down: area / bilinear / nearest; up: nearest / bilinear)."""
    import torch

    n, t, _, h, w = x.shape
    mh, mw = torch.empty(n, h, h), torch.empty(n, w, w)
    for i in range(n):
        f = _RESCALE_FACTORS[int(u[i, 0] * len(_RESCALE_FACTORS))]
        f = 1.0 - (1.0 - f) * min(s, 1.0)
        sh, sw = max(2, round(h * f)), max(2, round(w * f))
        down = ("area", "bilinear", "nearest")[int(u[i, 1] * 3)]
        up = "nearest" if u[i, 2] < 0.5 else "bilinear"
        mh[i] = _resize_matrix(sh, h, up) @ _resize_matrix(h, sh, down)
        mw[i] = _resize_matrix(sw, w, up) @ _resize_matrix(w, sw, down)
    return _apply_separable(x, mh, mw)


def _linear3(x: "torch.Tensor", m: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Per clip colour transform on planar clips: out[:, :, c] = sum_k m[:, c, k] x[:, :, k] + b[:, c]
    (m [n, 3, 3], b [n, 3]): three broadcast multiply-adds over contiguous planes."""
    import torch

    col = lambda k: m[:, :, k].reshape(-1, 1, 3, 1, 1)  # noqa: E731
    out = torch.addcmul(b.reshape(-1, 1, 3, 1, 1), x[:, :, 0:1], col(0))
    out.addcmul_(x[:, :, 1:2], col(1))
    out.addcmul_(x[:, :, 2:3], col(2))
    return out


def _colour(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """Brightness, contrast, saturation, white balance and a hue rotation, all mild (a red ball stays
    red), folded into one 3x3 matrix and offset per clip."""
    import torch

    m = min(s, 1.0)
    n = x.shape[0]
    v = lambda j, half: 1.0 + (u[:, j] * 2 - 1) * half * m  # noqa: E731
    bright, contrast, sat = v(0, 0.15), v(1, 0.15), v(2, 0.25)
    gains = 1.0 + (u[:, 3:6] * 2 - 1) * 0.04 * m
    theta = (u[:, 6] * 2 - 1) * math.radians(MAX_HUE_DEGREES) * m
    yiq = torch.from_numpy(_YIQ)
    inv = torch.linalg.inv(yiq)
    # In YIQ: Y -> c*b*Y + (1-c)*b*mean(Y); (I, Q) -> rotation(theta) * sat*c*b.
    a = torch.zeros(n, 3, 3)
    a[:, 0, 0] = contrast * bright
    cs = sat * contrast * bright
    a[:, 1, 1], a[:, 1, 2] = torch.cos(theta) * cs, -torch.sin(theta) * cs
    a[:, 2, 1], a[:, 2, 2] = torch.sin(theta) * cs, torch.cos(theta) * cs
    mean_y = x.mean(dim=(1, 3, 4)) @ yiq[0]
    off = torch.zeros(n, 3)
    off[:, 0] = (1 - contrast) * bright * mean_y
    mat = gains[:, :, None] * (inv @ a @ yiq)
    bias = gains * (off @ inv.T)
    return _linear3(x, mat, bias).clamp_(0, 1)


def _blur(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """A separable 3-tap gaussian (sigma 0.4-1.0 px) or box blur, edges replicated."""
    import torch

    sigma = 0.4 + 0.6 * u[:, 0] * min(s, 1.0)
    side = torch.exp(-1.0 / (2 * sigma**2))
    side = torch.where(u[:, 1] < 0.3, torch.ones_like(side), side)  # box
    w0 = (1.0 / (1.0 + 2 * side)).view(-1, 1, 1, 1, 1)
    w1 = (side / (1.0 + 2 * side)).view(-1, 1, 1, 1, 1)
    for dim in (3, 4):
        y = x * w0
        n = x.shape[dim]
        if n > 1:
            y.narrow(dim, 1, n - 1).addcmul_(x.narrow(dim, 0, n - 1), w1)
            y.narrow(dim, 0, n - 1).addcmul_(x.narrow(dim, 1, n - 1), w1)
        y.narrow(dim, 0, 1).addcmul_(x.narrow(dim, 0, 1), w1)
        y.narrow(dim, n - 1, 1).addcmul_(x.narrow(dim, n - 1, 1), w1)
        x = y
    return x


def _pad_to(x: "torch.Tensor", hp: int, wp: int) -> "torch.Tensor":
    """Planar clips padded (edge replicated) at the bottom and right to hp x wp."""
    import torch

    h, w = x.shape[-2:]
    if hp != h:
        x = x.index_select(3, torch.arange(hp).clamp(max=h - 1))
    if wp != w:
        x = x.index_select(4, torch.arange(wp).clamp(max=w - 1))
    return x


def _luma(x: "torch.Tensor") -> "torch.Tensor":
    y = x[:, :, 0:1] * float(_YCC[0, 0])
    return y.add_(x[:, :, 1:2], alpha=float(_YCC[0, 1])).add_(x[:, :, 2:3], alpha=float(_YCC[0, 2]))


def _chroma(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """4:2:0 chroma subsampling: luma kept per pixel, chroma (x - luma: the YCbCr inverse maps luma to
    grey) averaged over 2x2 blocks and repeated back (nearest, as simple decoders do)."""
    h, w = x.shape[-2:]
    xp = _pad_to(x, h + h % 2, w + w % 2)
    y = _luma(xp)
    d = xp - y
    d = d[..., 0::2] + d[..., 1::2]
    d = (d[..., 0::2, :] + d[..., 1::2, :]).mul_(0.25)
    out = d.repeat_interleave(2, -1).repeat_interleave(2, -2).add_(y)
    return out[..., :h, :w] if out.shape[-2:] != (h, w) else out


@functools.lru_cache(maxsize=4)
def _dct2_matrix(bs: int) -> "torch.Tensor":
    """The orthonormal 2-D DCT of a flattened bs x bs block, as one [bs*bs, bs*bs] matrix."""
    import torch

    d = _dct_matrix(bs)
    return torch.from_numpy(np.kron(d, d))


def _jpeg(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """JPEG-like blockiness: block DCT of Y, Cb, Cr quantised with the standard tables at quality 50-95
    (lower with strength > 1). Blocks are 4x4 three times in four (an 8x8-block encode of a video 2x
    larger, as most uploads are, then shrunk), 8x8 otherwise."""
    import torch

    n, t, _, h, w = x.shape
    out = torch.empty_like(x)
    ycc_m = torch.from_numpy(_YCC)
    inv = torch.linalg.inv(ycc_m)
    centre = torch.tensor([0.5, 0.0, 0.0])
    for small in (0, 1):
        sel = torch.nonzero((u[:, 0] < 0.75) == bool(small)).flatten()
        if len(sel) == 0:
            continue
        k = len(sel)
        bs = 4 if small else 8
        quality = (95 - 45 * u[sel, 1] * min(s, 1.5)).clamp(20, 95)
        scale = torch.where(quality < 50, 50.0 / quality, 2.0 - quality / 50.0).view(-1, 1, 1, 1, 1, 1)
        qy, qc = torch.from_numpy(_JPEG_Y[:bs, :bs] * (8 / bs)), torch.from_numpy(_JPEG_C[:bs, :bs] * (8 / bs))
        step = (torch.stack([qy, qc, qc]).view(1, 1, 3, 1, 1, bs * bs) / 255.0 * scale).clamp(min=1.0 / 255.0)
        hp, wp = -(-h // bs) * bs, -(-w // bs) * bs
        hb, wb = hp // bs, wp // bs
        xs = _pad_to(x.index_select(0, sel) if k < n else x, hp, wp)
        ycc = _linear3(xs, ycc_m.expand(k, 3, 3), -centre.expand(k, 3))
        # Blocks made contiguous ([k, T, 3, hb, wb, bs*bs]), then one matmul with kron(D, D) each way.
        blocks = ycc.view(k, t, 3, hb, bs, wb, bs).transpose(4, 5).reshape(k, t, 3, hb, wb, bs * bs)
        d2 = _dct2_matrix(bs)
        coef = blocks @ d2.T
        coef = torch.round(coef.div_(step)).mul_(step)
        back = (coef @ d2).view(k, t, 3, hb, wb, bs, bs).transpose(4, 5).reshape(k, t, 3, hp, wp)
        rgb = _linear3(back, inv.expand(k, 3, 3), (inv @ centre).expand(k, 3))
        out.index_copy_(0, sel, rgb[..., :h, :w])
    return out


def _quantise(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """A GIF-like palette: 6-12 levels per channel (6 is the web-safe palette; fewer with strength),
    a third of the time with 4x4 ordered (Bayer) dithering at half a step (a GIF's full-resolution
    dither mostly averages out when the service shrinks it)."""
    import torch

    h, w = x.shape[-2:]
    levels = (12 - torch.floor(u[:, 0] * 7 * min(s, 1.0))).clamp(min=4).view(-1, 1, 1, 1, 1) - 1
    y = x * levels
    dithered = torch.nonzero(u[:, 1] < 0.33).flatten()
    if len(dithered):
        reps = (-(-h // 4), -(-w // 4))
        thr = ((torch.from_numpy(_BAYER4).repeat(*reps)[:h, :w] + 0.5) / 16.0 - 0.5) * 0.5
        y.index_copy_(0, dithered, y.index_select(0, dithered).add_(thr))
    return y.round_().div_(levels)


_NOISE_BANK: dict[tuple[int, int], "torch.Tensor"] = {}


def _noise_bank(h: int, w: int) -> "torch.Tensor":
    """A fixed bank of standard-normal planar frames [K, 3, h, w] (seeded, built once per frame size):
    drawing fresh gaussian noise for a batch costs more than all the rest of the augmentation."""
    import torch

    if (h, w) not in _NOISE_BANK:
        k = int(max(16, min(256, 4_000_000 // (h * w * 3))))
        _NOISE_BANK[(h, w)] = torch.randn(k, 3, h, w, generator=torch.Generator().manual_seed(0x5EED))
    return _NOISE_BANK[(h, w)]


def _noise(x: "torch.Tensor", u: "torch.Tensor", s: float, gen: "torch.Generator") -> "torch.Tensor":
    """Camera-like noise: signal-dependent gaussian (sigma 0.005-0.035, brighter pixels noisier) and
    a slight per-frame brightness flicker."""
    import torch

    n, t, _, h, w = x.shape
    bank = _noise_bank(h, w)
    e = bank.index_select(0, torch.randint(len(bank), (n * t,), generator=gen)).view(x.shape)
    sigma = ((0.005 + 0.03 * u[:, 0]) * s).view(-1, 1, 1, 1, 1)
    frame = torch.arange(t, dtype=torch.float32).view(1, -1, 1, 1, 1)
    flicker = 1.0 + (u[:, 1] - 0.5).view(-1, 1, 1, 1, 1) * 0.04 * min(s, 1.0) * torch.cos(
        frame * (1.0 + 2.0 * u[:, 2].view(-1, 1, 1, 1, 1)))
    amp = torch.addcmul(0.6 * sigma, x, 0.8 * sigma)  # sigma * (0.6 + 0.8 x)
    return torch.addcmul(x * flicker, e, amp)


_APPLY = {
    "temporal": _temporal,
    "letterbox": _letterbox,
    "rescale": _rescale,
    "colour": _colour,
    "blur": _blur,
    "chroma": _chroma,
    "jpeg": _jpeg,
    "quantise": _quantise,
    "noise": _noise,
}
assert tuple(_APPLY) == OPS


def add_ramp(frames: "torch.Tensor", rows: "torch.Tensor", gen: "torch.Generator", span: float = 1.0) -> "torch.Tensor":
    """Frames [B, T, H, W, 3] in [0, 1] with a linear colour ramp added across each chosen row's picture (`rows`
    [B] bool), the same on every frame, clipped to [0, 1]: a background graded as steeply as other software draws
    one (the outside set's white-to-black and blue-to-beige gradients), which the corpus' own gradients never are.
    Each row's ramp runs in a random direction, each channel by up to +-`span` from one side to the other; a
    letterboxed clip's bars (exact black edge to edge in its first frame) stay black. The video decoder's refit
    (export/refit.py) trains on it: a rebuild then copies such a background from the first frame."""
    import torch

    b, _, h, w, _ = frames.shape
    angle = torch.rand(b, generator=gen) * (2 * math.pi)
    ys = torch.linspace(-0.5, 0.5, h).view(1, h, 1)
    xs = torch.linspace(-0.5, 0.5, w).view(1, 1, w)
    ramp = xs * torch.cos(angle).view(b, 1, 1) + ys * torch.sin(angle).view(b, 1, 1)  # [B, H, W], in [-0.71, 0.71]
    delta = (torch.rand(b, 3, generator=gen) * 2 - 1) * span / math.sqrt(2)
    field = ramp[..., None] * delta.view(b, 1, 1, 3) * rows.view(b, 1, 1, 1).to(frames.dtype)
    dark = frames[:, 0].amax(dim=-1) < 1.0 / 255.0  # [B, H, W]
    bars = dark.all(dim=2, keepdim=True) | dark.all(dim=1, keepdim=True)
    field = field * (~bars)[..., None].to(frames.dtype)
    return (frames + field[:, None]).clamp(0.0, 1.0)
