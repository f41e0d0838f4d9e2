"""Sentence-to-video's background, version beside version: how much of the object's colour lies on it away from the
object (model/probes.py: stain), beside the probe's readings, on the captions of one-object test clips through the
exported graphs.

    python -m bench.stain --artifacts models/default --versions quality-v24,quality-v25 \\
        --data data/synthetic-quality [--clips 1200]

quality-v24's background carried a smear of the object along its track (the average a background learns under a
moving object); quality-v25 fills the track from the rest of its background (slr redraw --clear-sentence-track).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.tables import md_table
from export.graph_model import GraphModel
from model.data.corpus import load_split
from model.probes import probe_hits, stain


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", type=Path, default=Path("models/default"))
    ap.add_argument("--versions", required=True, help="comma-separated versions of the root")
    ap.add_argument("--data", type=Path, required=True, help="a saved corpus (slr data synth)")
    ap.add_argument("--clips", type=int, default=1200, help="one-object test clips whose first caption is drawn")
    args = ap.parse_args(argv)
    clips = [c for c in load_split(args.data, "test") if len(c.attributes.get("objects", [None])) == 1][:args.clips]
    truths = [{k: v for k, v in c.attributes.items() if k != "frame_box"} for c in clips]
    rows = []
    for version in args.versions.split(","):
        model = GraphModel.open(args.artifacts, version)
        mu = model.sentence_mu([c.captions[0] for c in clips])
        cfg = model.manifest.model
        drawn = model.frames(mu, np.zeros((len(mu), cfg.height, cfg.width, 3), np.float32))
        hits = probe_hits(list(drawn), truths)
        stains = [stain(v, t["colour"]) for v, t in zip(drawn, truths)]
        rows.append([version, f"{100 * np.mean(stains):.2f}", *(f"{100 * hits[k].mean():.1f}" for k in
                                                               ("colour", "shape", "motion")),
                     f"{hits['contrast'].mean():.3f}"])
    print(f"sentence-to-video on {len(clips)} one-object test captions")
    print("\n".join(md_table(["version", "stain %", "colour %", "shape %", "motion %", "contrast"], rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
