"""model.data.outside: an outside test set drawn by ffmpeg's filters and Pillow, encoded as real files,
decoded by the service's own path, labelled with what was drawn; and its scorer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.frames import prepare_clip
from core.media import MediaLimits, decode_video_bytes
from model.data.outside import (
    CONTAINERS,
    CSS_NAMES,
    LABELS_JSON,
    _centres,
    _plan,
    _shake,
    aspect_group,
    decode_clip_file,
    ffmpeg_binary,
    load_outside_set,
    outside_accuracy,
)
from model.data.outside_writers import build_outside_set
from model.data.shapes import COLOUR_RGB
from model.probes import probe_video

T, H, W = 12, 36, 64


@pytest.fixture(scope="module")
def outside_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("outside")
    build_outside_set(d, seed=0, n_per_kind=1, quick=True)
    return d


def _isolate(clip: np.ndarray) -> np.ndarray:
    """The object alone on black: the background is a plane (plain or linear-gradient backgrounds) fitted
    per frame to the border pixels; pixels far from it are the object. probe_video then reads a clean
    clip whatever the background was."""
    t, h, w, _ = clip.shape
    ys, xs = np.indices((h, w))
    border = np.zeros((h, w), bool)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    design = np.stack([np.ones(border.sum()), ys[border], xs[border]], 1)
    full = np.stack([np.ones(h * w), ys.ravel(), xs.ravel()], 1)
    out = np.zeros_like(clip)
    for i, frame in enumerate(clip):
        coef, *_ = np.linalg.lstsq(design, frame[border], rcond=None)
        bg = (full @ coef).reshape(h, w, 3)
        mask = np.linalg.norm(frame - bg, axis=-1) > 0.2
        out[i][mask] = frame[mask]
    return out


def test_css_colours_stay_nearest_to_their_canonical_colour() -> None:
    from PIL import ImageColor

    for canon, names in CSS_NAMES.items():
        for name in names:
            rgb = np.array(ImageColor.getrgb(name))
            assert min(COLOUR_RGB, key=lambda c: np.linalg.norm(rgb - COLOUR_RGB[c])) == canon


def test_builds_files_and_labels(outside_dir) -> None:
    labels = json.loads((outside_dir / LABELS_JSON).read_text())["clips"]
    clips = load_outside_set(outside_dir)
    sources = ("ffmpeg", "pil") if ffmpeg_binary() else ("pil",)
    assert len(clips) == len(labels) == len(sources) * len(CONTAINERS)
    assert {lab["container"] for _, lab in clips} == set(CONTAINERS)
    assert {lab["source"] for _, lab in clips} == set(sources)
    for path, lab in clips:
        assert path.exists() and path.stat().st_size > 0 and path.suffix == "." + lab["container"]
        assert {"colour", "shape", "motion", "source", "container", "size"} <= set(lab)


def test_every_container_decodes_via_the_service_path(outside_dir) -> None:
    from core.config import ModelConfig

    for path, lab in load_outside_set(outside_dir):
        clip = decode_clip_file(path, T, H, W)
        assert clip.shape == (T, H, W, 3) and clip.dtype == np.float32, path.name
        assert 0.0 <= clip.min() and clip.max() <= 1.0
        # Literally what the service computes: its decoder, then the shared prepare_clip.
        raw = decode_video_bytes(path.read_bytes(), ModelConfig(frames=T, height=H, width=W), MediaLimits())
        assert np.array_equal(clip, prepare_clip(raw, T, H, W))
        w, h = (int(v) for v in lab["size"].split("x"))
        # The service's scaling: a frame past 4x the model's size straight to the model's, a smaller one kept whole.
        assert raw.shape[1:3] == ((H, W) if h > 4 * H or w > 4 * W else (h, w))


def test_labels_match_what_was_drawn(outside_dir) -> None:
    """The analytic probe, on the decoded model input with the background removed, reads the labelled
    colour and motion (direction of the centroid, growth of the area)."""
    wrong = []
    clips = load_outside_set(outside_dir)
    assert clips and not any(lab.get("objects") for _, lab in clips)  # one object each: the probe reads one
    for path, lab in clips:
        p = probe_video(_isolate(decode_clip_file(path, T, H, W)))
        if (p.colour, p.motion) != (lab["colour"], lab["motion"]):
            wrong.append((path.name, p))
    assert not wrong, wrong


def test_outside_accuracy_scores_captions(outside_dir) -> None:
    clips = load_outside_set(outside_dir)
    truth = {path.name: lab for path, lab in clips}

    def perfect(path) -> str:
        lab = truth[path.name]
        verb = {"grow": "grows", "shrink": "shrinks"}.get(lab["motion"], f"moves {lab['motion']}")
        return f"a {lab['colour']} {lab['shape']} {verb}"

    res = outside_accuracy(perfect, clips)
    assert res["n"] == len(clips) and res["overall"]["all"] == 1.0 and not res["failures"]
    assert set(res["by_container"]) == set(CONTAINERS)

    def always_red_ball_right(video: np.ndarray) -> str:
        assert video.shape == (T, H, W, 3)
        return "a red ball rolls to the right"

    res = outside_accuracy(always_red_ball_right, clips, frames=T, height=H, width=W)
    expect = np.mean([lab["colour"] == "red" for _, lab in clips])
    assert res["overall"]["colour"] == pytest.approx(expect)
    assert res["overall"]["all"] == pytest.approx(np.mean(
        [(lab["colour"], lab["shape"], lab["motion"]) == ("red", "circle", "right") for _, lab in clips]))
    assert sum(v["n"] for v in res["by_container"].values()) == len(clips)
    # Every clip is scored in exactly one aspect-ratio group and one background group.
    for kind in ("by_aspect", "by_background"):
        assert sum(v["n"] for v in res[kind].values()) == len(clips), kind
    assert set(res["by_aspect"]) == {aspect_group(*map(int, lab["size"].split("x"))) for _, lab in clips}
    assert "portrait" in res["by_aspect"]  # the quick set draws a 144x192 clip


def test_aspect_groups_and_camera_shake() -> None:
    assert [aspect_group(w, h) for w, h in ((240, 320), (288, 288), (320, 240), (640, 360), (444, 240))] == [
        "portrait", "square", "4:3", "16:9", "wide"]
    frames = np.zeros((6, 40, 60, 3), np.uint8)
    frames[:, 18:22, 28:32] = 255
    shaken = _shake(frames, 0)
    centres = [np.argwhere(f[..., 0] > 0).mean(0) for f in shaken]
    assert all(np.abs(c - (19.5, 29.5)).max() <= 1.0 for c in centres)  # at most 2% of the frame
    assert len({tuple(c) for c in centres}) > 1  # and it does move


def test_decode_path_gives_the_frames_of_decoding_every_frame(outside_dir, monkeypatch) -> None:
    """core.media converts only the frames it samples; on every container of the outside set the model
    input equals the reference path's (convert every frame, then sample) within one grey level when it scales as the
    reference does (in two steps), and within a few grey levels on average when it shrinks straight to the model's
    size (core.media.DIRECT_SCALE: the two differ only along sharp edges)."""
    from bench.decode import decode_everything
    from core import media
    from core.config import ModelConfig
    from core.media import prepare_upload

    cfg = ModelConfig(frames=T, height=H, width=W)
    seen = set()
    for path, label in load_outside_set(outside_dir):
        data = path.read_bytes()
        direct = prepare_upload(data, cfg, MediaLimits()).array
        with monkeypatch.context() as m:
            m.setattr(media, "DIRECT_SCALE", False)
            new = prepare_upload(data, cfg, MediaLimits()).array
        old = decode_everything(data, cfg)
        assert new.shape == old.shape == direct.shape == (T, H, W, 3)
        assert np.abs(new - old).max() <= 1 / 255 + 1e-6, path.name
        assert np.abs(direct - old).mean() <= 3 / 255, path.name
        seen.add(path.suffix.lstrip("."))
    assert seen == set(CONTAINERS), f"formats not compared: {set(CONTAINERS) - seen}"


@pytest.fixture(scope="module")
def two_object_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("outside_two")
    build_outside_set(d, seed=1, n_per_kind=1, quick=True, containers=("mp4", "gif"), two_per_kind=2)
    return d


def test_two_object_plans_draw_a_smaller_second_object_apart() -> None:
    """The object a caption opens with is the larger one (the corpus' rule): the second object's mean radius is
    at most 0.62 of the main one's, of another colour, on a path clear of the main one's in most clips."""
    clear = 0
    for k in range(40):
        plan = _plan("pil", "mp4", k, np.random.default_rng([5, k]), two=True)
        second = plan["second"]
        assert second["colour"] != plan["colour"]
        assert (second["r0"] + second["r1"]) / 2 <= 0.62 * (plan["r0"] + plan["r1"]) / 2 + 1e-6
        x, y, r = _centres(second)
        mx, my, mr = _centres(plan)
        clear += bool(np.min(np.hypot(x - mx, y - my) - (r + mr)) >= 0)
    assert clear >= 34, clear


def test_two_object_files_show_both_colours_the_main_one_larger(two_object_dir) -> None:
    clips = [(p, lab) for p, lab in load_outside_set(two_object_dir) if lab.get("objects")]
    sources = ("ffmpeg", "pil") if ffmpeg_binary() else ("pil",)
    assert len(clips) == len(sources) * 2 * 2
    for path, lab in clips:
        main, second = lab["objects"]
        assert (main["colour"], main["shape"], main["motion"]) == (lab["colour"], lab["shape"], lab["motion"])
        assert "_two0" in path.name
        clip = _isolate(decode_clip_file(path, T, 4 * H, 4 * W))
        pixels = clip.reshape(-1, 3)[np.abs(clip.reshape(-1, 3)).sum(1) > 0] * 255.0
        nearest = np.array([min(COLOUR_RGB, key=lambda c: np.linalg.norm(px - COLOUR_RGB[c])) for px in pixels[::7]])
        counts = {c: int((nearest == c).sum()) for c in (main["colour"], second["colour"])}
        assert counts[second["colour"]] > 0 and counts[main["colour"]] > counts[second["colour"]], (path.name, counts)


def test_two_object_captions_are_scored_against_the_object_they_name(two_object_dir) -> None:
    clips = load_outside_set(two_object_dir)
    truth = {path.name: lab for path, lab in clips}

    def clause(o: dict) -> str:
        verb = {"grow": "grows", "shrink": "shrinks"}.get(o["motion"], f"moves {o['motion']}")
        return f"a {o['colour']} {o['shape']} {verb}"

    def second_first(path) -> str:  # names the smaller object first, rightly, then the main one mixed up
        lab = truth[path.name]
        if not lab.get("objects"):
            return clause(lab)
        main, second = lab["objects"]
        return clause(second) + " and " + clause({**main, "shape": second["shape"]})

    res = outside_accuracy(second_first, clips)
    n_two = sum(bool(lab.get("objects")) for _, lab in clips)
    assert res["n"] == len(clips) and res["overall"]["n"] == len(clips) - n_two  # overall: one-object clips
    assert res["by_objects"]["two"]["n"] == n_two and res["by_objects"]["two"]["all"] == 1.0
    assert res["by_objects"]["one"]["all"] == 1.0
    binding = res["binding_two_objects"]
    assert binding["n"] == n_two and binding["first"] == 1.0
    same_shape = np.mean([lab["objects"][0]["shape"] == lab["objects"][1]["shape"] for _, lab in clips
                          if lab.get("objects")])
    assert binding["both"] == pytest.approx(same_shape)
