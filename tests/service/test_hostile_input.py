"""Hostile uploads and sentences against a real server: each gets its documented 4xx (or a sane 200) within a time
bound, nothing is unpickled, and the server is healthy afterwards.

The corpus is generated here, from real encoders and hand-made headers; `hostile_media()` is also what
docs/reliability.md counts.
"""
from __future__ import annotations

import io
import json
import pickle
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from core.config import ModelConfig
from core.media import (
    WINDOW_MIN_FRAMES,
    WINDOW_S,
    MediaLimitExceeded,
    MediaLimits,
    UndecodableMedia,
    load_npy,
    prepare_upload,
)
from tests.service_fixtures import encode_clip, moving_square_clip, uvicorn_server

MAX_UPLOAD = 1024 * 1024
MAX_FRAMES = 40
ENV = {"SLR_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "SLR_MAX_VIDEO_FRAMES": str(MAX_FRAMES),
       "SLR_MAX_VIDEO_PIXELS": str(160 * 120), "SLR_MAX_DECODE_S": "5", "SLR_LOG_LEVEL": "warning",
       "SLR_INTRA_OP_THREADS": "1", "SLR_REDIS_URL": ""}
TIME_BOUND_S = 5.0  # every hostile upload is answered within this (most in milliseconds)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _npy_header(header: str, data: bytes = b"\0" * 64, version: bytes = b"\x01\x00") -> bytes:
    text = (header.ljust(117) + "\n").encode("latin1")
    return b"\x93NUMPY" + version + struct.pack("<H", len(text)) + text + data


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def _gif_with_canvas(width: int, height: int) -> bytes:
    gif = bytearray(encode_clip(moving_square_clip(2, 16, 16), "gif"))
    gif[6:10] = struct.pack("<HH", width, height)  # the logical screen descriptor: the canvas every frame lands on
    return bytes(gif)


def _long_clip(n: int) -> np.ndarray:
    clip = np.zeros((n, 16, 16, 3), np.uint8)
    clip[..., 0] = (np.arange(n) % 251)[:, None, None]
    return clip


