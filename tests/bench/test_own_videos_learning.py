"""bench/own_videos_learning.py (issue 34, learning and not only running): its paraphrases say what the attribute
parser reads, and the module runs end to end on the tiny preset (the figures are the full-size run's, not checked)."""
from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.own_videos_learning import FIGURES, main, paraphrases
from model.data.attributes import parse_attributes
from model.data.shapes import COLOURS, MOTIONS, SHAPES
from model.data.synthetic import generate

CLIPS = 40


def test_every_paraphrase_parses_back_to_its_object() -> None:
    """Each (colour, shape, motion), alone and as the main object beside another: five distinct captions, each
    naming the main object's three attributes first."""
    for colour, shape, motion in itertools.product(COLOURS, SHAPES, MOTIONS):
        main_object = {"colour": colour, "shape": shape, "motion": motion}
        other = {"colour": "red" if colour != "red" else "blue", "shape": "cross", "motion": "shrink"}
        for attributes in (main_object, {**main_object, "objects": [main_object, other]}):
            captions = paraphrases(attributes, seed=7)
            assert len(set(captions)) == 5, captions
            assert all(parse_attributes(c) == main_object for c in captions), captions


def test_paraphrases_are_not_the_corpus_sentences() -> None:
    corpus = generate(200, seed=1, frames=2, height=12, width=16)
    for clip in (c for clips in corpus.splits.values() for c in clips):
        assert not set(paraphrases(clip.attributes, 0)) & set(clip.captions), clip.clip_id


@pytest.fixture
def one_thread() -> Iterator[None]:
    """--threads 1 sets torch's threads for the process: given back to the session's other tests afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_runs_end_to_end_on_the_tiny_preset(tmp_path: Path, capsys, one_thread) -> None:
    out = tmp_path / "bench"
    argv = ["--out", str(out), "--preset", "tiny", "--clips", str(CLIPS), "--steps", "4", "--workers", "1"]
    assert main([*argv, "--threads", "1"]) == 0  # one thread: two spin-wait on a shared machine's cores
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert [r["path"] for r in rows] == ["in memory", "store"]
    for r in rows:
        assert r["steps"] == 4 and r["clips"] == CLIPS and r["test_clips"] > 0
        assert all(0.0 <= r[f] <= 1.0 for f in FIGURES), r
    assert rows[0]["test_clips"] == rows[1]["test_clips"]  # the store carries the corpus' own split
    assert any(line.startswith("| colour |") for line in lines) and any("target:" in line for line in lines)
    assert len(list((out / "folder" / "videos").glob("*.mp4"))) == CLIPS
    info = json.loads((out / "folder" / "test_videodatainfo.json").read_text())
    assert {v["split"] for v in info["videos"]} == {"test"} and len(info["sentences"]) == 5 * len(info["videos"])
    assert json.loads((out / "learning.json").read_text())["store"]["test_clips"] == rows[1]["test_clips"]


def test_a_letterboxed_clip_is_written_at_its_own_aspect_ratio(tmp_path: Path) -> None:
    """A clip the corpus letterboxed is a video of another shape: its file holds the picture inside the bars, so that
    prepare letterboxes it as the service does an upload (its box found again); --burned-bars keeps the bars."""
    from bench.own_videos_learning import folder_clips
    from bench.support import encode_clip
    from core.config import preset
    from core.media import MediaLimits, prepare_upload

    corpus = generate(30, seed=2, frames=4, height=18, width=32, aspect_share=1.0)
    boxed = {c.clip_id: c.attributes["frame_box"] for cs in corpus.splits.values() for c in cs
             if c.attributes.get("frame_box")}
    assert boxed
    own = {cid: frames for cid, frames, _, _ in folder_clips(corpus, 0, scale=4)}
    burned = {cid: frames for cid, frames, _, _ in folder_clips(corpus, 0, scale=4, burned_bars=True)}
    cfg = preset("tiny").model
    for cid, (top, left, h, w) in boxed.items():
        assert own[cid].shape[1:3] == (4 * h, 4 * w) and burned[cid].shape[1:3] == (72, 128)
    cid, box = next(iter(boxed.items()))
    path = tmp_path / "clip.mp4"
    path.write_bytes(encode_clip(own[cid], "mp4", 8))
    small = dataclasses.replace(cfg, frames=4, height=18, width=32, frame_fit="pad")
    assert tuple(prepare_upload(path.read_bytes(), small, MediaLimits()).box or ()) == tuple(box)


def test_files_written_in_several_processes_are_the_files_one_writes(tmp_path: Path) -> None:
    from bench.support import write_video_folder

    rng = np.random.default_rng(0)
    clips = [(f"video{i}", rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8), ["a red circle"], "train")
             for i in range(6)]
    one = write_video_folder(tmp_path / "one", "msrvtt", clips)  # mp4: the same bytes each time (webm is not:
    two = write_video_folder(tmp_path / "two", "msrvtt", clips, workers=2)  # its header holds a random id)
    assert [p.name for p in one.values()] == [p.name for p in two.values()]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one.values(), two.values()))
    assert (tmp_path / "two" / "train_val_videodatainfo.json").read_text() == \
        (tmp_path / "one" / "train_val_videodatainfo.json").read_text()
