"""The served app for end-to-end modules: one uvicorn process per module, on a free port, serving the tiny
model's artifacts with the real Redis. A module asks for `server` (its URL) or `client` (an httpx.Client on it)
and names its own settings in `SERVER_ENV`; `CLIENT_TIMEOUT_S` (default 30) sets the client's timeout."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service_fixtures import uvicorn_server


@pytest.fixture(scope="module")
def log_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's server log, named after the module (tests read it, e.g. for request ids)."""
    return tmp_path_factory.mktemp("logs") / f"{request.module.__name__.rsplit('.', 1)[-1]}.log"


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, artifacts_dir: Path, redis_url: str, log_path: Path) -> Iterator[str]:
    env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": redis_url, **request.module.SERVER_ENV}
    with uvicorn_server(env, log_path) as base:
        yield base


@pytest.fixture(scope="module")
def client(request: pytest.FixtureRequest, server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=getattr(request.module, "CLIENT_TIMEOUT_S", 30)) as c:
        yield c
