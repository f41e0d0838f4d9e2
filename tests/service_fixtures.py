"""Helpers for the service tests: real encoded clips, a real uvicorn process, a private redis-server.

Not a conftest: plain functions and context managers the service test modules import. The clips and the
processes come from bench/support.py, the same code the benches run.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from bench.support import (
    ROOT,
    VIDEO_CODECS,
    encode_clip,
    free_port,
    moving_square_clip,
    redis_server,
    stop_process,
    wait_ready,
)
from bench.support import uvicorn_server as _uvicorn_server

__all__ = ["ROOT", "VIDEO_CODECS", "encode_clip", "free_port", "moving_square_clip", "receive_then_disconnect",
           "redis_server", "stop_process", "uvicorn_server", "wait_ready"]


@contextlib.contextmanager
def uvicorn_server(env: dict[str, str], log_path: Path | None = None) -> Iterator[str]:
    """`python -m uvicorn --factory service.app:create_app` on a free port; yields its base URL once /readyz is 200."""
    with _uvicorn_server(env, log_path, timeout_s=60, grace_s=15) as server:
        yield server.url


def receive_then_disconnect(gone: asyncio.Event, body: bytes = b"{}") -> Callable[[], Awaitable[dict]]:
    """An ASGI `receive`, as uvicorn's: the whole request body, then `http.disconnect` once `gone` is set (the
    client left, or the answer ended)."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    return receive


CHROMIUM = "/usr/bin/chromium"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@contextlib.contextmanager
def offline_page(**page_options: object) -> Iterator[tuple[object, list[str]]]:
    """A page in Debian's headless Chromium (playwright) that may reach loopback only: every other request is
    refused and listed, which proves a page works offline. Yields (page, refused URLs)."""
    import shutil
    from urllib.parse import urlparse

    import pytest

    sync_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page(**page_options)
        refused: list[str] = []

        def loopback_only(route, request) -> None:
            if urlparse(request.url).hostname in LOOPBACK or request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                refused.append(request.url)
                route.abort()

        page.route("**/*", loopback_only)
        try:
            yield page, refused
        finally:
            browser.close()
