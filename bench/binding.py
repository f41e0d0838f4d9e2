"""Does binding survive the video encoder? The encoder-only test of issue 18.

A two-object clip is captioned with the right colours, shapes and motions paired wrongly ("a red square" for a red
circle beside a blue square) when the frame encoder mixes the objects before anything describes them. This test
asks the encoder alone: a head on its x_v must name both objects' (colour, shape, motion), the objects ordered by
colour (the two colours of a clip differ), the second slot "none" on a one-object clip. Trained from scratch for the
same steps on the same synthetic clips, per design:

* `pool`: the star model's FrameEncoder (model/star.py) as shipped: per frame, max / mean / attention pooling over
  space, a GRU over time;
* `slots`: the same CNN, then slot attention (Locatello et al., 2020) over each frame's feature map with the slots
  carried from frame to frame (as SAVi does), a GRU per slot over time, and the slots summed (a set: no order to
  learn) into x_v;
* `queries`: the same CNN, then K learned attention maps per frame (a 1x1 convolution, softmax over positions), per
  map the attended features and the map's centroid, a GRU per map over time, the K tracks concatenated into x_v.

`--target described` asks instead for the triple of the object the clip's captions open with (the main object)
alone: what a caption's first clause needs. `--corpus salient random` compares the corpus rule that makes the main
object of a two-object clip the larger one (`synthetic.SECOND_RADIUS_SHARE`, since quality-v6) with the earlier
one (either object, nothing on screen to say which).

Prints, per design (and corpus rule), the validation share of one-object clips with all three right and of
two-object clips with both triples (or the described one) right, and seconds per step. Run: `python -m
bench.binding --steps 3000` (about 6 minutes per design on 2 quiet cores, after a minute of drawing clips).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.config import preset
from core.tables import md_table
from model.data.shapes import COLOURS, MOTIONS, SHAPES
from model.data.synthetic import generate
from model.star import FrameEncoder

NONE = 0  # class 0 of every head: no second object
WARMUP = 300
VOCABS = {"colour": COLOURS, "shape": SHAPES, "motion": MOTIONS}


def targets(attributes: dict[str, Any], target: str = "both") -> list[int]:
    """`both`: [colour, shape, motion] of slot 1 then slot 2 (objects ordered by colour), 1-based, 0 = none;
    `described`: the triple of the object the clip's captions open with (the main object) alone."""
    objects = attributes.get("objects") or [attributes]
    if target == "described":
        return [VOCABS[a].index(objects[0][a]) + 1 for a in ("colour", "shape", "motion")]
    objects = sorted(objects, key=lambda o: COLOURS.index(o["colour"]))
    out = []
    for k in range(2):
        o = objects[k] if k < len(objects) else None
        out += [VOCABS[a].index(o[a]) + 1 if o else NONE for a in ("colour", "shape", "motion")]
    return out


def feature_maps(cnn: nn.Module, coords: Tensor, video: Tensor) -> Tensor:
    """FrameEncoder's per-frame input (RGB, difference to the previous frame, x/y planes) through its CNN."""
    b, t, h, w, _ = video.shape
    x = video.permute(0, 1, 4, 2, 3) - 0.5
    diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
    planes = coords.unsqueeze(0).expand(b, t, 2, h, w)
    return cnn(torch.cat([x, diff, planes], dim=2).reshape(b * t, 8, h, w))


