"""The data room: synthetic generator, corpus save/load, MSVD and MSR-VTT loaders (torch-free)."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.data import attributes, synthetic
from model.data.attributes import parse_attributes
from model.data.captions import MAX_CAPTION_WORDS, SHAPE_SYNONYMS
from model.data.corpus import Clip, Corpus, load_split
from model.data.load import load_corpus
from model.data.msrvtt import load_msrvtt
from model.data.msvd import load_msvd, scaled_split_sizes
from model.data.shapes import COLOURS, MOTIONS, SHAPES, render_clip
from model.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate(400, seed=7)


def _main(attrs: dict) -> dict:
    return {k: attrs[k] for k in ("colour", "shape", "motion")}


# --- synthetic ---------------------------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_clips_and_captions():
    a, b, c = generate(40, seed=3), generate(40, seed=3), generate(40, seed=4)
    assert [x.clip_id for x in a.clips()] == [x.clip_id for x in b.clips()]
    for x, y in zip(a.clips(), b.clips()):
        assert x.frames.tobytes() == y.frames.tobytes()
        assert x.captions == y.captions and x.attributes == y.attributes
    assert a.meta == b.meta
    assert any(x.frames.tobytes() != y.frames.tobytes() for x, y in zip(a.clips(), c.clips()))


def test_a_share_of_clips_is_drawn_at_other_aspect_ratios_and_letterboxed():
    plain, mixed = generate(60, seed=2, frames=4, height=18, width=32), generate(
        60, seed=2, frames=4, height=18, width=32, aspect_share=0.5)
    boxed = [c for c in mixed.clips() if "frame_box" in c.attributes]
    assert 15 <= len(boxed) <= 45 and mixed.meta["aspect_share"] == 0.5
    by_id = {c.clip_id: c for c in plain.clips()}
    for clip in mixed.clips():
        if "frame_box" not in clip.attributes:  # the others are exactly the clips of a corpus without the share
            assert clip.frames.tobytes() == by_id[clip.clip_id].frames.tobytes()
            continue
        top, left, h, w = clip.attributes["frame_box"]
        assert clip.frames.shape == (4, 18, 32, 3) and (h == 18 or w == 32)
        assert abs(w / h - clip.attributes["aspect"]) < 0.15
        bars = np.ones((18, 32), bool)
        bars[top:top + h, left:left + w] = False
        assert not clip.frames[:, bars].any()  # black bars
        assert clip.frames[:, ~bars].any(axis=-1).mean() > 0.5  # a picture inside them
        # The captions still name the drawn objects: the attributes come from the same draw.
        assert parse_attributes(clip.captions[0])["colour"] in {o["colour"] for o in clip.attributes["objects"]}


def test_unboxing_a_letterboxed_clip_fills_the_frame():
    from model.data.dataset import centre_clip, unbox_clip

    mixed = generate(40, seed=2, frames=4, height=18, width=32, aspect_share=1.0)
    clip = next(c for c in mixed.clips() if c.attributes["frame_box"][3] < 32)  # a pillarboxed one
    full = unbox_clip(clip.frames, clip.attributes["frame_box"])
    assert full.shape == clip.frames.shape and full[:, :, 0].any() and full[:, :, -1].any()
    assert centre_clip(full).shape == full.shape
    assert unbox_clip(clip.frames, None) is clip.frames


def test_frames_shape_dtype_and_sizes():
    small = generate(12, seed=1, frames=8, height=24, width=32, captions_per_clip=5)
    for clip in small.clips():
        assert clip.frames.dtype == np.uint8 and clip.frames.shape == (8, 24, 32, 3)
        assert clip.features is None and len(clip.captions) == 5
    assert small.name == "synthetic" and small.video_input == "frames"


def test_splits_are_disjoint_and_roughly_80_10_10(corpus: Corpus):
    ids = {s: {c.clip_id for c in corpus.splits[s]} for s in ("train", "val", "test")}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert sum(map(len, ids.values())) == 400
    seen_test = [c for c in corpus.splits["test"] if not c.attributes["unseen_combo"]]
    n_seen = len(corpus.splits["train"]) + len(corpus.splits["val"]) + len(seen_test)
    assert abs(len(corpus.splits["train"]) - 0.8 * n_seen) <= 1
    assert abs(len(corpus.splits["val"]) - 0.1 * n_seen) <= 1


def test_held_out_combos_only_in_test(corpus: Corpus):
    held = {tuple(c) for c in corpus.meta["held_out_combos"]}
    assert len(held) >= 3
    for split in ("train", "val"):
        for clip in corpus.splits[split]:
            assert tuple(_main(clip.attributes).values()) not in held
            assert clip.attributes["unseen_combo"] is False
    unseen = [c for c in corpus.splits["test"] if c.attributes["unseen_combo"]]
    assert unseen and {tuple(_main(c.attributes).values()) for c in unseen} == held
    # Each part of a held-out combination is still seen in training, only the combination is new.
    train = [c.attributes for c in corpus.splits["train"]]
    for colour, shape, motion in held:
        assert any(a["colour"] == colour for a in train)
        assert any(a["shape"] == shape for a in train)
        assert any(a["motion"] == motion for a in train)


def test_attribute_coverage_and_two_object_clips(corpus: Corpus):
    attrs = [c.attributes for c in corpus.clips()]
    assert {a["colour"] for a in attrs} == set(COLOURS) and {a["shape"] for a in attrs} == set(SHAPES)
    assert {a["motion"] for a in attrs} == set(MOTIONS)
    assert {"red", "green", "blue", "yellow"} <= set(COLOURS) and {"circle", "square", "triangle"} <= set(SHAPES)
    two = [a for a in attrs if len(a["objects"]) == 2]
    assert 0.1 < len(two) / len(attrs) < 0.3
    for a in two:
        assert _main(a["objects"][0]) == _main(a) and a["objects"][1]["colour"] != a["colour"]
    assert len({a["background"] for a in attrs}) >= 4


def test_every_caption_parses_back_to_its_clip(corpus: Corpus):
    for clip in corpus.clips():
        assert len(set(clip.captions)) == len(clip.captions) == 8
        for caption in clip.captions:
            assert len(caption.split()) <= MAX_CAPTION_WORDS
            assert parse_attributes(caption) == _main(clip.attributes), (clip.clip_id, caption)
            assert clip.attributes["colour"] in caption.split()


def test_captions_vary_in_words_and_sentence_shape(corpus: Corpus):
    captions = corpus.all_captions()
    assert len(set(captions)) > 0.9 * len(captions)
    # Sentence shape: the caption with colour, shape and motion words blanked out.
    blank = re.compile(r"\b(" + "|".join(COLOURS) + r")\b")
    shapes = set()
    for caption in captions:
        s = blank.sub("C", caption)
        for syn in sorted({w for ws in SHAPE_SYNONYMS.values() for w in ws}, key=len, reverse=True):
            s = re.sub(rf"\b{syn}\b", "S", s)
        shapes.add(s)
    assert len(shapes) > 500
    assert len({c.split()[0] for c in captions}) >= 8  # openings: a, the, one, there, we, you, ...
    for phrase in ("a ", "the ", "there is", "that is", "is moving", "gets bigger"):
        assert any(phrase in c for c in captions), phrase
    for synonyms in SHAPE_SYNONYMS.values():
        assert sum(any(re.search(rf"\b{w}\b", c) for c in captions) for w in synonyms) >= 3
    assert all(not re.search(r"\ba [aeiou]", c) for c in captions)  # "an orange", not "a orange"


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("a red circle moves to the right", ("red", "circle", "right")),
        ("the red ball is sliding right", ("red", "circle", "right")),
        ("a ball that is red goes right", ("red", "circle", "right")),
        ("there is a red disc moving right", ("red", "circle", "right")),
        ("a big blue box gets bigger", ("blue", "square", "grow")),
        ("a small green plus sign bounces up and down", ("green", "cross", "bounce")),
        ("one yellow star does not move", ("yellow", "star", "still")),
        ("the cyan rhombus sinks", ("cyan", "diamond", "down")),
        ("a red circle moves left and a blue square moves up", ("red", "circle", "left")),
        ("a purple three sided shape is getting smaller", ("purple", "triangle", "shrink")),
        ("a dog runs on the grass", (None, None, None)),
    ],
)
def test_parse_attributes(sentence: str, expected: tuple):
    assert tuple(parse_attributes(sentence).values()) == expected


def _centroid_path(video: np.ndarray) -> np.ndarray:
    """Centroid (y, x) in the first and last frame of the pixels that differ from the temporal median (the object)."""
    diff = np.abs(video.astype(np.int16) - np.median(video, axis=0).astype(np.int16)).sum(-1) > 60
    ys, xs = np.mgrid[: video.shape[1], : video.shape[2]]
    return np.array([(ys[m].mean(), xs[m].mean()) for m in diff[[0, -1]]])


@pytest.mark.parametrize("motion, axis, sign", [("right", 1, 1), ("left", 1, -1), ("down", 0, 1), ("up", 0, -1)])
def test_render_clip_moves_the_object(motion: str, axis: int, sign: int):
    for seed in range(3):
        video = render_clip({"colour": "red", "shape": "square", "motion": motion}, 16, 36, 64,
                            np.random.default_rng(seed))
        path = _centroid_path(video)[:, axis]
        assert sign * (path[-1] - path[0]) > 4, (seed, path)


def test_render_clip_still_grow_and_two_objects():
    rng = np.random.default_rng(0)
    still = render_clip({"colour": "blue", "shape": "star", "motion": "still"}, 8, 36, 64, rng)
    assert still.shape == (8, 36, 64, 3) and (still[0] == still[-1]).all()
    grow = render_clip({"colour": "white", "shape": "circle", "motion": "grow"}, 8, 36, 64, rng)
    # Against frame 0 the changed area is the ring the object has grown into: it widens every frame.
    changed = (np.abs(grow.astype(np.int16) - grow[:1]).sum(-1) > 60).sum(axis=(1, 2))
    assert (np.diff(changed) > 0).all() and changed[-1] > 150, changed
    both = render_clip({"objects": [{"colour": "red", "shape": "circle", "motion": "left"},
                                    {"colour": "green", "shape": "cross", "motion": "up"}]}, 8, 36, 64, rng)
    assert both.dtype == np.uint8 and both.shape == (8, 36, 64, 3)


def test_synthetic_is_torch_free():
    code = ("import sys, model.data, model.data.corpus, model.data.synthetic, model.data.msvd, model.data.msrvtt,"
            " model.data.shapes, model.data.captions, model.data.load, model.data.features, model.data.attributes;"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- save / load ------------------------------------------------------------------------------------------
def test_save_load_round_trip_frames(tmp_path: Path):
    original = generate(30, seed=5, frames=4, height=12, width=16, captions_per_clip=3)
    original.save(tmp_path / "syn")
    loaded = Corpus.load(tmp_path / "syn")
    assert (loaded.name, loaded.video_input, loaded.meta, loaded.sizes()) == (
        original.name, original.video_input, original.meta, original.sizes())
    for a, b in zip(original.clips(), loaded.clips()):
        assert (a.clip_id, a.captions, a.attributes) == (b.clip_id, b.captions, b.attributes)
        assert a.frames.tobytes() == b.frames.tobytes() and b.frames.dtype == np.uint8
    assert load_corpus("synthetic", tmp_path / "syn").sizes() == original.sizes()
    assert len(load_corpus("synthetic", None, n_clips=5, frames=2, height=8, width=8)) == 5


def test_load_split_reads_the_first_clips_of_one_split(tmp_path: Path):
    original = generate(30, seed=5, frames=4, height=12, width=16, captions_per_clip=3)
    original.save(tmp_path / "syn")
    head = load_split(tmp_path / "syn", "train", 4)
    assert [c.clip_id for c in head] == [c.clip_id for c in original.splits["train"][:4]]
    assert all(a.frames.tobytes() == b.frames.tobytes() and a.attributes == b.attributes
               for a, b in zip(original.splits["train"], head))
    assert len(load_split(tmp_path / "syn", "test")) == len(original.splits["test"])
    with pytest.raises(ValueError, match="no split"):
        load_split(tmp_path / "syn", "dev")


def test_save_load_round_trip_features_of_varying_length(tmp_path: Path):
    rng = np.random.default_rng(0)
    clips = [Clip(f"v{i}", [f"caption {i}"], None, rng.random((i + 1, 4)).astype(np.float32), {}) for i in range(3)]
    corpus = Corpus("msvd", "features", {"train": clips[:2], "val": [], "test": clips[2:]}, {"k": 1})
    corpus.save(tmp_path)
    loaded = Corpus.load(tmp_path)
    assert [c.features.shape for c in loaded.clips()] == [(1, 4), (2, 4), (3, 4)]
    assert all(np.array_equal(a.features, b.features) for a, b in zip(corpus.clips(), loaded.clips()))
    assert loaded.splits["val"] == [] and loaded.all_captions("test") == ["caption 2"]


def test_load_never_unpickles(tmp_path: Path):
    generate(3, seed=0, frames=2, height=8, width=8, captions_per_clip=2).save(tmp_path)
    np.savez(tmp_path / "train.npz", data=np.array([{"evil": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        Corpus.load(tmp_path)


def test_load_corpus_rejects_unknown_names(tmp_path: Path):
    with pytest.raises(ValueError):
        load_corpus("kinetics", tmp_path)
    with pytest.raises(FileNotFoundError):
        load_corpus("synthetic", tmp_path / "nothing")


# --- MSVD -------------------------------------------------------------------------------------------------
MSVD_COLUMNS = ["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"]
MSVD_IDS = [("-4wsuPCjDBc", 5, 15), ("-7KMZQEsJW4", 205, 208), ("-8y1Q0rA3n8", 108, 115), ("0lh_UWF9ZP4", 27, 34),
            ("1dfR0A_BXjw", 0, 6), ("5HAf_INrFy0", 3, 14), ("9bZkp7q19f0", 2, 9), ("B2yWwvA6-d0", 10, 20),
            ("TZ860P4iTaM", 15, 27), ("zv2RIbUsnSw", 1, 7)]


def _msvd_id(v: tuple) -> str:
    return f"{v[0]}_{v[1]}_{v[2]}"


def _write_features(features_dir: Path, ids: list[str], dim: int = 6) -> None:
    features_dir.mkdir(parents=True, exist_ok=True)
    for i, clip_id in enumerate(ids):
        shape = (dim,) if i % 2 else (3, dim)  # both (D,) and (Tf, D) are accepted
        np.save(features_dir / f"{clip_id}.npy", np.full(shape, i, dtype=np.float64))


def _write_video_corpus_csv(path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(MSVD_COLUMNS)
        for k, (vid, start, end) in enumerate(MSVD_IDS):
            w.writerow([vid, start, end, 100 + k, "clean", 20, "English", f"a man is playing, number {k}"])
            w.writerow([vid, start, end, 200 + k, "unverified", 25, "English", f"someone plays {k}"])
            w.writerow([vid, start, end, 300 + k, "clean", 30, "German", f"ein Mann spielt {k}"])


def test_msvd_csv_keeps_english_and_splits_proportionally(tmp_path: Path):
    _write_video_corpus_csv(tmp_path / "video_corpus.csv")
    ids = [_msvd_id(v) for v in MSVD_IDS]
    _write_features(tmp_path / "features", [i for i in ids if i != ids[4]])  # one clip has no features
    with pytest.warns(UserWarning, match="1 annotated clips"):
        corpus = load_msvd(tmp_path / "video_corpus.csv", tmp_path / "features")
    assert corpus.name == "msvd" and corpus.video_input == "features"
    assert scaled_split_sizes(10) == (6, 1, 3)
    ordered = sorted(ids)
    expected = {"train": ordered[:6], "val": ordered[6:7], "test": ordered[7:]}
    for split, want in expected.items():
        assert [c.clip_id for c in corpus.splits[split]] == [i for i in want if i != ids[4]]
    assert corpus.meta["missing_features"] == 1 and corpus.meta["missing_feature_ids"] == [ids[4]]
    clip = corpus.get(ids[0])
    assert clip.captions == ["a man is playing, number 0", "someone plays 0"]  # German row dropped
    assert not any("Mann" in c for c in corpus.all_captions())
    assert all(c.features.dtype == np.float32 and c.features.shape[-1] == 6 for c in corpus.clips())
    assert all(c.attributes == {} and c.frames is None for c in corpus.clips())


def test_msvd_txt_with_header_and_mapping_order(tmp_path: Path):
    ids = [_msvd_id(v) for v in MSVD_IDS]
    lines = ["# Youtube2Text descriptions", "# <clip_id> <description>", ""]
    lines += [f"{i} a cat is eating food {k}" for k, i in enumerate(ids)] + [f"{ids[0]} a kitten eats"]
    (tmp_path / "AllVideoDescriptions.txt").write_text("\n".join(lines) + "\n")
    _write_features(tmp_path / "features", ids)
    corpus = load_msvd(tmp_path / "AllVideoDescriptions.txt", tmp_path / "features", split_sizes=(5, 2, 3))
    assert corpus.sizes() == {"train": 5, "val": 2, "test": 3} and corpus.meta["missing_features"] == 0
    assert corpus.get(ids[0]).captions == ["a cat is eating food 0", "a kitten eats"]
    # The standard order of youtube_mapping.txt decides the split when it is there.
    (tmp_path / "youtube_mapping.txt").write_text("\n".join(f"{i} vid{len(ids) - k}" for k, i in enumerate(ids)) + "\n")
    mapped = load_corpus("msvd", tmp_path, split_sizes=(5, 2, 3))
    assert [c.clip_id for c in mapped.splits["train"]] == ids[::-1][:5]


def test_msvd_refuses_pickled_feature_files(tmp_path: Path):
    _write_video_corpus_csv(tmp_path / "video_corpus.csv")
    ids = [_msvd_id(v) for v in MSVD_IDS]
    _write_features(tmp_path / "features", ids)
    np.save(tmp_path / "features" / f"{ids[2]}.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        load_msvd(tmp_path / "video_corpus.csv", tmp_path / "features")


# --- MSR-VTT ----------------------------------------------------------------------------------------------
def _write_msrvtt(root: Path) -> None:
    train_val = {
        "info": {"year": 2016}, "videos": [
            {"category": 9, "url": "u", "video_id": f"video{i}", "start time": 0.0, "end time": 10.0,
             "split": "train" if i < 6 else "validate", "id": i}
            for i in range(8)],
        "sentences": [{"caption": f"sentence {j} of video {i}", "video_id": f"video{i}", "sen_id": 100 * i + (2 - j)}
                      for i in range(8) for j in range(3)],
    }
    test = {"videos": [{"video_id": f"video{i}", "split": "test", "id": i} for i in (8, 9, 10)],
            "sentences": [{"caption": f"test sentence {i}", "video_id": f"video{i}", "sen_id": 1000 + i}
                          for i in (8, 9, 10)]}
    (root / "train_val_videodatainfo.json").write_text(json.dumps(train_val))
    (root / "test_videodatainfo.json").write_text(json.dumps(test))


def test_msrvtt_splits_from_files(tmp_path: Path):
    _write_msrvtt(tmp_path)
    _write_features(tmp_path / "features", [f"video{i}" for i in range(11) if i != 9])
    files = [tmp_path / "train_val_videodatainfo.json", tmp_path / "test_videodatainfo.json"]
    with pytest.warns(UserWarning, match="1 videos"):
        corpus = load_msrvtt(files, tmp_path / "features")
    assert corpus.name == "msrvtt" and corpus.video_input == "features"
    assert [c.clip_id for c in corpus.splits["train"]] == [f"video{i}" for i in range(6)]
    assert [c.clip_id for c in corpus.splits["val"]] == ["video6", "video7"]
    assert [c.clip_id for c in corpus.splits["test"]] == ["video8", "video10"]  # natural order, video9 skipped
    assert corpus.meta["missing_features"] == 1
    # Captions in sen_id order (the fixture numbers them backwards).
    assert corpus.get("video1").captions == [f"sentence {j} of video 1" for j in (2, 1, 0)]
    with pytest.warns(UserWarning):
        via_root = load_corpus("msrvtt", tmp_path)
    assert via_root.sizes() == corpus.sizes()
    with pytest.warns(UserWarning):
        only_test = load_msrvtt(tmp_path / "test_videodatainfo.json", tmp_path / "features")  # one Path is fine
    assert only_test.sizes() == {"train": 0, "val": 0, "test": 2}


def test_object_binding_reads_each_clause_of_a_two_object_caption():
    two = {"objects": [{"colour": "red", "shape": "circle", "motion": "bounce"},
                       {"colour": "blue", "shape": "square", "motion": "left"}]}
    hyps = ["a red ball bounces up and down and we also see a blue square moving left",  # both bound
            "a red square bounces while the blue ball moves left",  # attributes swapped between the objects
            "a blue box slides to the left"]  # one object, bound
    got = attributes.object_binding(hyps, [two] * 3)
    assert got == {"first": pytest.approx(2 / 3), "both": pytest.approx(1 / 3), "n": 3}
    assert attributes.object_binding(hyps[:1], [{"objects": two["objects"][:1]}]) == {}
    # Every caption the generator writes for a two-object clip binds both of its objects.
    clips = [c for c in generate(200, seed=4).clips() if len(c.attributes["objects"]) == 2]
    assert clips and attributes.object_binding([c.captions[0] for c in clips], [c.attributes for c in clips])[
        "both"] == 1.0


def test_two_object_clips_open_with_the_larger_object_one_object_clips_unchanged():
    """Captions open with the main object; in a two-object clip it is drawn large and the second object's mean
    radius is at most SECOND_RADIUS_SHARE of it, so the picture says which object a caption opens with. The
    earlier rule (`salient_first=False`) draws the same one-object clips byte for byte."""
    from model.data.synthetic import _make_clip

    larger = 0  # two-object clips seen
    for i in range(300):
        combo = ("red", "circle", "left")
        new, old = (_make_clip(i, 9, combo, False, 8, 36, 64, 2, salient_first=s) for s in (True, False))
        if len(new.attributes["objects"]) == 1:
            assert np.array_equal(new.frames, old.frames) and new.captions == old.captions
            continue
        main, second = (o["radius"] for o in new.attributes["objects"])
        assert second <= synthetic.SECOND_RADIUS_SHARE * main + 0.01, new.attributes["objects"]
        larger += 1
    assert larger >= 40


def test_attributes_read_the_words_the_model_reads() -> None:
    """One word rule (core.vocab.tokenize) for the vocabulary and for reading captions' attributes."""
    from core.vocab import tokenize

    said = "A RED square, moving to the right!"
    assert parse_attributes(said) == parse_attributes(" ".join(tokenize(said)))
    assert parse_attributes(said)["colour"] == "red" and parse_attributes(said)["shape"] == "square"
