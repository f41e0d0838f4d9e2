"""Swagger UI and ReDoc in headless Chromium, offline: every endpoint listed, one request through "Try it out".

Every non-loopback request is refused by `page.route`, so the page can only work with assets served by the app.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.service_fixtures import uvicorn_server

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ENDPOINTS = ("/encode", "/caption", "/paraphrase", "/reconstruct", "/sentence-to-video", "/models", "/healthz",
             "/readyz", "/metrics")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def server(artifacts_dir: Path, redis_url: str, tmp_path_factory) -> Iterator[str]:
    env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": redis_url, "SLR_LOG_LEVEL": "warning"}
    with uvicorn_server(env, tmp_path_factory.mktemp("logs") / "swagger.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page()
        blocked: list[str] = []

        def offline_only(route, request) -> None:
            if urlparse(request.url).hostname in LOOPBACK or request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                blocked.append(request.url)
                route.abort()

        page.route("**/*", offline_only)
        page.blocked = blocked  # type: ignore[attr-defined]
        yield page
        browser.close()


def test_swagger_lists_every_endpoint_and_runs_try_it_out(server: str, browser_page) -> None:
    page = browser_page
    page.goto(f"{server}/docs", wait_until="networkidle")
    page.wait_for_selector(".opblock-summary-path", timeout=20000)
    assert "Unable to render" not in page.content()
    paths = {p.strip().replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts()}
    assert set(ENDPOINTS) <= paths, paths

    op = page.locator(".opblock-post").filter(has=page.locator(".opblock-summary-path", has_text="/paraphrase"))
    op.locator(".opblock-summary").first.click()
    op.get_by_role("button", name="Try it out").click()
    body = op.locator("textarea.body-param__text")
    assert "sentence" in body.input_value()  # prefilled from the schema example
    op.get_by_role("button", name="Execute").click()
    status = op.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=20000)
    assert status.inner_text().strip().startswith("200")
    assert '"alternatives"' in op.locator(".live-responses-table .microlight").first.inner_text()
    assert all(urlparse(u).hostname not in LOOPBACK for u in page.blocked)


def test_redoc_renders_offline(server: str, browser_page) -> None:
    page = browser_page
    page.goto(f"{server}/redoc", wait_until="networkidle")
    page.wait_for_selector("h2:has-text('Caption a video')", timeout=20000)
    for summary in ("Paraphrase a sentence", "Generate a video from a sentence", "Reconstruct a video through the SLR"):
        assert page.locator(f"h2:has-text('{summary}')").count() == 1, summary
