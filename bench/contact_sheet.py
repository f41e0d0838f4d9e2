"""What the video channel draws, as one picture: sentence-to-video for a dozen sentences, and reconstructions
beside the true frames, through the exported graphs (the engine the service runs).

    python -m bench.contact_sheet --artifacts models/default --out docs/contact_sheet.png
    python -m bench.contact_sheet --artifacts models/default --outside data/outside --versions quality-v16,quality-v17 \
        --out docs/figures/first_frame_scene.png

Rows of the sheet: each sentence's generated frames; then, for clips drawn by the synthetic generator from a
seed no training run uses, the true frames above their reconstruction. Frames are upscaled (nearest) so a
person can see them; the probe's figures for each row are written beside it. With --outside (a folder of `slr data
outside`) and --versions, the outside set's one-object files instead: each file as decoded, then each version's
reconstruction of it (the exported graphs), the first files whose probe readings differ between the versions.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from core.config import ModelConfig
from core.sheet import frames_row, save_sheet, sheet  # noqa: F401  (bench.caption_sheet, bench.familiarity)
from core.vocab import tokenize

SENTENCES = (
    "a red circle moves to the right", "a blue square moves to the left", "a green triangle moves up",
    "a yellow star moves down", "an orange diamond grows", "a purple cross shrinks",
    "a white circle bounces", "a cyan square stays still", "a red triangle moves to the left",
    "a green square grows", "a blue star moves to the right", "a yellow cross moves down",
)
SHEET_SEED = 20261201  # a synthetic corpus no training run uses
def build_rows(artifacts: Path, n_clips: int) -> list[tuple[str, np.ndarray]]:
    from model.data.synthetic import generate
    from model.probes import contrast, probe_video
    from service.engine import Engine

    engine = Engine.load(artifacts)
    cfg = engine.config
    rows: list[tuple[str, np.ndarray]] = []
    for sentence in SENTENCES:
        mu, _ = engine.encode(None, [[engine.vocab.id(w) for w in tokenize(sentence)]])
        frames = engine.decode_video(mu)[0]
        p = probe_video(frames)
        colour = next((w for w in tokenize(sentence) if w in ("red", "blue", "green", "yellow", "orange", "purple",
                                                              "white", "cyan")), "red")
        rows.append((f"{sentence}\nprobe: {p.colour} {p.shape} / {p.motion},\ncontrast {contrast(frames, colour):.2f}",
                     frames))
    corpus = generate(n_clips * 4, seed=SHEET_SEED, frames=cfg.frames, height=cfg.height, width=cfg.width)
    clips = [c for c in corpus.splits["test"] if len(c.attributes.get("objects", [None])) == 1][:n_clips]
    video = np.stack([c.frames for c in clips]).astype(np.float32) / 255.0
    mu, _ = engine.encode(video, None)
    rebuilt = engine.decode_video(mu, video[:, 0])
    for clip, true, pred in zip(clips, video, rebuilt):
        a = clip.attributes
        p = probe_video(pred)
        rows.append((f"true: {a['colour']} {a['shape']} {a['motion']}", true))
        rows.append((f"reconstructed: probe {p.colour} {p.shape} / {p.motion},\n"
                     f"contrast {contrast(pred, a['colour']):.2f}", pred))
    return rows


OutsideFile = tuple[Path, dict[str, Any]]


def one_object_files(folder: Path) -> list[OutsideFile]:
    """The outside set's one-object files (path, label), as the release gate reads them."""
    from model.data.outside import load_outside_set

    return [(p, label) for p, label in load_outside_set(folder) if not label.get("objects")]


def decode_files(files: list[OutsideFile], cfg: ModelConfig) -> np.ndarray:
    """[N,T,H,W,3]: the files decoded as uploads are."""
    from model.data.outside import decode_clip_file

    return np.stack([decode_clip_file(p, cfg.frames, cfg.height, cfg.width, cfg.frame_fit) for p, _ in files])


def differing_rows(files: list[OutsideFile], cfg: ModelConfig, drawn: dict[str, tuple[np.ndarray, np.ndarray]],
                   n_files: int) -> list[tuple[str, np.ndarray]]:
    """Rows for core.sheet: up to n_files of `files` whose rebuilds the video probe reads differently one way and
    another (`drawn`: a way's name -> (the files decoded, their rebuilds)), each as decoded (the last way's), then
    each way's rebuild with the probe's colour / shape / motion."""
    from model.data.outside import outside_truth
    from model.probes import probe_hits

    truths = [outside_truth(label, cfg) for _, label in files]
    readings = {name: ["/".join("ok" if h[k][i] else "miss" for k in ("colour", "shape", "motion"))
                       for i in range(len(files))]
                for name, h in ((name, probe_hits(list(rebuilt), truths)) for name, (_, rebuilt) in drawn.items())}
    differ = [i for i in range(len(files)) if len({r[i] for r in readings.values()}) > 1][:n_files]
    decoded = list(drawn.values())[-1][0]
    rows: list[tuple[str, np.ndarray]] = []
    for i in differ:
        label = files[i][1]
        rows.append((f"{files[i][0].name}\n{label['colour']} {label['shape']} {label['motion']}\non "
                     f"{label['background']}", decoded[i]))
        rows += [(f"{name}: probe colour/shape/motion\n{readings[name][i]}", rebuilt[i])
                 for name, (_, rebuilt) in drawn.items()]
    return rows


def outside_rows(artifacts: Path, folder: Path, versions: list[str], n_files: int) -> list[tuple[str, np.ndarray]]:
    """differing_rows between versions of a model, the files decoded once."""
    from export.graph_model import GraphModel

    models = {v: GraphModel.open(artifacts, v) for v in versions}
    cfg = models[versions[0]].manifest.model
    files = one_object_files(folder)
    video = decode_files(files, cfg)
    drawn = {v: (video, m.frames(m.video_mu(video), video[:, 0])) for v, m in models.items()}
    return differing_rows(files, cfg, drawn, n_files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="models/default")
    parser.add_argument("--out", default="docs/contact_sheet.png")
    parser.add_argument("--clips", type=int, default=6, help="reconstructed clips (files with --outside)")
    parser.add_argument("--outside", type=Path, help="the outside set's folder: its files' reconstructions instead")
    parser.add_argument("--versions", help="with --outside: the versions to compare, comma-separated")
    args = parser.parse_args(argv)
    if args.outside:
        if not args.versions:
            parser.error("--outside needs --versions")
        rows = outside_rows(Path(args.artifacts), args.outside, args.versions.split(","), args.clips)
    else:
        rows = build_rows(Path(args.artifacts), args.clips)
    print(save_sheet(sheet(rows), args.out) if rows else "no file reads differently: no sheet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
