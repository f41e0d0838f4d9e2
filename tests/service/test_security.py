"""Security: the API key on every model endpoint (read from the OpenAPI, so a new endpoint cannot be forgotten),
health endpoints open, CORS off by default and configurable, the body limit against many-part uploads, no path
from a request to the file system, Redis keys namespaced by model version.

Already covered elsewhere, not repeated here: 413 for a declared or a streamed (chunked) body over the limit
(tests/service/test_service.py), the non-root USER of every serving image (tests/deploy/test_deploy.py).
"""
from __future__ import annotations

import asyncio
import functools
import io
import pickle
import re
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import redis

from service.app import create_app
from service.settings import Settings
from tests.service_fixtures import encode_clip, moving_square_clip, redis_server, uvicorn_server

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
    wrong_keys = ["", "nope", KEY[:-1], KEY + "x", KEY.upper(), KEY[:-1] + chr(ord(KEY[-1]) ^ 1),
                  ("é" * len(KEY)).encode("utf-8")]
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


def test_the_key_is_decided_by_compare_digest_alone(artifacts_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every protected endpoint leaves the decision to secrets.compare_digest (constant time) and to nothing else:
    when it says no, the right key is refused; when it says yes, a wrong key of any length passes (no `==` and no
    length check beside it). A missing key is refused without a comparison. Endpoints from the OpenAPI."""
    import secrets

    calls: list[tuple[object, object]] = []
    verdict = [False]

    def compare_digest(a: object, b: object) -> bool:
        calls.append((a, b))
        return verdict[0]

    monkeypatch.setattr(secrets, "compare_digest", compare_digest)
    client = InProcess(Settings(artifacts=str(artifacts_dir), redis_url="", api_key=KEY))  # no model: 401 or past it
    protected = [(method.upper(), path) for path, item in client.app.openapi()["paths"].items()
                 for method in item if path not in OPEN_PATHS]
    assert {p for _, p in protected} >= {"/encode", "/caption", "/paraphrase", "/reconstruct", "/models"}
    for method, path in protected:
        calls.clear()
        assert client.request(method, path, {"X-API-Key": KEY}).status_code == 401, path
        assert calls == [(KEY.encode(), KEY.encode())], (path, calls)
        assert client.request(method, path, {}).status_code == 401, path
    verdict[0] = True
    for method, path in protected:
        for wrong in ("x", KEY[:-1], KEY + "y" * 100):
            assert client.request(method, path, {"X-API-Key": wrong}).status_code != 401, (path, wrong)
        assert client.request(method, path, {}).status_code == 401, path


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


class Planted:
    """Unpickling this creates `marker`: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# Python's audit events (PEP 578) for the file system, processes, unpickling and running code objects.
AUDITED = ("open", "exec")
AUDITED_PREFIXES = ("os.", "shutil.", "tempfile.", "subprocess.", "pickle.", "marshal.", "ctypes.")
_audit: dict = {"on": False, "events": []}


def _audit_hook(event: str, args: tuple) -> None:
    if not _audit["on"] or not (event in AUDITED or event.startswith(AUDITED_PREFIXES)):
        return
    frame = sys._getframe(1)
    while frame is not None:  # a module being imported (lazily, by any library) reads files: not the request
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return
        frame = frame.f_back
    _audit["events"].append((event, repr(args)[:200]))


def _hostile_and_ordinary_requests(seed: int, marker: Path) -> list[tuple[str, str, dict, int]]:
    """(method, path, httpx arguments, expected status): every endpoint, and pickles, paths and odd names."""
    def clip(fmt: str, i: int) -> tuple[str, bytes]:
        return f"c.{fmt}", encode_clip(moving_square_clip(12, seed=seed + i), fmt)

    npy = io.BytesIO()
    np.save(npy, np.array([Planted(marker), None], dtype=object), allow_pickle=True)
    return [
        *(("POST", "/encode", {"files": {"video": clip(fmt, i)}}, 200)
          for i, fmt in enumerate(("mp4", "webm", "gif", "avi", "mov", "npy"))),
        ("POST", "/caption", {"files": {"video": clip("mp4", 10)}, "data": {"num_captions": "3"}}, 200),
        ("POST", "/paraphrase", {"json": {"sentence": f"a red square {seed}", "num_alternatives": 2}}, 200),
        ("POST", "/reconstruct", {"files": {"video": clip("mp4", 11)}}, 200),
        ("POST", "/sentence-to-video", {"json": {"sentence": f"a blue circle {seed}", "format": "json"}}, 200),
        ("GET", "/models", {}, 200),
        ("GET", "/metrics", {}, 200),
        ("POST", "/encode", {"files": {"video": (f"../../../../..{marker}.mp4", clip("mp4", 12)[1])}}, 200),
        ("POST", "/caption", {"data": {"latent_id": "../../etc/passwd"}}, 422),
        ("POST", "/caption", {"data": {"latent_id": "slr:../../etc:v:" + "0" * 64}}, 422),
        ("POST", "/encode", {"files": {"video": ("x.npy", npy.getvalue())}}, 422),
        ("POST", "/encode", {"files": {"video": ("x.pkl", pickle.dumps(Planted(marker)))}}, 415),
    ]


def test_requests_never_reach_the_file_system_or_unpickle(artifacts_dir: Path, tmp_path: Path) -> None:
    """Behaviour, not source text: the audit hooks see every file opened, directory listed, process started, pickle
    class looked up or code object run, in any thread. Every endpoint and hostile inputs (a pickle as the upload
    and inside a .npy, paths as file names and latent_ids), after a first round that loads what loads lazily,
    raise none of them; nothing was unpickled. (The engine reads the artifacts root at start only.)"""
    if _audit_hook not in _audit.setdefault("installed", []):
        sys.addaudithook(_audit_hook)  # process-wide and permanent: it records only while _audit["on"]
        _audit["installed"].append(_audit_hook)
    marker = tmp_path / "unpickled"
    app = create_app(Settings(artifacts=str(artifacts_dir), redis_url="", log_level="warning"))

    async def go() -> tuple[list[tuple[str, int, int]], list[tuple[str, str]]]:
        wrong = []
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as c:
            for round_ in (0, 1):
                requests = _hostile_and_ordinary_requests(1000 * round_, marker)
                _audit["events"].clear()
                _audit["on"] = round_ == 1
                try:
                    for method, path, kwargs, status in requests:
                        r = await c.request(method, path, **kwargs)
                        if r.status_code != status:
                            wrong.append((path, status, r.status_code))
                finally:
                    _audit["on"] = False
            events = list(_audit["events"])
            # The control: a static file served from a worker thread is seen opening it.
            folder = Path(next(r for r in app.routes if getattr(r, "name", None) == "static").app.directory)
            static = next(f for f in sorted(folder.rglob("*")) if f.is_file())
            _audit["on"] = True
            try:
                assert (await c.get(f"/static/{static.relative_to(folder).as_posix()}")).status_code == 200
            finally:
                _audit["on"] = False
            assert any(e == "open" and static.name in a for e, a in _audit["events"]), _audit["events"]
        return wrong, events

    wrong, events = asyncio.run(go())
    assert wrong == [] and events == [], (wrong, events)
    assert not marker.exists() and not Path(f"{marker}.mp4").exists()
    pickle.loads(pickle.dumps(Planted(marker)))
    assert marker.exists()  # the payload is real


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
    fields = {b"mu", b"sigma", b"first", b"box", b"sig_v", b"fam_s"}  # raw bytes, never a pickle
    assert all(client.type(k) == b"hash" and set(client.hkeys(k)) <= fields for k in ids)


# ---- a value planted in Redis -------------------------------------------------------------------------------------

def _planted_requests(latent_id: str) -> list[tuple[str, dict]]:
    return [("/caption", {"data": {"latent_id": latent_id}}), ("/paraphrase", {"json": {"latent_id": latent_id}}),
            ("/reconstruct", {"data": {"latent_id": latent_id}})]


def _await_redis_up(base: str) -> None:
    """A value of a foreign type costs the cache its Redis for a moment (it retries); /readyz brings it back."""
    for _ in range(100):
        if httpx.get(f"{base}/readyz", timeout=10).json()["redis"] == "up":
            return
        time.sleep(0.1)
    raise AssertionError("Redis not back after a planted value")


def test_a_pickle_planted_in_redis_is_never_unpickled(secured: tuple[str, str], tmp_path: Path) -> None:
    """Whoever can write to Redis plants pickles under well-formed latent_ids: as a string (what a pickling cache
    writes) and as the service's own hash with pickled fields. Each is a miss (404), and nothing is unpickled."""
    base, url = secured
    headers = {"X-API-Key": KEY}
    version = httpx.get(f"{base}/models", headers=headers).json()["version"]
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(Planted(marker))
    odd = payload if len(payload) % 4 else payload + b"."  # pickle ignores what follows its STOP opcode
    client = redis.Redis.from_url(url)
    planted = {f"slr:{version}:s:{'a' * 64}": payload,
               f"slr:{version}:v:{'b' * 64}": {"mu": odd, "sigma": odd, "first": payload}}
    try:
        for key, value in planted.items():
            if isinstance(value, bytes):
                client.set(key, value)
            else:
                client.hset(key, mapping=value)
            for path, kwargs in _planted_requests(key):
                r = httpx.post(f"{base}{path}", headers=headers, timeout=30, **kwargs)
                assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_latent_id", (key, path, r.text)
            _await_redis_up(base)
    finally:
        client.delete(*planted)
    assert not marker.exists()
    pickle.loads(payload)
    assert marker.exists()  # the payload is real


def test_a_planted_hash_of_the_wrong_size_is_a_miss(secured: tuple[str, str]) -> None:
    base, url = secured
    headers = {"X-API-Key": KEY}
    version = httpx.get(f"{base}/models", headers=headers).json()["version"]
    key = f"slr:{version}:s:{'c' * 64}"
    client = redis.Redis.from_url(url)
    client.hset(key, mapping={"mu": b"\0" * 4 * 3, "sigma": b"\0" * 4 * 3})  # 3 floats, whatever latent_dim is
    try:
        for path, kwargs in _planted_requests(key):
            r = httpx.post(f"{base}{path}", headers=headers, timeout=30, **kwargs)
            assert r.status_code == 404, (path, r.status_code, r.text)
    finally:
        client.delete(key)
