"""The release gate's outside-set figures under two values of one preprocessing setting, on the same files.

    python -m bench.preprocess --artifacts models/default --files data/outside --setting frames.PICTURE_FLOOR=0,1
    python -m bench.preprocess --artifacts models/default --files data/outside --setting media.DIRECT_SCALE=false,true

A preprocessing change (how an upload becomes the model's input: core.media, core.frames) changes no model version,
so the release gate (export/gate.py) never sees it: this runs the gate's outside-set outcomes (the one-object files'
captions, their reconstructions' probe, the familiarity score's passes) with the setting at its old value and at its
new one, and compares them as the gate compares two versions (one-sided McNemar on the same files, core.stats.ALPHA).
The two-object files, which the gate leaves out, follow: the described object's attributes and the first clause's
binding, as `slr eval --outside` reads them. Exit 1 when a gate figure fell. `--sheet PATH` draws the one-object
files whose reconstruction the setting changes: each file's frames as decoded, then its rebuild under each value.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from core import frames, media
from core.tables import md_table

MODULES: dict[str, ModuleType] = {"media": media, "frames": frames}


@contextmanager
def setting(module: ModuleType, name: str, value: Any) -> Iterator[None]:
    """One of a preprocessing module's settings set to `value`, restored after (read at call time by its functions)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def parse_setting(text: str) -> tuple[ModuleType, str, Any, Any]:
    """'frames.PICTURE_FLOOR=0,1' -> (core.frames, 'PICTURE_FLOOR', 0, 1); values are JSON (true, 0, 1.5)."""
    target, _, values = text.partition("=")
    module, _, name = target.partition(".")
    old, _, new = values.partition(",")
    if module not in MODULES or not hasattr(MODULES[module], name) or not old or not new:
        raise ValueError(f"--setting takes MODULE.NAME=OLD,NEW, NAME a setting of core.MODULE, MODULE in "
                         f"{sorted(MODULES)}; got {text!r}")
    return MODULES[module], name, json.loads(old), json.loads(new)


def gate_table(artifacts: str, folder: Path, module: ModuleType, name: str, old: Any, new: Any) -> tuple[str, bool]:
    """The gate's outside-set figures with the setting at `old` and at `new`, and the two-object files' (markdown);
    and whether no gate figure fell."""
    from export.gate import compare, outside_outcomes
    from export.graph_model import GraphModel
    from model.data.outside import load_outside_set

    model = GraphModel.open(Path(artifacts), None)
    files = load_outside_set(folder)
    outcomes = {}
    for value in (old, new):
        with setting(module, name, value):
            outcomes[value] = outside_outcomes(model, files)
    rows = compare(outcomes[old], outcomes[new])
    head = ["figure", "files", f"{name}={old} %", f"{name}={new} %", "lost", "won", "p (fall)"]
    text = "\n".join(md_table(head, [[c.figure, c.n, f"{100 * c.old:.1f}", f"{100 * c.new:.1f}", c.lost, c.won,
                                      f"{c.p:.3g}"] for c in rows]))
    return text + "\n" + two_object_table(model, files, module, name, (old, new)), not any(c.regressed for c in rows)


def two_object_table(model: Any, files: list[tuple[Path, dict[str, Any]]], module: ModuleType, name: str,
                     values: tuple[Any, Any]) -> str:
    """The outside set's two-object files under each value: the described object's attributes and the first
    clause's binding."""
    from model.data.outside import outside_accuracy

    cfg = model.manifest.model
    two = [(p, label) for p, label in files if label.get("objects")]
    if not two:
        return ""
    caption: Callable[[np.ndarray], str] = lambda video: model.captions(model.video_mu(video[None]))[0]  # noqa: E731

    def figures(value: Any) -> list[str]:
        with setting(module, name, value):
            acc = outside_accuracy(caption, two, cfg.frames, cfg.height, cfg.width, fit=cfg.frame_fit)
        described = acc["by_objects"]["two"]
        return [f"{100 * described[a]:.1f}" for a in ("colour", "shape", "motion", "all")] + [
            f"{100 * acc['binding_two_objects']['first']:.1f}"]

    return "\n".join(md_table(["two-object files", "n", "colour", "shape", "motion", "all three", "first clause %"],
                              [[f"{name}={value}", len(two), *figures(value)] for value in values]))


def changed_sheet(artifacts: str, folder: Path, module: ModuleType, name: str, values: tuple[Any, Any],
                  limit: int = 6) -> list[tuple[str, np.ndarray]]:
    """Rows for core.sheet (bench/contact_sheet.py differing_rows): up to `limit` one-object files whose
    reconstruction's probe reads differently under the two values, each decoded under the new value, then rebuilt
    (video-to-video from its first frame) under each."""
    from bench.contact_sheet import decode_files, differing_rows, one_object_files
    from export.graph_model import GraphModel

    model = GraphModel.open(Path(artifacts), None)
    cfg = model.manifest.model
    files = one_object_files(folder)
    drawn = {}
    for value in values:
        with setting(module, name, value):
            video = decode_files(files, cfg)
        drawn[f"rebuilt, {name}={value}"] = (video, model.frames(model.video_mu(video), video[:, 0]))
    return differing_rows(files, cfg, drawn, limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", required=True, help="the model (artifacts root or version folder)")
    parser.add_argument("--files", type=Path, required=True, help="a folder of `slr data outside`")
    parser.add_argument("--setting", required=True, help="MODULE.NAME=OLD,NEW, e.g. frames.PICTURE_FLOOR=0,1")
    parser.add_argument("--sheet", help="also draw the files whose reconstruction changes (a PNG path)")
    args = parser.parse_args(argv)
    try:
        module, name, old, new = parse_setting(args.setting)
    except ValueError as e:
        parser.error(str(e))
    text, kept = gate_table(args.artifacts, args.files, module, name, old, new)
    print(text)
    if args.sheet:
        from core.sheet import save_sheet, sheet

        rows = changed_sheet(args.artifacts, args.files, module, name, (old, new))
        print(save_sheet(sheet(rows), args.sheet) if rows else "no file's reconstruction changed: no sheet")
    return 0 if kept else 1


if __name__ == "__main__":
    raise SystemExit(main())