class Unpickled:
    """Unpickling this creates a marker file: proof that nothing in the service ever unpickles an upload."""

    marker: Path

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def hostile_media(marker: Path) -> list[tuple[str, str, bytes, set[int], str | None]]:
    """(name, filename, bytes, allowed statuses, expected error code) for every hostile upload."""
    rng = np.random.default_rng(0)
    mp4 = encode_clip(moving_square_clip(12), "mp4")
    webm = encode_clip(moving_square_clip(12), "webm")
    avi = encode_clip(moving_square_clip(12), "avi")
    gif = encode_clip(moving_square_clip(12), "gif")
    payload = Unpickled()
    payload.marker = marker
    cases: list[tuple[str, str, bytes, set[int], str | None]] = [
        ("empty file", "clip.mp4", b"", {422}, "undecodable_media"),
        ("truncated mp4", "clip.mp4", mp4[: len(mp4) // 2], {422}, "undecodable_media"),
        ("truncated webm", "clip.webm", webm[: len(webm) // 2], {422}, "undecodable_media"),
        ("truncated avi", "clip.avi", avi[: len(avi) // 2], {422}, "undecodable_media"),
        # A GIF cut short still holds whole frames: decoding what is there is a sane answer.
        ("truncated gif", "clip.gif", gif[: len(gif) // 2], {200, 422}, None),
        ("mp4 header only", "clip.mp4", mp4[:40], {422}, "undecodable_media"),
        ("random bytes after an mp4 signature", "clip.mp4", b"\0\0\0\x18ftypmp42" + rng.bytes(4096), {422},
         "undecodable_media"),
        ("random bytes after a webm signature", "clip.webm", b"\x1a\x45\xdf\xa3" + rng.bytes(4096), {422},
         "undecodable_media"),
        ("random bytes after an avi signature", "clip.avi", b"RIFF\0\0\0\0AVI " + rng.bytes(4096), {422},
         "undecodable_media"),
        ("random bytes after a gif signature", "clip.gif", b"GIF89a" + rng.bytes(4096), {422}, None),
        ("HTML named .mp4", "clip.mp4", b"<!doctype html><html><script>alert(1)</script></html>", {415},
         "unsupported_media_type"),
        ("GIF claiming a 65535x65535 canvas", "bomb.gif", _gif_with_canvas(65535, 65535), {422},
         "media_limit_exceeded"),
        ("GIF claiming a 4000x4000 canvas", "bomb.gif", _gif_with_canvas(4000, 4000), {422}, "media_limit_exceeded"),
        ("still PNG", "still.png", _image("PNG"), {415}, "unsupported_media_type"),
        ("still JPEG named .mp4", "still.mp4", _image("JPEG"), {415}, "unsupported_media_type"),
        ("one-frame gif", "one.gif", encode_clip(moving_square_clip(1, 16, 16), "gif"), {200}, None),
        ("one-frame mp4", "one.mp4", encode_clip(moving_square_clip(1, 16, 16), "mp4"), {200}, None),
        ("5000-frame mp4", "long.mp4", encode_clip(_long_clip(5000), "mp4", fps=25), {422}, "media_limit_exceeded"),
        ("5000-frame webm (no frame count in the container)", "long.webm", encode_clip(_long_clip(5000), "webm",
                                                                                       fps=25),
         {422}, "media_limit_exceeded"),
        ("4K mp4 frame", "4k.mp4", encode_clip(np.zeros((1, 2160, 3840, 3), np.uint8), "mp4"), {422},
         "media_limit_exceeded"),
        ("4K .npy frame (25 MB)", "4k.npy", _npy(np.zeros((1, 2160, 3840, 3), np.uint8)), {413},
         "payload_too_large"),
        (".npy object array (pickle)", "x.npy", _npy(np.array([payload, None], dtype=object)), {422},
         "undecodable_media"),
        (".npy structured dtype", "x.npy", _npy(np.zeros(4, dtype=[("a", "f4"), ("b", "i4")])), {422},
         "undecodable_media"),
        (".npy complex frames", "x.npy", _npy(np.zeros((4, 8, 8, 3), np.complex64)), {422}, "undecodable_media"),
        (".npy bool frames", "x.npy", _npy(np.zeros((4, 8, 8, 3), bool)), {422}, "undecodable_media"),
        (".npy strings", "x.npy", _npy(np.array(["a", "b"])), {422}, "undecodable_media"),
        (".npy rank 1", "x.npy", _npy(np.zeros(10, np.float32)), {422}, "undecodable_media"),
        (".npy rank 5", "x.npy", _npy(np.zeros((1, 2, 8, 8, 3), np.float32)), {422}, "undecodable_media"),
        (".npy two channels", "x.npy", _npy(np.zeros((4, 8, 8, 2), np.uint8)), {422}, "undecodable_media"),
        (".npy zero frames", "x.npy", _npy(np.zeros((0, 8, 8, 3), np.uint8)), {422}, "undecodable_media"),
        (".npy zero-sized frames", "x.npy", _npy(np.zeros((4, 0, 0, 3), np.uint8)), {422}, "undecodable_media"),
        (".npy NaN frames", "x.npy", _npy(np.full((4, 8, 8, 3), np.nan, np.float32)), {422}, "undecodable_media"),
        (".npy infinite frames", "x.npy", _npy(np.full((4, 8, 8, 3), np.inf, np.float32)), {422},
         "undecodable_media"),
        (".npy header claiming a 300 GB array", "x.npy",
         _npy_header("{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 1000, 1000, 3), }"), {422},
         "undecodable_media"),
        (".npy header that is not a dict", "x.npy", _npy_header("__import__('os').system('true')"), {422},
         "undecodable_media"),
        (".npy format version 9", "x.npy", _npy_header("{}", version=b"\x09\x00"), {422}, "undecodable_media"),
        (".npy over the frame limit", "x.npy", _npy(np.zeros((MAX_FRAMES + 1, 4, 4, 3), np.uint8)), {422},
         "media_limit_exceeded"),
        (".npy over the pixel limit", "x.npy", _npy(np.zeros((1, 200, 200, 3), np.uint8)), {422},
         "media_limit_exceeded"),
    ]
    for ext in ("mp4", "webm", "avi", "mov", "gif", "npy"):
        cases.append((f"random bytes named .{ext}", f"clip.{ext}", rng.bytes(8192), {415}, "unsupported_media_type"))
    return cases


HOSTILE_SENTENCES: list[tuple[str, str, set[int]]] = [
    ("empty", "", {422}),
    ("whitespace", " \t\r\n  ", {422}),
    ("100 KB", "a red square moves " * 5400, {422}),
    ("punctuation only", "?!...,;", {422}),
    ("NUL and control characters", "a red\x00 square\x07\x1b[31m moves\x7f", {200, 422}),
    ("only control characters", "\x00\x01\x02\x1b", {422}),
    ("right-to-left override", "a \u202ered square\u202c moves", {200, 422}),
    ("zero-width joiners", "a\u200bred\u200dsquare", {200, 422}),
    ("byte order mark", "\ufeffa red square", {200, 422}),
    ("lone surrogate", "a red \ud800 square", {200, 422}),
    ("Japanese", "赤い四角が右に動く", {200, 422}),
    ("Arabic", "مربع أحمر يتحرك إلى اليمين", {200, 422}),
    ("Cyrillic", "красный квадрат движется вправо", {200, 422}),
    ("emoji", "🟥 ➡️ 🚀 👨‍👩‍👧", {200, 422}),
    ("emoji among words", "a red 🟥 square moves ➡️", {200, 422}),
    ("one 999-letter word", "a" * 999, {200, 422}),
    ("400 words", "a " * 400, {422}),
    ("full-width Latin", "ａ ｒｅｄ ｓｑｕａｒｅ", {200, 422}),
]


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs") / "hostile.log"


@pytest.fixture(scope="module")
def server(artifacts_dir: Path, server_log: Path) -> Iterator[str]:
    with uvicorn_server({"SLR_ARTIFACTS": str(artifacts_dir), **ENV}, server_log) as base:
        yield base


def _check(r: httpx.Response, allowed: set[int], code: str | None, elapsed: float, what: str) -> None:
    assert r.status_code in allowed, f"{what}: {r.status_code} {r.text[:300]}"
    assert elapsed < TIME_BOUND_S, f"{what}: answered in {elapsed:.2f} s"
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        if code:
            assert body["error"]["code"] == code, f"{what}: {body}"


def test_hostile_media_corpus(server: str, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    corpus = hostile_media(marker)
    with httpx.Client(base_url=server, timeout=30) as c:
        for name, filename, data, allowed, code in corpus:
            for endpoint in ("/encode", "/caption"):
                start = time.monotonic()
                r = c.post(endpoint, files={"video": (filename, data, "application/octet-stream")})
                _check(r, allowed, code, time.monotonic() - start, f"{name} -> {endpoint}")
        assert not marker.exists(), "an uploaded pickle was executed"
        # Still healthy: health, readiness and a normal request, and not one 500 in the metrics.
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        ok = c.post("/caption", files={"video": ("ok.mp4", encode_clip(moving_square_clip(12), "mp4"))})
        assert ok.status_code == 200 and isinstance(ok.json()["caption"], str)
        assert 'status="500"' not in c.get("/metrics").text
    assert len(corpus) >= 40


@pytest.mark.parametrize("name,sentence,allowed", HOSTILE_SENTENCES, ids=[s[0] for s in HOSTILE_SENTENCES])
def test_hostile_sentences(server: str, name: str, sentence: str, allowed: set[int]) -> None:
    # JSON keeps every code point (lone surrogates included); the form field goes through multipart.
    body = json.dumps({"sentence": sentence, "num_alternatives": 1}).encode()
    with httpx.Client(base_url=server, timeout=30) as c:
        for method, kwargs in (("/paraphrase", {"content": body, "headers": {"content-type": "application/json"}}),
                               ("/encode", {"data": {"sentence": sentence.replace("\ud800", "")}}),
                               ("/sentence-to-video", {"json": {"sentence": sentence.replace("\ud800", "")}})):
            start = time.monotonic()
            r = c.post(method, **kwargs)
            _check(r, allowed, "invalid_input" if r.status_code == 422 else None, time.monotonic() - start,
                   f"{name} -> {method}")
            if method == "/paraphrase" and r.status_code == 200:
                answer = r.json()
                assert isinstance(answer["sentence"], str) and answer["sentence"].isprintable()
                assert len(answer["alternatives"]) <= 1 and answer["sentence"] not in answer["alternatives"]
        assert c.get("/healthz").status_code == 200


# ---- bodies the parsers cannot read: a 4xx in the JSON shape each, never a 500 -----------------------------------

JSON_BODY = {"content-type": "application/json"}
DEEP = 100_000


def _multipart(boundary: str, body: bytes) -> tuple[dict[str, str], bytes]:
    return {"content-type": f"multipart/form-data; boundary={boundary}"}, body


def hostile_bodies() -> list[tuple[str, str, dict[str, str], bytes, str]]:
    """(name, endpoint, headers, body, expected error code) for bodies that no parser reads as the API's fields."""
    named_part = b'--x\r\nContent-Disposition: form-data; name="seed"\r\n'
    return [
        ("JSON arrays nested 100,000 deep", "/paraphrase", JSON_BODY, b"[" * DEEP + b"]" * DEEP, "invalid_input"),
        ("JSON objects nested 100,000 deep", "/sentence-to-video", JSON_BODY,
         b'{"a":' * DEEP + b"1" + b"}" * DEEP, "invalid_input"),
        ("a field nested 100,000 deep", "/caption", JSON_BODY,
         b'{"latent_id": ' + b"[" * DEEP + b"]" * DEEP + b"}", "invalid_input"),
        ("a field nested 900 deep (the parser reads it)", "/paraphrase", JSON_BODY,
         b'{"sentence": ' + b"[" * 900 + b"]" * 900 + b"}", "invalid_input"),
        ("deep JSON sent as text/plain", "/encode", {"content-type": "text/plain"}, b"[" * DEEP, "invalid_input"),
        ("an integer of 5,000 digits", "/paraphrase", JSON_BODY,
         b'{"sentence": "a red square", "seed": 1' + b"0" * 5000 + b"}", "invalid_input"),
        ("a number past the float range", "/paraphrase", JSON_BODY,
         b'{"sentence": "a red square", "seed": 1e999999}', "invalid_input"),
        ("NaN", "/paraphrase", JSON_BODY, b'{"sentence": "a red square", "seed": NaN}', "invalid_input"),
        ("Infinity", "/sentence-to-video", JSON_BODY, b'{"sentence": "a red square", "fps": Infinity}',
         "invalid_input"),
        ("-Infinity", "/sentence-to-video", JSON_BODY, b'{"sentence": "a red square", "scale": -Infinity}',
         "invalid_input"),
        ("invalid UTF-8", "/paraphrase", JSON_BODY, b'{"sentence": "a red \xff\xfe square"}', "invalid_input"),
        ("a lone surrogate as a key", "/paraphrase", JSON_BODY, b'{"\\ud800": 1}', "invalid_input"),
        ("a key sent twice", "/paraphrase", JSON_BODY, b'{"sentence": "a red square", "sentence": "a blue circle"}',
         "duplicate_field"),
        ("truncated JSON", "/encode", JSON_BODY, b'{"sentence": "a red sq', "invalid_input"),
        ("multipart without a boundary", "/caption", {"content-type": "multipart/form-data"}, b"--x\r\n",
         "invalid_input"),
        ("multipart with a 5,000-character boundary", "/caption",
         *_multipart("b" * 5000, b"--" + b"b" * 5000 + b"\r\n"), "invalid_input"),
        ("multipart, a part without a name", "/caption",
         *_multipart("x", b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--\r\n"), "invalid_input"),
        ("multipart of garbage", "/encode", *_multipart("x", b"\x00\x01garbage"), "invalid_input"),
        ("multipart, a part header without a colon", "/caption",
         *_multipart("x", b"--x\r\nContent-Disposition form-data\r\n\r\n1\r\n--x--\r\n"), "invalid_input"),
        ("multipart, 20,000 part headers", "/caption",
         *_multipart("x", named_part + b"X-A: b\r\n" * 20000 + b"\r\n1\r\n--x--\r\n"), "invalid_input"),
        ("urlencoded, 100 fields", "/paraphrase", {"content-type": "application/x-www-form-urlencoded"},
         b"&".join(b"f%d=1" % i for i in range(100)), "invalid_input"),
    ]


def test_hostile_bodies(server: str, server_log: Path) -> None:
    """Each is refused with its 4xx and a message, quickly; the server logs no traceback ("Exception in ASGI
    application" was a JSON body nested deeply enough: RecursionError in the parser), and stays healthy."""
    with httpx.Client(base_url=server, timeout=30) as c:
        for name, endpoint, headers, body, code in hostile_bodies():
            start = time.monotonic()
            r = c.post(endpoint, content=body, headers=headers)
            _check(r, {413, 415, 422}, code, time.monotonic() - start, f"{name} -> {endpoint}")
            assert r.json()["error"]["message"].strip(), name
        assert c.get("/healthz").status_code == 200
        assert 'status="500"' not in c.get("/metrics").text
    logged = server_log.read_text(errors="replace")
    assert "Traceback" not in logged and "Exception in ASGI application" not in logged, logged[-3000:]


# ---- the limits themselves, at the media layer ------------------------------------------------------------------

CFG = ModelConfig(frames=6, height=12, width=16)


def test_decode_time_limit() -> None:
    """A video within the frame and pixel limits still stops once decoding what it needs passes the time limit."""
    data = encode_clip(_long_clip(90), "webm", fps=25)  # within the window: every frame is decoded
    start = time.monotonic()
    with pytest.raises(MediaLimitExceeded, match="longer than"):
        prepare_upload(data, CFG, MediaLimits(max_frames=10_000, max_decode_s=1e-4))
    assert time.monotonic() - start < 1.0


class _CountingContainer:
    """A PyAV container that counts the packets demuxed through it."""

    def __init__(self, container, counts: dict[str, int]) -> None:
        self._container, self._counts = container, counts

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def __enter__(self) -> _CountingContainer:  # noqa: PYI034 (Python 3.10 has no typing.Self)
        self._container.__enter__()
        return self

    def __exit__(self, *exc: object):
        return self._container.__exit__(*exc)

    def demux(self, *args, **kwargs):
        for packet in self._container.demux(*args, **kwargs):
            self._counts["packets"] += 1
            yield packet


def test_a_long_clip_decodes_its_window_and_the_frame_limit_counts_what_is_decoded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A clip of 5,000 frames (past the default limit, 2,000) is read as its first seconds (core/media.py: WINDOW_S):
    only the window's frames are decoded (counted through PyAV), and the frame limit counts what is decoded."""
    import av

    from core import media

    counts = {"packets": 0, "frames": 0}
    real_open, real_check = av.open, media._check_frame
    monkeypatch.setattr(av, "open", lambda *a, **kw: _CountingContainer(real_open(*a, **kw), counts))
    # Every frame the decoder gives passes the limits check once (through a container's decode() or a codec's).
    monkeypatch.setattr(media, "_check_frame", lambda *a: (counts.__setitem__("frames", counts["frames"] + 1),
                                                           real_check(*a))[1])
    prepare_upload(encode_clip(moving_square_clip(12), "mp4"), CFG, MediaLimits())
    assert counts["frames"] >= CFG.frames  # the count sees decoding
    counts.update(packets=0, frames=0)
    long_clip = encode_clip(_long_clip(5000), "mp4", fps=25)
    assert prepare_upload(long_clip, CFG, MediaLimits()).array.shape[0] == CFG.frames
    read_long = counts["packets"]
    counts.update(packets=0, frames=0)
    prepare_upload(encode_clip(_long_clip(2500), "mp4", fps=25), CFG, MediaLimits())
    # What is read does not grow with the clip's length: the window's packets (and the index's look), not 5,000.
    assert read_long == counts["packets"] <= 3 * max(WINDOW_MIN_FRAMES, WINDOW_S * 25)
    with pytest.raises(MediaLimitExceeded, match="more than 10 frames"):
        prepare_upload(long_clip, CFG, MediaLimits(max_frames=10))


def test_npy_header_checked_before_allocating(tmp_path: Path) -> None:
    with pytest.raises(UndecodableMedia, match="declares"):
        load_npy(_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"))
    marker = tmp_path / "unpickled"
    payload = Unpickled()
    payload.marker = marker
    with pytest.raises(UndecodableMedia, match="refused"):
        load_npy(_npy(np.array([payload], dtype=object)))
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(payload)) is not None and marker.exists()  # the payload is real
    # Fortran order and big-endian data load as numpy itself would.
    a = np.asfortranarray(np.arange(24, dtype=">f4").reshape(2, 3, 4))
    assert np.array_equal(load_npy(_npy(a)), a)


def test_extreme_numbers_in_valid_ranges(server: str) -> None:
    """Found by the fuzzer: fps=5e-324 passes `fps > 0` and made the GIF delay overflow (a 500). Values at the
    edges of every documented range must still answer 200."""
    with httpx.Client(base_url=server, timeout=30) as c:
        latent_id = c.post("/encode", data={"sentence": "a red square moves"}).json()["latent_id"]
        for fps in ("5e-324", "1e-300", "0.001", "60"):
            r = c.post("/reconstruct", data={"latent_id": latent_id, "fps": fps, "scale": "8"})
            assert r.status_code == 200 and r.content.startswith(b"GIF8"), (fps, r.text[:200])
            r = c.post("/sentence-to-video", json={"latent_id": latent_id, "fps": float(fps), "format": "json"})
            assert r.status_code == 200, (fps, r.text[:200])
        big_seed = 2**256
        r = c.post("/paraphrase", json={"latent_id": latent_id, "seed": big_seed, "num_alternatives": 16,
                                        "beam_size": 16, "max_len": 100})
        assert r.status_code in (200, 503), r.text[:200]
        r = c.post("/caption", data={"latent_id": latent_id, "seed": str(big_seed), "num_captions": "16"})
        assert r.status_code in (200, 503), r.text[:200]
