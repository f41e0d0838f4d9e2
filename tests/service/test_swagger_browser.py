"""Swagger UI and ReDoc in headless Chromium, offline: every endpoint listed, and "Try it out" succeeds on all five
POST endpoints as they stand (the three video ones with a real GIF picked in the file input), with no field edited.

Every non-loopback request is refused by `page.route`, so the page can only work with assets served by the app.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.service_fixtures import LOOPBACK, encode_clip, moving_square_clip, offline_page

pytestmark = pytest.mark.browser
ENDPOINTS = ("/encode", "/caption", "/paraphrase", "/reconstruct", "/sentence-to-video", "/models", "/vocab",
             "/healthz", "/readyz", "/metrics", "/samples")


SERVER_ENV = {"SLR_LOG_LEVEL": "warning"}  # the shared `server` (tests/service/conftest.py)


@pytest.fixture(scope="module")
def browser_page():
    with offline_page() as (page, refused):
        page.blocked = refused
        yield page


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clip.gif"
    path.write_bytes(encode_clip(moving_square_clip(12, seed=515), "gif"))
    return path


def open_docs(page, server: str) -> None:
    page.goto(f"{server}/docs", wait_until="networkidle")
    page.wait_for_selector(".opblock-summary-path", timeout=20000)


def try_it_out(page, path: str, upload: Path | None) -> tuple[str, str]:
    """Expand the operation, press Try it out, pick the file (if any), Execute: (status, response body text)."""
    op = page.locator(".opblock-post").filter(has=page.locator(f".opblock-summary-path[data-path='{path}']"))
    op.locator(".opblock-summary").first.click()
    op.get_by_role("button", name="Try it out").click()
    if upload is not None:
        op.locator("input[type=file]").set_input_files(str(upload))
    op.get_by_role("button", name="Execute").click()
    status = op.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=30000)
    body = op.locator(".live-responses-table").first.inner_text()
    return status.inner_text().strip(), body


def test_swagger_lists_every_endpoint(server: str, browser_page) -> None:
    page = browser_page
    open_docs(page, server)
    assert "Unable to render" not in page.content()
    paths = {p.strip().replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts()}
    assert set(ENDPOINTS) <= paths, paths


@pytest.mark.parametrize("path,upload,expect", [
    ("/encode", True, '"config": "encode_v"'),  # a video only: no sentence prefilled
    ("/caption", True, '"caption"'),  # no latent_id=string, no max_len=1 prefilled
    ("/reconstruct", True, "image/gif"),
    ("/paraphrase", False, '"alternatives"'),  # the JSON example
    ("/sentence-to-video", False, "image/gif"),
])
def test_try_it_out_succeeds_as_prefilled(server: str, browser_page, clip_file: Path, path: str, upload: bool,
                                          expect: str) -> None:
    page = browser_page
    open_docs(page, server)
    status, body = try_it_out(page, path, clip_file if upload else None)
    assert status.startswith("200"), (path, status, body[:500])
    assert expect in body, body[:500]
    if path == "/caption":  # max_len was not prefilled with 1: a caption of more than one word
        assert len(body.split('"caption": "')[1].split('"')[0].split()) > 1, body[:300]
    assert all(urlparse(u).hostname not in LOOPBACK for u in page.blocked)


def test_redoc_renders_offline(server: str, browser_page) -> None:
    page = browser_page
    page.goto(f"{server}/redoc", wait_until="networkidle")
    page.wait_for_selector("h2:has-text('Caption a video')", timeout=20000)
    for summary in ("Paraphrase a sentence", "Generate a video from a sentence", "Reconstruct a video through the SLR"):
        assert page.locator(f"h2:has-text('{summary}')").count() == 1, summary
    assert not [u for u in page.blocked if "redoc" in u], page.blocked  # its logo too is served by the app