class SlotEncoder(nn.Module):
    """The frame CNN, then slot attention per frame with slots carried over time, a GRU per slot, a summed set."""

    def __init__(self, cfg: Any, slots: int = 3, iters: int = 2) -> None:
        super().__init__()
        base = FrameEncoder(cfg)
        self.cnn, self.coords = base.cnn, base.coords
        c = d = 2 * cfg.cnn_channels  # slots as wide as the feature map
        self.slots, self.iters, self.d = slots, iters, d
        self.pos = nn.Conv2d(2, c, 1)  # where each feature is, added before attention: a slot knows its place
        self.norm_in, self.norm_slot = nn.LayerNorm(c), nn.LayerNorm(d)
        self.k, self.v, self.q = nn.Linear(c, d, bias=False), nn.Linear(c, d, bias=False), nn.Linear(d, d, bias=False)
        self.update = nn.GRUCell(d, d)
        self.mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.init = nn.Parameter(torch.randn(1, slots, d) * 0.5)
        self.temporal = nn.GRU(d + 2, cfg.hidden // 2, batch_first=True)
        self.out = nn.Sequential(nn.Linear(cfg.hidden // 2, cfg.x_dim), nn.ReLU(), nn.Linear(cfg.x_dim, cfg.x_dim))

    def attend(self, feats: Tensor, slots: Tensor, xy: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.k(feats), self.v(feats)  # B, N, d
        for _ in range(self.iters):
            q = self.q(self.norm_slot(slots))
            attn = torch.softmax(torch.einsum("bnd,bkd->bnk", k, q) / self.d ** 0.5, dim=-1) + 1e-8  # over slots
            weights = attn / attn.sum(dim=1, keepdim=True)  # B, N, K: a weighted mean per slot
            upd = torch.einsum("bnk,bnd->bkd", weights, v)
            slots = self.update(upd.reshape(-1, self.d), slots.reshape(-1, self.d)).view_as(slots)
            slots = slots + self.mlp(slots)
        centre = torch.einsum("bnk,bnc->bkc", weights, xy)  # each slot's centroid: its track over time
        return slots, centre

    def forward(self, video: Tensor) -> Tensor:
        b, t = video.shape[:2]
        fmap = feature_maps(self.cnn, self.coords, video)
        _, c, fh, fw = fmap.shape
        small = nn.functional.interpolate(self.coords, size=(fh, fw), mode="bilinear", align_corners=True)
        feats = self.norm_in((fmap + self.pos(small)).flatten(2).transpose(1, 2)).view(b, t, fh * fw, c)
        xy = small.flatten(2).transpose(1, 2).expand(b, -1, -1)  # B, N, 2
        slots = self.init.expand(b, -1, -1)
        steps = []
        for i in range(t):
            slots, centre = self.attend(feats[:, i], slots, xy)
            steps.append(torch.cat([slots, centre], dim=-1))
        seq = torch.stack(steps, dim=2).reshape(b * self.slots, t, -1)  # a sequence per slot
        _, last = self.temporal(seq)
        return torch.tanh(self.out(last[-1]).view(b, self.slots, -1).sum(dim=1))


class QueryEncoder(nn.Module):
    """The frame CNN, then K attention maps per frame (learned queries: a 1x1 convolution, softmax over positions):
    per map the weighted mean of the feature map and the map's centroid, a GRU per map over time (shared weights),
    and the K tracks concatenated, not summed: track k stays track k, so a colour and the shape and path it
    arrived with stay in one place until the head reads them."""

    def __init__(self, cfg: Any, queries: int = 8) -> None:
        super().__init__()
        base = FrameEncoder(cfg)
        self.cnn, self.coords, self.queries = base.cnn, base.coords, queries
        c = 2 * cfg.cnn_channels
        self.attend = nn.Conv2d(c, queries, 1)
        self.temporal = nn.GRU(c + 2, cfg.hidden // 4, batch_first=True, bidirectional=True)
        self.out = nn.Linear(queries * 2 * (cfg.hidden // 4), cfg.x_dim)

    def forward(self, video: Tensor) -> Tensor:
        b, t = video.shape[:2]
        fmap = feature_maps(self.cnn, self.coords, video)
        _, c, fh, fw = fmap.shape
        weights = torch.softmax(self.attend(fmap).flatten(2), dim=-1)  # BT, K, N
        feats = torch.bmm(weights, fmap.flatten(2).transpose(1, 2))  # BT, K, C
        xy = nn.functional.interpolate(self.coords, size=(fh, fw), mode="bilinear", align_corners=True)
        centre = weights @ xy.flatten(2).transpose(1, 2)  # BT, K, 2: where each map looks, frame by frame
        seq = torch.cat([feats, centre], dim=-1).view(b, t, self.queries, c + 2).transpose(1, 2)
        out, _ = self.temporal(seq.reshape(b * self.queries, t, c + 2))
        return torch.tanh(self.out(out.mean(dim=1).reshape(b, -1)))


ENCODERS = {"pool": FrameEncoder, "slots": SlotEncoder, "queries": QueryEncoder}


class Probe(nn.Module):
    def __init__(self, encoder: nn.Module, x_dim: int, objects: int = 2) -> None:
        super().__init__()
        self.encoder = encoder
        sizes = [len(VOCABS[a]) + 1 for a in ("colour", "shape", "motion")] * objects
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(x_dim, x_dim), nn.ReLU(), nn.Linear(x_dim, n))
                                   for n in sizes)

    def forward(self, video: Tensor) -> list[Tensor]:
        x = self.encoder(video)
        return [head(x) for head in self.heads]


def split_tensors(clips: list, target: str) -> tuple[Tensor, Tensor, Tensor]:
    video = torch.from_numpy(np.stack([c.frames for c in clips]))
    y = torch.tensor([targets(c.attributes, target) for c in clips])
    two = torch.tensor([len(c.attributes.get("objects") or [0]) == 2 for c in clips])
    return video, y, two


@torch.no_grad()
def score(model: Probe, video: Tensor, y: Tensor, two: Tensor) -> dict[str, float]:
    """All-three shares (one-object clips; both objects of two-object clips), and per head on two-object clips: each
    attribute of each slot alone, so that a design that sees the attributes but pairs them wrongly shows."""
    model.eval()
    preds = []
    for i in range(0, len(video), 128):
        preds.append(torch.stack([o.argmax(-1) for o in model(video[i:i + 128].float() / 255.0)], dim=1))
    hit = torch.cat(preds) == y
    model.train()
    out = {"one_object_all_three": float(hit[~two].all(dim=1).float().mean()),
           "two_objects_all": float(hit[two].all(dim=1).float().mean()), "two_object_clips": int(two.sum())}
    slots = ("first", "second")[:y.shape[1] // 3]
    for j, name in enumerate(f"{k}_{a}" for k in slots for a in ("colour", "shape", "motion")):
        out[f"two_{name}"] = round(float(hit[two, j].float().mean()), 3)
    return out


def run(design: str, steps: int, clips: int, seed: int, target: str = "both", salient_first: bool = True
        ) -> dict[str, Any]:
    torch.manual_seed(seed)
    cfg = replace(preset("quality").model, vocab_size=1)
    corpus = generate(clips, seed=seed, frames=cfg.frames, height=cfg.height, width=cfg.width,
                      salient_first=salient_first)
    train = split_tensors(corpus.splits["train"], target)
    val = split_tensors(corpus.splits["val"] + corpus.splits["test"], target)
    encoder = ENCODERS[design](cfg)
    model = Probe(encoder, cfg.x_dim, objects=train[1].shape[1] // 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # Warm-up (slot attention is known to need it; both designs get it) and clipping.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / WARMUP))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    curve = []
    for step in range(1, steps + 1):
        idx = torch.randint(len(train[0]), (32,), generator=gen)
        logits = model(train[0][idx].float() / 255.0)
        loss = sum(nn.functional.cross_entropy(o, train[1][idx, j]) for j, o in enumerate(logits))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if step % max(1, steps // 5) == 0:
            curve.append({"step": step, **score(model, *val)})
            print(design, curve[-1], flush=True)
    seconds = time.perf_counter() - t0
    return {"design": design, "target": target, "salient_first": salient_first, "steps": steps,
            "s_per_step": seconds / steps,
            "params": sum(p.numel() for p in encoder.parameters()), "curve": curve, **curve[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--clips", type=int, default=8000)
    ap.add_argument("--designs", nargs="+", default=["pool", "slots"], choices=sorted(ENCODERS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=("both", "described"), default="both",
                    help="name both objects' triples, or only the one the captions open with")
    ap.add_argument("--corpus", nargs="+", choices=("salient", "random"), default=["salient"],
                    help="which object captions open with in a two-object clip: the larger, or either (pre-v6)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    results = [run(d, args.steps, args.clips, args.seed, args.target, c == "salient")
               for c in args.corpus for d in args.designs]
    print("\n".join(md_table(
        ["design", "main object", "encoder parameters", "s / step", "one object, all three",
         f"two objects, {args.target}"],
        [[r["design"], "larger" if r["salient_first"] else "either", f"{r['params']:,}", f"{r['s_per_step']:.3f}",
          f"{r['one_object_all_three']:.3f}", f"{r['two_objects_all']:.3f}"] for r in results])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
