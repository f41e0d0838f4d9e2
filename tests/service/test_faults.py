"""Faults while serving: Redis stopped and restarted under load, Redis answering slowly, a new export published
into the artifacts root under load, corrupt artifacts at start; and a short soak (bench/soak.py, 1,000 requests
at concurrency 64). Every Redis here is a private redis-server on its own port; the shared one is never touched.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from bench.support import spawn_uvicorn, start_redis
from tests.service_fixtures import encode_clip, free_port, moving_square_clip, stop_process, uvicorn_server

ENV = {"SLR_LOG_LEVEL": "warning", "SLR_INTRA_OP_THREADS": "1", "SLR_MAX_UPLOAD_BYTES": str(1024 * 1024)}
WORDS = ("a", "the", "red", "blue", "green", "square", "circle", "triangle", "moves", "slides", "left", "right",
         "up", "down", "to", "small", "big")


class PrivateRedis:
    """A redis-server on a fixed free port that a test may stop and start again (DEBUG enabled for SLEEP)."""

    def __init__(self, directory: Path) -> None:
        self.port, self.directory, self.proc = free_port(), directory, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = start_redis(self.port, self.directory, ("--enable-debug-command", "yes"))

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace_s=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10)


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    r = PrivateRedis(tmp_path)
    r.start()
    try:
        yield r
    finally:
        r.stop()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))


class Load:
    """Mixed requests from a few client threads until stopped; every status and failure is kept."""

    def __init__(self, base: str, latent_id: str, clips: list[bytes], workers: int = 6) -> None:
        self.base, self.latent_id, self.clips, self.workers = base, latent_id, clips, workers
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(workers)
        self._futures: list = []

    def _one(self, c: httpx.Client, rng: random.Random, i: int) -> httpx.Response:
        kind = i % 5
        if kind == 0:
            return c.post("/paraphrase", json={"sentence": _sentence(rng), "num_alternatives": 1})
        if kind == 1:
            return c.post("/encode", data={"sentence": _sentence(rng)})
        if kind == 2:
            return c.post("/caption", data={"latent_id": self.latent_id})
        if kind == 3:
            return c.post("/encode", files={"video": ("c.mp4", rng.choice(self.clips))})
        return c.get("/healthz")

    def _worker(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.base, timeout=30) as c:
            i = seed
            while not self._stop.is_set():
                try:
                    r = self._one(c, rng, i)
                    self.statuses[r.status_code] += 1
                    if r.status_code != 200:
                        self.failures.append(f"{r.request.url.path} {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")
                i += 1

    def __enter__(self) -> "Load":
        self._futures = [self._pool.submit(self._worker, s) for s in range(self.workers)]
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for f in self._futures:
            f.result()
        self._pool.shutdown()

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not {what} after {timeout_s} s")


def _clips(n: int, seed: int) -> list[bytes]:
    return [encode_clip(moving_square_clip(12, seed=seed + i), "mp4") for i in range(n)]


# ---- Redis ------------------------------------------------------------------------------------------------------

def test_redis_stopped_and_restarted_under_load(artifacts_dir: Path, private_redis: PrivateRedis,
                                                tmp_path: Path) -> None:
    env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": private_redis.url, **ENV}
    with uvicorn_server(env, tmp_path / "server.log") as base, httpx.Client(base_url=base, timeout=30) as c:
        latent_id = c.post("/encode", files={"video": ("a.mp4", _clips(1, 9100)[0])}).json()["latent_id"]
        assert private_redis.client().exists(latent_id)
        with Load(base, latent_id, _clips(4, 9200)) as load:
            time.sleep(0.5)
            private_redis.stop()
            _wait_for(lambda: c.get("/readyz").json()["redis"] == "down", 10, "degraded")
            time.sleep(0.5)
            during_outage = load.total
            private_redis.start()  # same port, empty: a restarted cache
            _wait_for(lambda: c.get("/readyz").json()["redis"] == "up", 15, "reconnected")
            time.sleep(0.5)
        assert load.failures == [], load.failures[:5]
        assert load.total > during_outage > 20 and set(load.statuses) == {200}
        # The cache resumed: a fresh SLR lands in the restarted Redis, and latent_ids made before the outage
        # still answer from the in-process tier.
        r = c.post("/encode", files={"video": ("f.mp4", _clips(1, 9150)[0])}).json()
        fresh = r["latent_id"]
        assert r["cached"] is False
        _wait_for(lambda: bool(private_redis.client().exists(fresh)), 5, "written to the restarted Redis")
        assert c.post("/caption", data={"latent_id": latent_id}).status_code == 200
        assert "slr_redis_up 1.0" in c.get("/metrics").text
    print(f"\nredis restart under load: {load.total} requests, statuses {dict(load.statuses)}")


def _asleep(r: PrivateRedis) -> bool:
    """Redis does not answer a PING within 0.2 s: it is inside DEBUG SLEEP."""
    with socket.create_connection(("127.0.0.1", r.port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        s.settimeout(0.2)
        try:
            return not s.recv(16).startswith(b"+PONG")
        except TimeoutError:
            return True


def test_slow_redis_times_out_then_falls_back(artifacts_dir: Path, private_redis: PrivateRedis, tmp_path: Path) -> None:
    """Redis blocked (DEBUG SLEEP): requests pay at most the 0.5 s socket timeout, then skip Redis. Bounded by
    events and by the timeout itself, not by how fast this machine answers."""
    sleep_s, timeout_s = 4.0, 0.5  # SlrCache's socket_timeout
    env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": private_redis.url, **ENV}
    with uvicorn_server(env, tmp_path / "server.log") as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/readyz").json()["redis"] == "up"
        woke: list[float] = []
        sleeper = threading.Thread(target=lambda: (
            private_redis.client().execute_command("DEBUG", "SLEEP", str(sleep_s)), woke.append(time.monotonic())))
        sleeper.start()
        _wait_for(lambda: _asleep(private_redis), 5, "Redis asleep")
        ready_while_slow = c.get("/readyz").json()  # its PING times out (0.5 s) inside the sleep
        rng, spans, statuses = random.Random(5), [], []
        start = time.monotonic()
        while time.monotonic() - start < sleep_s / 2:
            t0 = time.monotonic()
            r = c.post("/paraphrase", json={"sentence": _sentence(rng), "num_alternatives": 0})
            spans.append((t0, time.monotonic()))
            statuses.append(r.status_code)
        sleeper.join()
        assert set(statuses) == {200}, statuses
        assert ready_while_slow["status"] == "degraded" and ready_while_slow["redis"] == "down"
        # Nobody waited for Redis to wake: a request that did would have lasted until the sleep ended.
        assert all(end < woke[0] for _, end in spans), (woke[0] - start, spans[-3:])
        # After the timeout, requests skip Redis: more were answered during the sleep than could have been had each
        # paid the socket timeout (the cache retries Redis every 2 s, so one or two pay it).
        waited = sum(end - t0 >= timeout_s for t0, end in spans)
        assert len(spans) > (spans[-1][1] - start) / timeout_s + 1, (len(spans), waited)
        _wait_for(lambda: c.get("/readyz").json()["redis"] == "up", 10, "recovered")
        r = c.post("/encode", files={"video": ("f.mp4", _clips(1, 9250)[0])}).json()
        fresh = r["latent_id"]
        assert r["cached"] is False
        _wait_for(lambda: bool(private_redis.client().exists(fresh)), 5, "written after recovery")
    print(f"\nslow redis: {len(statuses)} requests, max latency {max(e - s for s, e in spans):.3f} s")


# ---- artifacts --------------------------------------------------------------------------------------------------

def test_new_export_published_while_serving(artifacts_dir: Path, tiny_run: Path, tmp_path: Path) -> None:
    """A new version exported into the served root under load, then the served version's directory deleted: no
    request fails, the running server keeps the version it started with (pinned: every graph and the vocabulary
    are in memory from start), and a restart serves the new `latest`."""
    from export.onnx_export import export_run

    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir, root)
    old = (root / "latest").read_text().strip()
    env = {"SLR_ARTIFACTS": str(root), "SLR_REDIS_URL": "", **ENV}
    with uvicorn_server(env, tmp_path / "server.log") as base, httpx.Client(base_url=base, timeout=30) as c:
        latent_id = c.post("/encode", data={"sentence": "a red square"}).json()["latent_id"]
        with Load(base, latent_id, _clips(2, 9300), workers=4) as load:
            export_run(tiny_run, root, version="published-while-serving")
            assert (root / "latest").read_text().strip() == "published-while-serving"
            time.sleep(0.3)
            shutil.rmtree(root / old)  # the old export cleaned up while it is still being served
            time.sleep(0.3)
        assert load.failures == [] and load.total > 20, load.failures[:5]
        assert c.get("/models").json()["version"] == old  # pinned at start
        assert c.get("/readyz").json()["model_version"] == old
    with uvicorn_server(env, tmp_path / "server2.log") as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/models").json()["version"] == "published-while-serving"
        r = c.post("/caption", data={"latent_id": latent_id})  # an SLR of the old version is not reused
        assert r.status_code == 404 and old in r.json()["error"]["message"]


def _start_refused(root: Path, tmp_path: Path) -> tuple[int, str]:
    """Start the server on a broken root; it must exit (never ready) and say why."""
    port = free_port()
    log = tmp_path / f"refused-{port}.log"
    with open(log, "wb") as f:
        proc = spawn_uvicorn(port, {"SLR_ARTIFACTS": str(root), "SLR_REDIS_URL": "", **ENV}, f)
        ready = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                ready = ready or httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert not ready, "a server on broken artifacts became ready"
    return proc.returncode, log.read_text(errors="replace")


def test_corrupt_artifacts_refuse_to_start(artifacts_dir: Path, tmp_path: Path) -> None:
    version = (artifacts_dir / "latest").read_text().strip()
    # 1. A graph changed after export: its checksum no longer matches the manifest.
    root = tmp_path / "checksum"
    shutil.copytree(artifacts_dir, root)
    graph = root / version / "encoder_v.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    rc, log = _start_refused(root, tmp_path)
    assert rc != 0 and "refusing to start" in log and "does not match the manifest" in log, log[-2000:]
    # 2. A corrupt ONNX file whose checksum was updated too: onnxruntime cannot load it.
    root = tmp_path / "corrupt"
    shutil.copytree(artifacts_dir, root)
    (root / version / "encoder_v.onnx").write_bytes(b"this is not an onnx model")
    manifest_path = root / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["encoder_v.onnx"] = hashlib.sha256(b"this is not an onnx model").hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    rc, log = _start_refused(root, tmp_path)
    assert rc != 0 and "refusing to start" in log and "cannot load" in log, log[-2000:]
    # 3. `latest` names a version that is not there.
    root = tmp_path / "dangling"
    shutil.copytree(artifacts_dir, root)
    (root / "latest").write_text("no-such-version\n")
    rc, log = _start_refused(root, tmp_path)
    assert rc != 0 and "refusing to start" in log and "does not exist" in log, log[-2000:]


# ---- a short soak -----------------------------------------------------------------------------------------------

def test_short_soak(artifacts_dir: Path) -> None:
    """bench/soak.py at a tenth of its size: 1,000 mixed requests at concurrency 64, zero errors, bounded RSS."""
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk): the soak needs a compiled load generator")
    from bench import soak

    with tempfile.TemporaryDirectory() as tmp, soak.local_server(artifacts_dir, Path(tmp),
                                                                  {"SLR_INTRA_OP_THREADS": "1"}) as (base, pid):
        result = soak.soak(base, pid, requests=1000, concurrency=64, threads=2, warmup=200, clips=8)
    print(f"\nshort soak: {json.dumps(result)}")
    assert result["responses"] == 1000 and result["errors"] == 0 and result["warmup_errors"] == 0, result
    assert result["rss_growth_pct"] < 10, result
