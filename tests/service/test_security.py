"""Security: the API key on every model endpoint (read from the OpenAPI, so a new endpoint cannot be forgotten),
health endpoints open, CORS off by default and configurable, the body limit against many-part uploads, no path
from a request to the file system, Redis keys namespaced by model version.

Already covered elsewhere, not repeated here: 413 for a declared or a streamed (chunked) body over the limit
(tests/service/test_service.py), the non-root USER of every serving image (tests/deploy/test_deploy.py).
"""
from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import redis

from service.app import create_app
from service.settings import Settings
from tests.service_fixtures import ROOT, encode_clip, moving_square_clip, redis_server, uvicorn_server

KEY = "k3y-" + uuid.uuid4().hex
OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}  # plus the docs: /docs, /redoc, /openapi.json
MAX_UPLOAD = 256 * 1024


@pytest.fixture(scope="module")
def secured(artifacts_dir: Path, tmp_path_factory) -> Iterator[tuple[str, str]]:
    with redis_server() as (_, url):
        env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": url, "SLR_API_KEY": KEY,
               "SLR_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "SLR_LOG_LEVEL": "warning", "SLR_INTRA_OP_THREADS": "1",
               "SLR_CACHE_TTL_S": "3600"}
        with uvicorn_server(env, tmp_path_factory.mktemp("logs") / "secured.log") as base:
            yield base, url


def _operations(base: str) -> list[tuple[str, str, dict]]:
    spec = httpx.get(f"{base}/openapi.json").json()
    return [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()]


@functools.lru_cache
def _clip() -> bytes:
    return encode_clip(moving_square_clip(12, seed=31), "mp4")


def _minimal_request(method: str, path: str) -> dict:
    if path in ("/paraphrase", "/sentence-to-video"):
        return {"json": {"sentence": "a red square moves"}}
    if path in ("/encode", "/caption", "/reconstruct"):
        return {"files": {"video": ("c.mp4", _clip())}}
    return {}


# ---- API key ----------------------------------------------------------------------------------------------------

