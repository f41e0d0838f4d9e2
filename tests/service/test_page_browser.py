"""The web page at / in headless Chromium, offline, served with the shipped model: upload a clip and read its
captions, type a sentence and wait for the generated clip, click (and key) a point of the latent map, see a bad
file explained in words, fit a phone's width. Screenshots go to a temporary folder (printed)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.service_fixtures import LOOPBACK, ROOT, encode_clip, moving_square_clip, offline_page, uvicorn_server

pytestmark = pytest.mark.browser
SHIPPED = ROOT / "models" / "default"
LOADED = "id => { const i = document.getElementById(id); return i.complete && i.naturalWidth > 0; }"


@pytest.fixture(scope="module")
def server(redis_url: str, tmp_path_factory) -> Iterator[str]:
    env = {"SLR_ARTIFACTS": str(SHIPPED), "SLR_REDIS_URL": redis_url, "SLR_LOG_LEVEL": "warning"}
    with uvicorn_server(env, tmp_path_factory.mktemp("logs") / "page.log") as base:
        yield base


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """A temporary folder, or SLR_SCREENSHOTS_DIR (how docs/page/*.png are made: the README links them)."""
    named = os.environ.get("SLR_SCREENSHOTS_DIR")
    path = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {path}")
    return path


@pytest.fixture()
def page(server: str):
    with offline_page(viewport={"width": 1100, "height": 1400}) as (page, refused):
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server}/", wait_until="networkidle")
        yield page
        assert not errors, errors  # no script error on the page
        assert all(urlparse(u).hostname not in LOOPBACK for u in refused)


def test_upload_a_clip_and_read_its_captions(page, tmp_path: Path, shots: Path) -> None:
    clip = tmp_path / "square.mp4"
    clip.write_bytes(encode_clip(moving_square_clip(24, 96, 128, seed=3), "mp4"))
    page.fill("#num-captions", "3")
    page.set_input_files("#video-file", str(clip))
    page.wait_for_selector("#captions li", timeout=30000)
    page.wait_for_function(LOADED, arg="reconstruction-img", timeout=30000)
    captions = page.locator("#captions li").all_inner_texts()
    assert 1 <= len(captions) <= 3 and len(set(captions)) == len(captions)
    assert "square" in captions[0], captions  # the shipped model names the shape
    assert page.inner_text("#latent-id").startswith("slr:")
    page.screenshot(path=str(shots / "caption.png"), full_page=True)


def test_an_unfamiliar_clip_is_flagged_beside_its_caption_and_an_mp4_is_previewed(page, tmp_path: Path,
                                                                                     shots: Path) -> None:
    """A clip unlike the training data (a photograph panned, from the out-of-domain set): the page says so in words
    beside the caption; the mp4 sent plays as the preview."""
    import numpy as np

    from model.data.ood import photo_clip

    clip = tmp_path / "photo.mp4"
    clip.write_bytes(encode_clip(photo_clip(np.random.default_rng(7), 0), "mp4"))
    page.set_input_files("#video-file", str(clip))
    page.wait_for_selector("#caption-warning:not([hidden])", timeout=30000)
    assert "unlike anything the model was trained on" in page.inner_text("#caption-warning")
    assert "unlike" in page.inner_text("#caption-familiarity")
    assert page.evaluate("!document.getElementById('input-video').hidden && "
                         "document.getElementById('input-video').src.startsWith('blob:')")
    page.screenshot(path=str(shots / "unfamiliar.png"), full_page=True)


def test_a_sample_clip_is_one_click(page) -> None:
    page.locator("#sample-list button").first.click()
    page.wait_for_selector("#captions li", timeout=30000)
    assert "red" in page.inner_text("#captions li:first-child")  # the first sample is a red square


def test_type_a_sentence_and_see_the_generated_clip(page, shots: Path) -> None:
    page.fill("#sentence-input", "a blue circle moves up")
    page.click("#generate-button")
    page.wait_for_function(LOADED, arg="generated-img", timeout=30000)
    assert page.evaluate("document.getElementById('generated-img').naturalWidth") > 64  # scaled for viewing
    assert len(page.locator("#paraphrases li").all_inner_texts()) >= 1
    page.fill("#sentence-input", "a magenta hexagon spins")
    page.click("#generate-button")
    page.wait_for_selector("#unknown-words:not([hidden])", timeout=30000)
    assert "magenta" in page.inner_text("#unknown-words")
    page.fill("#sentence-input", "bonjour le monde")
    page.click("#generate-button")
    # The warning of the sentence before ("most of these words ...") is showing already: wait for this one's.
    page.wait_for_function("() => document.getElementById('sentence-warning').textContent.includes('none of these')",
                           timeout=30000)
    assert not page.locator("#sentence-warning").is_hidden()
    page.screenshot(path=str(shots / "sentence.png"), full_page=True)


def test_click_and_key_points_of_the_latent_map(page, shots: Path) -> None:
    points = page.locator("#map .point")
    points.first.wait_for(timeout=30000)
    assert points.count() == 12  # six sample clips and their six sentences
    # Every point can be hit where it is drawn: a clip and its sentence that meet in the latent are set apart.
    covered = page.evaluate("""() => [...document.querySelectorAll('#map .point')].flatMap((g) => {
        g.scrollIntoView({block: 'center'});
        const r = g.querySelector('.mark').getBoundingClientRect();
        const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return top && top.closest('.point') === g ? [] : [g.getAttribute('aria-label')]; })""")
    assert not covered, covered
    points.first.click()
    page.wait_for_function(LOADED, arg="map-video", timeout=30000)
    first = page.inner_text("#map-caption")
    assert first
    sentence_point = page.locator("#map .point[data-kind=sentence]").first
    sentence_point.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("t => document.getElementById('map-point-title').textContent.includes(t)",
                           arg="sentence", timeout=30000)
    page.screenshot(path=str(shots / "map.png"), full_page=True)


def test_a_bad_file_is_explained_in_words(page, tmp_path: Path, shots: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("shopping list\n")
    page.set_input_files("#video-file", str(bad))
    alert = page.locator("#error-video")
    alert.wait_for(state="visible", timeout=30000)
    text = alert.inner_text()
    assert "notes.mp4" in text and "text" in text and "mp4" in text, text
    page.screenshot(path=str(shots / "error.png"), full_page=True)


def test_readable_at_phone_width(page, shots: Path) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    page.locator("#map .point").first.wait_for(timeout=30000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(shots / "phone.png"), full_page=True)
