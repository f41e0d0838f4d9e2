"""The service end to end: a real uvicorn process on a free port, a real Redis, real encoded files."""
from __future__ import annotations

import base64
import io
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from PIL import Image

from core.familiarity import FALSE_ALARM, VIDEO_SIGNALS
from tests.service_fixtures import encode_clip, moving_square_clip, redis_server, uvicorn_server

MAX_UPLOAD = 1024 * 1024
LIMITS = {"SLR_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "SLR_MAX_VIDEO_FRAMES": "40",
          "SLR_MAX_VIDEO_PIXELS": str(160 * 120), "SLR_LOG_LEVEL": "warning", "SLR_MEDIA_WORKERS": "2",
          "SLR_INTRA_OP_THREADS": "1"}
FORMATS = ("mp4", "webm", "gif", "avi", "mov", "npy")
SERVER_ENV = LIMITS  # the shared `server` (tests/service/conftest.py)
RUN = uuid.uuid4().int % 10**6  # fresh clips each run: the shared Redis may hold the last run's SLRs


def unique_clip(i: int, n_frames: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    return moving_square_clip(n_frames, height, width, seed=RUN * 100 + i)


def video(fmt: str = "mp4", i: int = 0, **kw: int) -> dict:
    return {"video": (f"clip.{fmt}", encode_clip(unique_clip(i, **kw), fmt), "application/octet-stream")}


def metric(base: str, name: str, **labels: str) -> float:
    """A sample's value from /metrics (0 when absent)."""
    text = httpx.get(f"{base}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$", line)
        if m and m[1] == name and ",".join(sorted((m[2] or "{}")[1:-1].split(","))) == want:
            return float(m[3])
    return 0.0


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code:
        assert body["error"]["code"] == code, body


def distinct_up_to(body: dict, key: str, asked: int) -> bool:
    """Sampled sentences are distinct (alternatives also differ from the mean's); fewer than asked come with a note."""
    items = body[key]
    distinct = len(set(items)) == len(items) and (key != "alternatives" or body["sentence"] not in items)
    return distinct and len(items) <= asked and ((len(items) == asked) == ("note" not in body))


@pytest.fixture(scope="module")
def model(client: httpx.Client) -> dict:
    return client.get("/models").json()


# ---- endpoints ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_every_container(client: httpx.Client, model: dict, fmt: str) -> None:
    r = client.post("/encode", files=video(fmt, i=FORMATS.index(fmt)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["config"] == "encode_v" and body["inputs"] == ["video"] and body["cached"] is False
    assert len(body["mu"]) == len(body["sigma"]) == model["latent_dim"]
    assert all(s > 0 for s in body["sigma"])
    assert body["latent_id"].startswith(f"slr:{model['version']}:v:")


def test_encode_sentence_and_both(client: httpx.Client) -> None:
    s = client.post("/encode", data={"sentence": "a red square moves to the right"}).json()
    assert s["config"] == "encode_s" and ":s:" in s["latent_id"]
    both = client.post("/encode", data={"sentence": "a red square"}, files=video("mp4", 20)).json()
    assert both["config"] == "encode_vs" and both["inputs"] == ["video", "sentence"]
    # Case, punctuation: the same canonical input, the same key.
    again = client.post("/encode", data={"sentence": "A red square moves, to the right!"}).json()
    assert again["latent_id"] == s["latent_id"] and again["cached"] is True


def test_cache_hit_skips_the_encoder(server: str, client: httpx.Client) -> None:
    files = video("webm", 30)
    rows, hits = (metric(server, "slr_encoder_rows_total", config="v"),
                  metric(server, "slr_cache_hits_total", tier="memory"))
    first = client.post("/encode", files=files).json()
    second = client.post("/encode", files=files).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["latent_id"] == second["latent_id"] and first["mu"] == second["mu"]
    assert metric(server, "slr_encoder_rows_total", config="v") == rows + 1
    assert metric(server, "slr_cache_hits_total", tier="memory") == hits + 1


def test_cache_hit_skips_the_sentence_decoder_too(server: str, client: httpx.Client) -> None:
    """A caption of the SLR's mean is a function of the latent and the options: remembered, a hit decodes nothing."""
    files = video("avi", 31)
    first = client.post("/caption", files=files).json()
    calls = metric(server, "slr_batch_size_count", graph="sentence")
    second = client.post("/caption", files=files).json()
    assert second["cached"] is True and second["caption"] == first["caption"]
    assert metric(server, "slr_batch_size_count", graph="sentence") == calls
    beam = client.post("/caption", files=files, data={"beam_size": "2"}).json()  # other options: decoded anew
    assert beam["cached"] is True and metric(server, "slr_batch_size_count", graph="sentence") > calls


def test_encode_once_decode_many(server: str, client: httpx.Client, model: dict) -> None:
    latent_id = client.post("/encode", files=video("mov", 40)).json()["latent_id"]
    rows = sum(metric(server, "slr_encoder_rows_total", config=c) for c in ("v", "s", "vs"))
    cap = client.post("/caption", data={"latent_id": latent_id})
    assert cap.status_code == 200 and isinstance(cap.json()["caption"], str) and cap.json()["cached"] is True
    para = client.post("/paraphrase", json={"latent_id": latent_id, "num_alternatives": 2})
    assert para.status_code == 200 and distinct_up_to(para.json(), "alternatives", 2)
    gif = client.post("/reconstruct", data={"latent_id": latent_id, "scale": "2"})
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    assert gif.headers["x-latent-id"] == latent_id
    img = Image.open(io.BytesIO(gif.content))
    assert img.size == (model["width"] * 2, model["height"] * 2) and img.n_frames == model["frames"]
    s2v = client.post("/sentence-to-video", json={"latent_id": latent_id, "format": "json"})
    assert s2v.status_code == 200 and len(s2v.json()["frames"]) == model["frames"]
    assert sum(metric(server, "slr_encoder_rows_total", config=c) for c in ("v", "s", "vs")) == rows


def test_caption_video_and_seeded_samples(client: httpx.Client) -> None:
    files = video("avi", 50)
    one = client.post("/caption", files=files)
    assert one.status_code == 200 and "captions" not in one.json()
    opts = {"num_captions": "4", "seed": "7", "beam_size": "2", "max_len": "8"}
    a = client.post("/caption", files=files, data=opts).json()
    b = client.post("/caption", files=files, data=opts).json()
    assert distinct_up_to(a, "captions", 4) and a["captions"][0] == a["caption"]
    assert a["captions"] == b["captions"] and b["cached"] is True
    assert all(len(c.split()) <= 8 for c in a["captions"])


def test_a_caption_cut_by_the_cap_says_so(client: httpx.Client) -> None:
    """A caption decoded to the end says truncated false; at a cap of 2 words no caption of the model fits (they all
    say colour, shape and motion), so it is cut, and the answer carries `truncated` and the coded warning."""
    files = video("mp4", 52)
    whole = client.post("/caption", files=files).json()
    assert whole["truncated"] is False and "truncated" not in [w["code"] for w in whole["warnings"]]
    cut = client.post("/caption", files=files, data={"max_len": "2"}).json()
    assert cut["truncated"] is True and len(cut["caption"].split()) == 2, cut
    assert [w["code"] for w in cut["warnings"]][-1] == "truncated" and "2 words" in cut["warnings"][-1]["message"]


def test_paraphrase_with_unknown_words(client: httpx.Client) -> None:
    r = client.post("/paraphrase", json={"sentence": "a zxqv square qwfp moves", "num_alternatives": 3, "seed": 1})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["sentence"], str) and distinct_up_to(r.json(), "alternatives", 3)
    assert r.json()["unknown_words"] == ["zxqv", "qwfp"]


# ---- familiarity: every answer that reads an input says how familiar it is ---------------------------------

def synthetic_uploads(tiny_corpus, n: int) -> list[dict]:
    """Test-split clips of the corpus the model was trained on, as .npy uploads (the tiny model's 12 x 16 frames
    do not survive a real codec: how the shipped model scores real-codec uploads is `slr eval --ood`'s figure)."""
    return [{"video": ("clip.npy", encode_clip(c.frames, "npy"), "application/octet-stream")}
            for c in tiny_corpus.splits["test"][:n]]


def forget(redis_url: str, model: dict, uploads: list[dict]) -> None:
    """Drop these uploads' SLRs from the shared Redis: a score cached by an earlier run's model would answer."""
    import redis

    from service.cache import canonical_digest, make_key

    client = redis.Redis.from_url(redis_url)
    client.delete(*(make_key(model["version"], "v", canonical_digest(u["video"][1], None)) for u in uploads))


def test_every_clip_answer_carries_a_cached_familiarity(client: httpx.Client, tiny_corpus, model: dict,
                                                        redis_url: str) -> None:
    """The mechanics, on the tiny test model (which rebuilds little of any clip, so how well the score separates
    clips is measured on the shipped model: tests/export/test_shipped_model.py, `slr eval --ood`)."""
    uploads = synthetic_uploads(tiny_corpus, 6)
    forget(redis_url, model, uploads)
    answers = [client.post("/caption", files=f).json() for f in uploads]
    for a in answers:
        assert 0.0 <= a["familiarity"] <= 1.0 and a["familiar"] == (a["familiarity"] >= FALSE_ALARM), a
        assert bool(a["warnings"]) == (not a["familiar"]), a
    again = client.post("/caption", files=uploads[0]).json()
    assert again["cached"] is True and again["familiarity"] == answers[0]["familiarity"], "cached with the SLR"
    by_id = client.post("/caption", json={"latent_id": answers[0]["latent_id"]}).json()
    assert by_id["familiarity"] == answers[0]["familiarity"] and by_id["warnings"] == answers[0]["warnings"]


def test_the_cache_keeps_signals_and_computes_again_what_has_none(client: httpx.Client, tiny_corpus, model: dict,
                                                                   artifacts_dir: Path, redis_url: str,
                                                                   tmp_path: Path) -> None:
    """Redis holds a clip's familiarity signals, not its score (a recalibrated model scores them anew); an entry
    without them (cached while scoring was off) is computed again by the next replica that meets it, not answered
    null."""
    import redis

    upload = synthetic_uploads(tiny_corpus, 7)[-1:]
    forget(redis_url, model, upload)
    first = client.post("/caption", files=upload[0]).json()
    store = redis.Redis.from_url(redis_url)
    key = first["latent_id"]
    assert len(store.hget(key, "sig_v")) == 4 * len(VIDEO_SIGNALS) and store.hget(key, "fam_v") is None
    store.hdel(key, "sig_v")
    env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": redis_url, **LIMITS}
    with uvicorn_server(env, tmp_path / "replica.log") as replica:  # its own in-process cache starts empty
        again = httpx.post(f"{replica}/caption", files=upload[0], timeout=30).json()
    assert again["cached"] is False and again["familiarity"] == first["familiarity"], again
    assert store.hget(key, "sig_v") is not None


def test_a_sentence_of_unknown_words_says_nothing_was_understood(client: httpx.Client) -> None:
    r = client.post("/paraphrase", json={"sentence": "bonjour le monde"}).json()
    assert r["familiar"] is False and r["familiarity"] == 0.0, r
    assert [w["code"] for w in r["warnings"]] == ["no_known_words"] and "none of these" in r["warnings"][0]["message"]
    known = client.post("/paraphrase", json={"sentence": "a red square moves to the right"}).json()
    assert known["familiar"] is True and known["familiarity"] == 1.0 and known["warnings"] == []
    gif = client.post("/sentence-to-video", json={"sentence": "bonjour le monde"})
    assert gif.status_code == 200 and gif.headers["x-familiar"] == "false" and "none of these" in gif.headers[
        "x-warnings"] and gif.headers["x-warning-codes"] == "no_known_words"


def test_video_answers_carry_familiarity_in_json_and_headers(client: httpx.Client) -> None:
    files = video("mp4", 61)
    enc = client.post("/encode", files=files).json()
    assert {"familiarity", "familiar", "warnings"} <= set(enc)
    gif = client.post("/reconstruct", files=files)
    assert float(gif.headers["x-familiarity"]) == pytest.approx(enc["familiarity"], abs=1e-4)
    js = client.post("/reconstruct", files=files, data={"format": "json"}).json()
    assert js["familiarity"] == pytest.approx(enc["familiarity"], abs=1e-4) and js["familiar"] == enc["familiar"]


def test_reconstruct_upload_gif_and_json(client: httpx.Client, model: dict) -> None:
    files = video("gif", 60)
    gif = client.post("/reconstruct", files=files, data={"scale": "3"})
    assert gif.status_code == 200 and gif.content.startswith(b"GIF8")
    assert Image.open(io.BytesIO(gif.content)).size == (model["width"] * 3, model["height"] * 3)
    js = client.post("/reconstruct", files=files, data={"format": "json", "scale": "1"}).json()
    frame = Image.open(io.BytesIO(base64.b64decode(js["frames"][0])))
    assert frame.format == "PNG" and frame.size == (model["width"], model["height"]) and js["cached"] is True


def test_reconstruct_answers_in_the_clips_own_aspect_ratio(client: httpx.Client, model: dict) -> None:
    # A portrait clip is letterboxed into the model's landscape frame; the answer leaves the bars out.
    h_model, w_model = model["height"], model["width"]
    assert model["frame_fit"] == "pad"
    files = video("mp4", 62, height=64, width=48)
    gif = client.post("/reconstruct", files=files, data={"scale": "4"})
    assert gif.status_code == 200, gif.text
    w, h = Image.open(io.BytesIO(gif.content)).size
    assert h == 4 * h_model and w == 4 * round(h_model * 48 / 64) and w < h
    # The box is kept with the SLR: a latent_id (a fresh lookup) answers the same shape.
    again = client.post("/reconstruct", data={"latent_id": gif.headers["x-latent-id"], "scale": "4"})
    assert Image.open(io.BytesIO(again.content)).size == (w, h)
    # A clip of the model's own aspect ratio fills the frame.
    wide = client.post("/reconstruct", files=video("mp4", 63), data={"scale": "2"})
    assert Image.open(io.BytesIO(wide.content)).size == (2 * w_model, 2 * h_model)


def test_sentence_to_video(client: httpx.Client, model: dict) -> None:
    r = client.post("/sentence-to-video", json={"sentence": "a blue circle moves left", "scale": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert Image.open(io.BytesIO(r.content)).n_frames == model["frames"]


def test_video_out_is_shown_large_enough_by_default(client: httpx.Client, model: dict) -> None:
    """Without `scale`, a GIF is upscaled to at least 256 px wide (up to 8x); scale=1 keeps the model's size."""
    from service.media import DISPLAY_WIDTH, MAX_SCALE, display_scale

    assert display_scale(64) == 4 and display_scale(32) == 8 and display_scale(16) == MAX_SCALE == 8
    assert display_scale(300) == 1 and display_scale(64, 2) == 2
    big = Image.open(io.BytesIO(client.post("/sentence-to-video", json={"sentence": "a red ball moves"}).content))
    native = Image.open(io.BytesIO(client.post("/sentence-to-video", json={"sentence": "a red ball moves",
                                                                         "scale": 1}).content))
    assert native.size == (model["width"], model["height"])
    assert big.size[0] == min(MAX_SCALE * model["width"],
                              max(DISPLAY_WIDTH, model["width"] * display_scale(model["width"])))


def test_models_health_ready_metrics(client: httpx.Client, model: dict) -> None:
    assert model["version"] and model["frames"] == 6 and (model["height"], model["width"]) == (12, 16)
    assert {t["endpoint"] for t in model["tasks"]} >= {"/caption", "/paraphrase", "/reconstruct", "/sentence-to-video"}
    assert set(model["channel_configs"]) == {"encode_v", "encode_s", "encode_vs"}
    assert all("CPUExecutionProvider" in p for p in model["providers"].values())
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["redis"] == "up" and ready["model_version"] == model["version"]
    assert ready["release_override"] is None  # released without one (export/gate.py)
    text = client.get("/metrics").text
    for name in ("slr_requests_total", "slr_request_latency_seconds_bucket", "slr_cache_hits_total",
                 "slr_cache_misses_total", "slr_batch_size_bucket", "slr_redis_up 1.0"):
        assert name in text
    assert 'endpoint="/caption"' in text


def test_concurrent_requests_are_batched(server: str, client: httpx.Client) -> None:
    """Rows of different requests share one engine call. A paraphrase with 3 alternatives decodes at most 4 rows
    of its own per call (the mean and 3 samples; later rounds of draws 3), so a sentence call of more than 4 rows
    holds rows of two requests or more: with batching off (SLR_BATCHING=0), or batching only within a request,
    there is none and this fails. Bursts of 8 requests released together, until one such call or 10 bursts."""
    def calls_over_4_rows() -> float:
        return (metric(server, "slr_batch_size_count", graph="sentence")
                - metric(server, "slr_batch_size_bucket", graph="sentence", le="4.0"))

    def post(i: int, start: threading.Barrier) -> httpx.Response:
        with httpx.Client(base_url=server, timeout=30) as c:
            c.get("/healthz")  # connected before the release
            start.wait(30)
            return c.post("/paraphrase", json={"sentence": f"a red square {i}", "num_alternatives": 3})

    before = calls_over_4_rows()
    for burst in range(10):
        start = threading.Barrier(8)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(post, range(8), [start] * 8))
        assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
        if calls_over_4_rows() > before:
            break
    assert calls_over_4_rows() > before, f"no sentence call held rows of two requests in {burst + 1} bursts of 8"


# ---- errors ---------------------------------------------------------------------------------------------

def _raw(base: str, head: bytes, chunks: Iterator[bytes]) -> bytes:
    """Send a request by hand; stop sending as soon as the server answers, then read the answer."""
    url = urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(head)
        for chunk in chunks:
            if select.select([s], [], [], 0.02)[0]:
                break
            try:
                s.sendall(chunk)
            except OSError:
                break
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"\r\n\r\n" not in data:
            try:
                part = s.recv(65536)
            except OSError:
                break
            if not part:
                break
            data += part
        return data


def test_413_declared_length_refused_before_the_body(server: str) -> None:
    head = (b"POST /caption HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 104857600\r\n\r\n")
    answer = _raw(server, head, iter([]))  # not one byte of the 100 MB body is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_413_chunked_body_refused_while_streaming(server: str) -> None:
    head = (b"POST /encode HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    part = (b'--x\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b"%x\r\n" % len(part) + part + b"\r\n"
        for _ in range(16 * MAX_UPLOAD // len(chunk)):
            sent += len(chunk)
            yield b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    answer = _raw(server, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * MAX_UPLOAD  # answered long before the client finished


def test_413_via_httpx(client: httpx.Client) -> None:
    r = client.post("/encode", files={"video": ("big.mp4", b"\0" * (MAX_UPLOAD + 10))})
    assert_error(r, 413, "payload_too_large")
    assert "1 MiB limit" in r.json()["error"]["message"], r.json()  # readable, not 1048576 bytes alone


def test_415_unsupported_media(client: httpx.Client) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    assert_error(client.post("/caption", files={"video": ("a.png", png.getvalue())}), 415, "unsupported_media_type")
    assert_error(client.post("/encode", files={"video": ("a.txt", b"hello world")}), 415)


def test_422_undecodable_media(client: httpx.Client) -> None:
    assert_error(client.post("/caption", files={"video": ("a.mp4", b"\0\0\0\x18ftypmp42" + b"\1" * 500)}), 422,
                 "undecodable_media")
    assert_error(client.post("/caption", files={"video": ("a.npy", b"\x93NUMPY broken")}), 422, "undecodable_media")
    assert_error(client.post("/encode", files={"video": ("a.mp4", b"")}), 422)


def test_422_frame_count_and_size_limits(client: httpx.Client) -> None:
    assert_error(client.post("/caption", files=video("mp4", 70, n_frames=48)), 422, "media_limit_exceeded")
    assert_error(client.post("/caption", files=video("mp4", 71, height=240, width=320)), 422, "media_limit_exceeded")


def test_422_wrong_field_types_and_bad_sentences(client: httpx.Client) -> None:
    lid = client.post("/encode", data={"sentence": "a red square"}).json()["latent_id"]
    assert_error(client.post("/caption", data={"latent_id": lid, "num_captions": "many"}), 422, "invalid_input")
    assert_error(client.post("/caption", data={"latent_id": lid, "scale": "x", "beam_size": "0"}), 422)
    assert_error(client.post("/paraphrase", json={"sentence": 5}), 422)
    assert_error(client.post("/paraphrase", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_error(client.post("/paraphrase", json={}), 422)
    assert_error(client.post("/paraphrase", json={"sentence": "   "}), 422)
    assert_error(client.post("/paraphrase", json={"sentence": "?!"}), 422)
    assert_error(client.post("/paraphrase", json={"sentence": "word " * 50}), 422)
    assert_error(client.post("/paraphrase", json={"sentence": "a" * 5000}), 422)
    assert_error(client.post("/encode", data={}), 422)
    assert_error(client.post("/sentence-to-video", json={"sentence": "a", "scale": 50}), 422)
    assert_error(client.post("/caption", data={"latent_id": "not-a-latent"}), 422)


def test_404_unknown_latent(client: httpx.Client, model: dict) -> None:
    unknown = f"slr:{model['version']}:v:" + "0" * 64
    assert_error(client.post("/caption", data={"latent_id": unknown}), 404, "unknown_latent_id")
    assert_error(client.post("/paraphrase", json={"latent_id": "slr:other-version:s:" + "1" * 64}), 404)
    assert_error(client.get("/no-such-endpoint"), 404)


def test_no_500_for_any_client_input(server: str) -> None:
    assert 'status="500"' not in httpx.get(f"{server}/metrics").text


# ---- a second server: private Redis stopped mid-test, API key, overload ---------------------------------

@pytest.fixture(scope="module")
def private(artifacts_dir: Path, tmp_path_factory) -> Iterator[tuple[str, object]]:
    with redis_server() as (proc, url):
        env = {"SLR_ARTIFACTS": str(artifacts_dir), "SLR_REDIS_URL": url, "SLR_API_KEY": "s3cret",
               "SLR_QUEUE_SIZE": "4", **LIMITS}
        with uvicorn_server(env, tmp_path_factory.mktemp("logs") / "private.log") as base:
            yield base, proc


KEY = {"X-API-Key": "s3cret"}


def test_api_key(private: tuple[str, object]) -> None:
    base, _ = private
    assert_error(httpx.post(f"{base}/paraphrase", json={"sentence": "a red square"}), 401, "unauthorized")
    assert_error(httpx.post(f"{base}/paraphrase", json={"sentence": "a"}, headers={"X-API-Key": "nope"}), 401)
    assert httpx.get(f"{base}/models").status_code == 401
    assert httpx.post(f"{base}/paraphrase", json={"sentence": "a red square"}, headers=KEY).status_code == 200
    for open_path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(f"{base}{open_path}").status_code == 200, open_path


def test_overload_answers_503_with_retry_after(private: tuple[str, object]) -> None:
    base, _ = private
    lid = httpx.post(f"{base}/encode", data={"sentence": "a red square"}, headers=KEY).json()["latent_id"]
    r = httpx.post(f"{base}/caption", data={"latent_id": lid, "num_captions": "16"}, headers=KEY)
    assert_error(r, 503, "overloaded")
    assert int(r.headers["retry-after"]) >= 1


def test_redis_stopped_mid_test_fails_no_request(private: tuple[str, object]) -> None:
    base, proc = private
    c = httpx.Client(base_url=base, headers=KEY, timeout=30)
    assert c.get("/readyz").json()["redis"] == "up"
    before = c.post("/encode", files=video("mp4", 80)).json()["latent_id"]
    proc.terminate()  # the private redis-server, never the shared one
    proc.wait(10)
    statuses, uploads = [], [video("webm", 81 + i) for i in range(4)]
    for i, files in enumerate(uploads):
        enc = c.post("/encode", files=files)
        statuses.append(enc.status_code)
        statuses.append(c.post("/caption", data={"latent_id": enc.json()["latent_id"]}).status_code)
        statuses.append(c.post("/reconstruct", data={"latent_id": before}).status_code)
        statuses.append(c.post("/paraphrase", json={"sentence": f"a red square {i}"}).status_code)
    assert statuses == [200] * len(statuses)
    again = c.post("/encode", files=uploads[0]).json()
    assert again["cached"] is True  # the in-process LRU still serves
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded" and ready.json()["redis"] == "down"
    assert "slr_redis_up 0.0" in c.get("/metrics").text


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import Settings

    monkeypatch.setenv("SLR_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("SLR_REDIS_URL", "")
    monkeypatch.setenv("SLR_API_KEY", "")
    monkeypatch.setenv("SLR_MAX_BATCH", "4")
    s = Settings()
    assert s.cors_origins == ["http://a.example", "http://b.example"]
    assert s.redis_url == "" and s.api_key is None and s.max_batch == 4
    assert s.max_upload_bytes == 256 * 1024 * 1024 and s.graceful_timeout_s == 10 and s.port == 8000
