"""What an evaluation writes for people: the paper-style markdown tables (beside the results' JSON) and a contact
sheet of clips with the model's captions."""
from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.tables import md_table
from model.checkpoint import load_checkpoint
from model.data.corpus import Clip
from model.inference import caption_clips
from model.probes import PROBE_READINGS


def markdown_table(results: dict[str, Any]) -> str:
    """The paper's layout: METEOR and BLEU@1-4 for the sentence tasks, MSE for the video tasks."""
    lines = [f"Split `{results.get('split')}`, {results.get('clips')} clips, beam {results.get('beam_size')}.", ""]
    text_tasks = [t for t in ("caption", "paraphrase") if t in results]
    if text_tasks:
        rows: list[list[str]] = []
        for t in text_tasks:
            r, a = results[t], results[t].get("attributes", {})
            cells = [r.get("METEOR"), *(r.get(f"BLEU@{i}") for i in range(1, 5)),
                     a.get("colour"), a.get("shape"), a.get("motion"), a.get("all")]
            rows.append([t, *("-" if v is None else f"{100 * v:.1f}" for v in cells)])
        for key, label in (("attributes_unseen_combos", "unseen combinations"),
                           ("attributes_one_object", "one object"), ("attributes_two_objects", "two objects"),
                           ("attributes_letterboxed", "other aspect ratios, letterboxed")):
            group = results.get("caption", {}).get(key)
            if group:
                rows.append([f"caption, {label}", "", "", "", "", "", *_shares(group)])
        lines += md_table(["task", "METEOR", "BLEU@1", "BLEU@2", "BLEU@3", "BLEU@4", *ATTRIBUTE_HEAD], rows)
        binding = results.get("caption", {}).get("binding_two_objects")
        if binding:
            lines += ["", (f"Two-object clips ({binding['n']}), each clause of the caption read on its own: the first "
                           f"clause names all three attributes of one of the objects in {100 * binding['first']:.1f}%, "
                           f"both objects are named right in {100 * binding['both']:.1f}%.")]
        lines.append("")
    video_tasks = [t for t in ("reconstruct", "sentence_to_video") if t in results]
    if video_tasks:
        rows = []
        for t in video_tasks:
            for label, key in (("", "probe"), (", unseen combinations", "probe_unseen_combos"),
                               (", ground truth (the ceiling)", "probe_on_ground_truth")):
                p = results[t].get(key)
                if key != "probe" and not p:
                    continue
                mse = f"{results[t]['MSE']:.1f}" if key == "probe" else ""
                cells = [mse] + [f"{100 * p[k]:.1f}" if p and k in p else "-" for k in PROBE_READINGS]
                cells.append(f"{p['contrast']:.2f}" if p and "contrast" in p else "-")
                rows.append([f"{t}{label}", *cells])
        lines += md_table(["task", "MSE (0-255)", *PROBE_HEAD], rows)
    if "outside" in results:
        lines += ["", "Caption accuracy on the outside test set (files drawn by ffmpeg / Pillow, real encoders):", ""]
        out = results["outside"]
        groups = [("overall (one object)", out["overall"])] + [
            (g, r) for kind in ("by_source", "by_container", "by_motion", "by_aspect", "by_background")
            for g, r in sorted(out.get(kind, {}).items())]
        if "two" in out.get("by_objects", {}):  # its "one" group is the overall row
            groups.append(("two objects, the described one", out["by_objects"]["two"]))
        lines += md_table(["group", "clips", *ATTRIBUTE_HEAD], [[group, r["n"], *_shares(r)] for group, r in groups])
        binding = out.get("binding_two_objects")
        if binding:
            lines += ["", (f"Outside two-object files ({binding['n']}), each clause read on its own: the first clause "
                           f"names all three attributes of one of the objects in {100 * binding['first']:.1f}%, both "
                           f"objects in {100 * binding['both']:.1f}%.")]
        rec = out.get("reconstruct")
        if rec:
            lines += ["", "Reconstruct on the outside test set (the video probe):", ""]
            lines += md_table(["clips", *PROBE_HEAD], [
                [label, *(f"{100 * rec[key][k]:.1f}" if k in rec[key] else "-" for k in PROBE_READINGS),
                 f"{rec[key]['contrast']:.2f}"]
                for label, key in (("reconstructed", "probe"),
                                   ("the decoded files (the ceiling)", "probe_on_ground_truth"))])
    if "familiarity" in results:
        lines += ["", "Familiarity (`slr eval --ood`; core/familiarity.py): the share of inputs flagged unfamiliar.",
                  ""]
        lines += md_table(["inputs", "n", "flagged"], [
            [f"{medium}: {group}", r["n"], f"{100 * r['flagged']:.1f}%"]
            for medium in ("video", "sentences") for group, r in results["familiarity"].get(medium, {}).items()
            if isinstance(r, dict)])
    return "\n".join(lines) + "\n"


ATTRIBUTE_HEAD = ("colour", "shape", "motion", "all three")
PROBE_HEAD = ("probe colour", "probe shape", "probe motion", "contrast")


def _shares(accuracy: dict[str, float]) -> list[str]:
    """Colour, shape, motion and all three, in percent."""
    return [f"{100 * accuracy[a]:.1f}" for a in ("colour", "shape", "motion", "all")]


def write_report(results: dict[str, Any], out_dir: str | Path, name: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{name}.json", out / f"{name}.md"
    js.write_text(json.dumps(results, indent=2))
    md.write_text(markdown_table(results))
    return js, md


def caption_sheet(checkpoint: str | Path, clips: Sequence[Clip], out: str | Path, beam_size: int = 1) -> str:
    """A contact sheet of clips (the frames the model reads) with the model's caption and the first reference
    beside each; returns the line to print."""
    from core.sheet import save_sheet, sheet

    ck = load_checkpoint(checkpoint)
    hyps = caption_clips(ck.model, ck.vocab, clips, beam_size)
    rows = [(f"{c.clip_id}\nmodel: {_wrap(h)}\nreference: {_wrap(c.captions[0])}",
             np.asarray(c.frames, dtype=np.float32) / 255.0) for c, h in zip(clips, hyps)]
    return save_sheet(sheet(rows), out)


SHEET_LABEL_CHARS = 46  # characters per label line at the sheet's label width


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, SHEET_LABEL_CHARS)) or "(nothing)"