def test_every_model_endpoint_requires_the_key(secured: tuple[str, str]) -> None:
    base, _ = secured
    protected = [(m, p, op) for m, p, op in _operations(base) if p not in OPEN_PATHS]
    assert {p for _, p, _ in protected} >= {"/encode", "/caption", "/paraphrase", "/reconstruct",
                                            "/sentence-to-video", "/models"}
    wrong_keys = ["", "nope", KEY[:-1], KEY + "x", KEY.upper(), KEY[:-1] + chr(ord(KEY[-1]) ^ 1), ("é" * len(KEY)).encode("utf-8")]
    with httpx.Client(base_url=base, timeout=30) as c:
        for method, path, op in protected:
            assert "401" in op["responses"], f"{method} {path} does not document 401"
            assert any("APIKeyHeader" in s for s in op.get("security", [{}])[0]), f"{method} {path}: no security"
            r = c.request(method, path, **_minimal_request(method, path))
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (path, r.text)
            for wrong in wrong_keys:
                r = c.request(method, path, headers={"X-API-Key": wrong}, **_minimal_request(method, path))
                assert r.status_code == 401, (path, wrong, r.text)
            r = c.request(method, path, headers={"X-API-Key": KEY}, **_minimal_request(method, path))
            assert r.status_code == 200, (path, r.text)
        for path in (*OPEN_PATHS, "/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 200, path


def test_key_compared_in_constant_time() -> None:
    from service.routers import deps

    source = inspect.getsource(deps.require_api_key)
    assert "secrets.compare_digest" in source and "== settings.api_key" not in source
    # Nowhere else in the service is the key compared with ==.
    for path in (ROOT / "service").rglob("*.py"):
        assert not re.search(r"api_key\s*[!=]=|[!=]=\s*\S*api_key", path.read_text()), path


# ---- CORS -------------------------------------------------------------------------------------------------------

class InProcess:
    """Requests straight into the ASGI app, lifespan not run: CORS is answered before any route or model."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)

    def request(self, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t") as c:
                return await c.request(method, path, headers=headers)
        return asyncio.run(go())

    def preflight(self, origin: str) -> httpx.Response:
        return self.request("OPTIONS", "/paraphrase", {"Origin": origin, "Access-Control-Request-Method": "POST",
                                                       "Access-Control-Request-Headers": "x-api-key,content-type"})

    def get(self, path: str, origin: str) -> httpx.Response:
        return self.request("GET", path, {"Origin": origin})


def test_cors_off_by_default(artifacts_dir: Path) -> None:
    client = InProcess(Settings(artifacts=str(artifacts_dir), redis_url=""))
    r = client.preflight("https://evil.example")
    assert "access-control-allow-origin" not in r.headers and r.status_code in (405, 404)
    r = client.get("/healthz", "https://evil.example")
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_configured_origins_only(artifacts_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLR_CORS_ORIGINS", "https://app.example, https://admin.example")
    client = InProcess(Settings(artifacts=str(artifacts_dir), redis_url=""))
    r = client.preflight("https://app.example")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
    assert "POST" in r.headers["access-control-allow-methods"]
    r = client.preflight("https://evil.example")
    assert r.headers.get("access-control-allow-origin") not in ("https://evil.example", "*")
    r = client.get("/healthz", "https://admin.example")
    assert r.headers["access-control-allow-origin"] == "https://admin.example"
    assert "x-latent-id" in r.headers["access-control-expose-headers"].lower()
    r = client.get("/healthz", "https://evil.example")
    assert "access-control-allow-origin" not in r.headers


# ---- the body limit ---------------------------------------------------------------------------------------------

def test_many_small_parts_over_the_limit_are_refused(secured: tuple[str, str]) -> None:
    base, _ = secured
    files = [("extra", (f"p{i}.bin", b"x" * 16_000)) for i in range(MAX_UPLOAD // 16_000 + 2)]
    r = httpx.post(f"{base}/encode", files=files, headers={"X-API-Key": KEY}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_field_bombs_are_client_errors(secured: tuple[str, str]) -> None:
    base, _ = secured
    headers = {"X-API-Key": KEY}
    r = httpx.post(f"{base}/encode", data={f"f{i}": "1" for i in range(3000)}, headers=headers, timeout=30)
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error"}, r.text
    r = httpx.post(f"{base}/caption", data={"latent_id": "x" * 200_000}, headers=headers, timeout=30)
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error"}, r.text


# ---- nothing from a request reaches the file system -------------------------------------------------------------

def test_upload_names_and_ids_never_become_paths(secured: tuple[str, str], tmp_path: Path) -> None:
    base, _ = secured
    headers = {"X-API-Key": KEY}
    clip = encode_clip(moving_square_clip(12, seed=32), "mp4")
    target = tmp_path / f"pwned-{uuid.uuid4().hex}"
    for name in (f"../../../../../..{target}", str(target), "..\\..\\evil.mp4", "/etc/passwd", "\x00.mp4"):
        r = httpx.post(f"{base}/encode", files={"video": (name, clip)}, headers=headers, timeout=30)
        assert r.status_code == 200, r.text  # the bytes decide; the name is only a label
    assert not target.exists()
    for latent_id in ("../../etc/passwd", "slr:../../etc:v:" + "0" * 64, "slr:v1/../x:v:" + "0" * 64):
        r = httpx.post(f"{base}/caption", data={"latent_id": latent_id}, headers=headers, timeout=30)
        assert r.status_code == 422, r.text


def _raw_get(base: str, target: str) -> bytes:
    """A GET with the path sent byte for byte (no client-side normalisation of `..`)."""
    url = urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_static_docs_do_not_serve_outside_their_folder(secured: tuple[str, str]) -> None:
    base, _ = secured
    for target in ("/static-offline-docs/../../../../../../etc/passwd",
                   "/static-offline-docs/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
                   "/static-offline-docs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                   "/static-offline-docs//etc/passwd", "/../../../etc/passwd", "/docs/../../../etc/passwd"):
        answer = _raw_get(base, target)
        assert b"root:" not in answer and answer.split(b" ", 2)[1] in (b"404", b"400", b"401"), (target, answer[:200])


def test_request_handling_code_never_touches_the_file_system() -> None:
    """The modules a request passes through open no files and build no paths (engine.py and settings read
    only the configured artifacts root, at start)."""
    modules = [*sorted((ROOT / "service" / "routers").glob("*.py")),
               *(ROOT / "service" / n for n in ("predictor.py", "media.py", "cache.py", "batching.py",
                                                "errors.py", "middleware.py", "schemas.py"))]
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name):
                    assert fn.id not in {"open", "Path", "eval", "exec", "__import__"}, \
                        f"{path.name}:{node.lineno} calls {fn.id}"
                elif isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
                    owner, name = fn.value.id, fn.attr
                    assert owner not in {"os", "shutil", "subprocess", "pickle", "tempfile", "pathlib"}, \
                        f"{path.name}:{node.lineno} calls {owner}.{name}"
                    assert (owner, name) not in {("np", "load"), ("np", "fromfile"), ("np", "save")}, \
                        f"{path.name}:{node.lineno} calls {owner}.{name}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {a.name for a in node.names} | {getattr(node, "module", None) or ""}
                assert not names & {"os", "shutil", "pathlib", "pickle", "subprocess", "tempfile"}, \
                    f"{path.name}:{node.lineno} imports {names}"


# ---- Redis namespace --------------------------------------------------------------------------------------------

def test_redis_keys_are_namespaced_by_model_version(secured: tuple[str, str]) -> None:
    base, url = secured
    headers = {"X-API-Key": KEY}
    version = httpx.get(f"{base}/models", headers=headers).json()["version"]
    ids = [httpx.post(f"{base}/encode", headers=headers, timeout=30, **kw).json()["latent_id"] for kw in (
        {"data": {"sentence": "a blue circle moves up"}},
        {"files": {"video": ("c.mp4", encode_clip(moving_square_clip(12, seed=33), "mp4"))}},
        {"data": {"sentence": "a red square"}, "files": {"video": ("c.mp4", encode_clip(moving_square_clip(
            12, seed=34), "mp4"))}})]
    client = redis.Redis.from_url(url)
    keys = [k.decode() for k in client.scan_iter(count=1000)]
    assert set(ids) <= set(keys)
    pattern = re.compile(rf"^slr:{re.escape(version)}:(v|s|vs):[0-9a-f]{{64}}$")
    assert keys and all(pattern.match(k) for k in keys), keys
    assert all(0 < client.ttl(k) <= 3600 for k in ids)
    assert all(client.type(k) == b"hash" and set(client.hkeys(k)) <= {b"mu", b"sigma", b"first"} for k in ids)
