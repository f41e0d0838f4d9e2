"""Own videos (issue 34): real mp4 / webm / avi files in the three layouts, prepared into a frame store through the
service's own decode, read memory-mapped by training; every folder mistake is one line and exit 2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.support import write_video_folder
from cli.main import main as slr
from core.config import preset
from core.media import MediaLimits, prepare_upload
from core.vocab import Vocab
from model.data.corpus import DataError
from model.data.dataset import make_batch, split_tensors
from model.data.folder import read_folder
from model.data.store import FAILED, OK, REPORT, STATUS, load_store, prepare_store
from model.data.synthetic import generate

CLIPS = 24
FORMATS = {"msrvtt": ("mp4",), "msvd": ("avi",), "plain": ("webm", "mp4")}


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray, list[str], str]]:
    """A few dozen generated clips (48x96, 8 frames: letterboxed into the tiny preset's 12x16) with their captions and
    splits; ids in MSVD's shape."""
    corpus = generate(CLIPS, seed=3, frames=8, height=48, width=96, captions_per_clip=4)
    return [(f"clip{split}{i}_0_4", c.frames, c.captions, split)
            for split in ("train", "val", "test") for i, c in enumerate(corpus.splits[split])]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, clips) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("own")
    for layout, formats in FORMATS.items():
        write_video_folder(root / layout, layout, clips, formats)
    return {layout: root / layout for layout in FORMATS}


def copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def run_slr(argv: list[str], capsys) -> tuple[int, str]:
    code = slr(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("layout", list(FORMATS))
def test_each_layout_prepares_as_the_service_decodes_and_resumes(layout, folders, clips, tmp_path):
    cfg = preset("tiny").model
    plan = read_folder(folders[layout])
    assert plan.layout == layout and len(plan.entries) == CLIPS
    assert {e.split for e in plan.entries} == {"train", "val", "test"}
    if layout != "msvd":  # MSR-VTT and captions.csv name the splits; MSVD's come from the paper's rule
        assert {e.clip_id: e.split for e in plan.entries} == {c[0]: c[3] for c in clips}
    assert all("français" not in " ".join(e.captions) for e in plan.entries)  # MSVD: English rows only
    first = prepare_store(plan, tmp_path / "store", cfg, "tiny", workers=2)
    assert (first.decoded, first.failed) == (CLIPS, 0)
    corpus = load_store(tmp_path / "store")
    clip = corpus.splits["test"][0]
    entry = next(e for e in plan.entries if e.clip_id == clip.clip_id)
    served = prepare_upload(Path(entry.file).read_bytes(), cfg, MediaLimits())
    np.testing.assert_array_equal(clip.frames.astype(np.float32) / 255.0, served.array)  # bit for bit
    assert served.box is not None and clip.attributes["frame_box"] == list(served.box)  # where the picture lies
    again = prepare_store(read_folder(folders[layout]), tmp_path / "store", cfg, "tiny", workers=2)
    assert (again.decoded, again.skipped) == (0, CLIPS)


def test_a_broken_file_is_reported_skipped_and_not_tried_again(folders, tmp_path):
    folder = copy(folders["plain"], tmp_path)
    broken = sorted((folder / "clips").glob("*.mp4"))[0]
    broken.write_bytes(broken.read_bytes()[:300])  # a download cut short
    cfg = preset("tiny").model
    outcome = prepare_store(read_folder(folder), tmp_path / "store", cfg, workers=1)
    assert (outcome.decoded, outcome.failed) == (CLIPS, 1)
    report = json.loads((tmp_path / "store" / REPORT).read_text())
    assert report["unreadable"] == 1 and report["files"][0]["file"] == str(broken)
    assert report["files"][0]["reason"].startswith("undecodable_media")
    status = np.fromfile(tmp_path / "store" / STATUS, np.uint8)
    assert (status == FAILED).sum() == 1 and (status == OK).sum() == CLIPS - 1
    assert broken.stem not in {c.clip_id for c in load_store(tmp_path / "store").clips()}
    again = prepare_store(read_folder(folder), tmp_path / "store", cfg, workers=1)
    assert (again.decoded, again.failed) == (0, 1)


def test_a_row_not_committed_is_never_read_and_is_redone(folders, tmp_path):
    """A run killed mid-way: rows whose status was not written are not clips yet; the next run decodes them."""
    cfg = preset("tiny").model
    prepare_store(read_folder(folders["msrvtt"]), tmp_path / "store", cfg)
    status = np.fromfile(tmp_path / "store" / STATUS, np.uint8)
    status[5:9] = 0
    status.tofile(tmp_path / "store" / STATUS)
    with pytest.raises(DataError, match="4 of 24 clips are not prepared yet"):
        load_store(tmp_path / "store")
    assert prepare_store(read_folder(folders["msrvtt"]), tmp_path / "store", cfg).decoded == 4
    assert len(load_store(tmp_path / "store")) == CLIPS


def test_training_reads_the_store_memory_mapped(folders, tmp_path):
    cfg = preset("tiny").model
    prepare_store(read_folder(folders["msrvtt"]), tmp_path / "store", cfg)
    corpus = load_store(tmp_path / "store")
    assert isinstance(corpus.splits["train"][0].frames, np.memmap)
    vocab = Vocab.build(corpus.all_captions("train"), min_count=2)
    cfg.max_words, cfg.vocab_size, cfg.video_decoder = 20, len(vocab), "layers"  # demo's decoder: centred targets
    data = split_tensors(corpus, "train", vocab, cfg)
    assert data.rows is not None and len(data) == len(corpus.splits["train"])
    batch = make_batch(data, torch.tensor([2, 0]), torch.Generator().manual_seed(0))
    want = np.stack([corpus.splits["train"][i].frames for i in (2, 0)]).astype(np.float32) / 255.0
    np.testing.assert_array_equal(batch["video"].numpy(), want)
    assert batch["frames_centred"].shape == batch["video"].shape  # computed once beside the store, mapped


def test_changed_files_refuse_the_old_store(folders, tmp_path):
    prepare_store(read_folder(folders["msrvtt"]), tmp_path / "store", preset("tiny").model)
    with pytest.raises(DataError, match="prepared from other files or at another frame size"):
        prepare_store(read_folder(folders["msrvtt"]), tmp_path / "store", preset("demo").model)


# ---------------------------------------------------------------- mistakes: one line, exit 2

def test_a_misnamed_annotation_file_names_the_files_looked_for(folders, tmp_path, capsys):
    folder = copy(folders["msrvtt"], tmp_path)
    (folder / "train_val_videodatainfo.json").rename(folder / "videodatainfo.json")
    (folder / "test_videodatainfo.json").unlink()
    code, err = run_slr(["data", "prepare", str(folder), "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "train_val_videodatainfo.json" in err and "found videodatainfo.json" in err
    # the old traceback: `slr train --data msrvtt` on the same folder
    code, err = run_slr(["train", "--data", "msrvtt", "--data-dir", str(folder), "--out", str(tmp_path / "r")],
                        capsys)
    assert code == 2 and err.count("\n") == 1 and "test_videodatainfo.json" in err


def test_absent_videos_are_counted_and_named(folders, tmp_path, capsys):
    folder = copy(folders["msvd"], tmp_path)
    gone = sorted((folder / "YouTubeClips").iterdir())[:3]
    for p in gone:
        p.unlink()
    code, err = run_slr(["data", "prepare", str(folder), "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and err.count("\n") == 1 and f"3 of {CLIPS} annotated videos are absent" in err
    assert gone[0].stem in err and "--allow-missing" in err
    assert slr(["data", "prepare", str(folder), "--out", str(tmp_path / "s"), "--preset", "tiny",
                "--allow-missing", "--workers", "1"]) == 0
    assert len(load_store(tmp_path / "s")) == CLIPS - 3


def test_a_folder_of_no_layout_says_which_three_it_expected(tmp_path, capsys):
    (tmp_path / "movies").mkdir()
    code, err = run_slr(["data", "prepare", str(tmp_path), "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and err.count("\n") == 1 and "matches none of the three layouts" in err
    assert "captions.csv" in err and "videodatainfo.json" in err and "video_corpus.csv" in err


def test_no_video_data_refuses_unless_sentences_only(folders, tmp_path, capsys):
    folder = copy(folders["msrvtt"], tmp_path)
    shutil.rmtree(folder / "videos")
    code, err = run_slr(["data", "prepare", str(folder), "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--sentences-only" in err
    assert run_slr(["data", "prepare", str(folder), "--out", str(tmp_path / "s"), "--sentences-only"], capsys)[0] == 0
    code, err = run_slr(["train", "--data", "store", "--data-dir", str(tmp_path / "s"), "--preset", "tiny",
                         "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("\n") == 1 and "no video data" in err
    # the feature corpora: captions without a features/ folder refuse alike (they used to warn and train)
    code, err = run_slr(["train", "--data", "msrvtt", "--data-dir", str(folder), "--preset", "tiny",
                         "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "no video data" in err
