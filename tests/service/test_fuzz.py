"""Schema fuzzing: schemathesis generates requests from the app's own OpenAPI for every operation, valid and
invalid ones, and every answer must be documented: no 5xx, a documented status, content type, headers and a
body matching its schema.

`make test` runs a bounded number of cases per operation and generation mode; `make fuzz` runs many more
(SLR_FUZZ_EXAMPLES, default here 15). Generated cases are steered part of the time onto real inputs (a
latent_id the server knows, a real mp4) so that fuzzing reaches the model, not only the validators.
"""
from __future__ import annotations

import collections
import os

import httpx
import pytest
import schemathesis  # the dev extra; a missing install fails here, it is not skipped
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service_fixtures import encode_clip, moving_square_clip

EXAMPLES = int(os.environ.get("SLR_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# The shared `server` (tests/service/conftest.py) runs with these settings.
SERVER_ENV = {"SLR_MAX_UPLOAD_BYTES": str(1024 * 1024), "SLR_MAX_VIDEO_FRAMES": "40", "SLR_LOG_LEVEL": "warning",
              "SLR_INTRA_OP_THREADS": "1", "SLR_MEDIA_WORKERS": "2"}
# What the whole module sent and got back (docs/reliability.md quotes the totals of `make fuzz`).
TALLY: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
def schema(server: str):
    return schemathesis.openapi.from_url(f"{server}/openapi.json")


@pytest.fixture(scope="module")
def real_inputs(server: str) -> dict[str, object]:
    mp4 = encode_clip(moving_square_clip(12, seed=4242), "mp4")
    r = httpx.post(f"{server}/encode", files={"video": ("a.mp4", mp4)}, timeout=30)
    assert r.status_code == 200, r.text
    return {"latent_id": r.json()["latent_id"], "video": mp4}


LATENT_PATHS = {"/caption", "/reconstruct", "/paraphrase", "/sentence-to-video"}
VIDEO_PATHS = {"/encode", "/caption", "/reconstruct"}  # a `video` file in their multipart form (they take JSON too)


def _steer(case, how: str, real: dict[str, object]) -> None:
    """Point a generated case at a real latent_id or a real video, keeping the rest of what was generated."""
    if not isinstance(case.body, dict):
        return
    if how == "real latent_id" and case.operation.path in LATENT_PATHS:
        case.body["latent_id"] = real["latent_id"]
        for k in ("video", "sentence"):
            case.body.pop(k, None)
    elif how == "real video" and case.operation.path in VIDEO_PATHS and case.media_type == "multipart/form-data":
        case.body["video"] = real["video"]
        case.body.pop("latent_id", None)


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_fuzzed(schema) -> None:
    labels = {op.label for op in _operations(schema)}
    assert labels >= {"POST /encode", "POST /caption", "POST /paraphrase", "POST /reconstruct",
                      "POST /sentence-to-video", "GET /models", "GET /healthz", "GET /readyz", "GET /metrics"}


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_schema_fuzz(server: str, schema, real_inputs: dict[str, object], mode: GenerationMode) -> None:
    with httpx.Client(timeout=30) as client:
        session_statuses: collections.Counter[int] = collections.Counter()
        for op in _operations(schema):
            if mode is GenerationMode.NEGATIVE and not op.definition.raw.get("parameters") and \
                    "requestBody" not in op.definition.raw:
                continue  # nothing to make invalid (GET /healthz, /readyz, /metrics)

            @given(case=op.as_strategy(generation_mode=mode),
                   how=st.sampled_from(["as generated", "as generated", "real latent_id", "real video"]))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def run(case, how: str) -> None:
                if mode is GenerationMode.POSITIVE:
                    _steer(case, how, real_inputs)
                response = case.call(base_url=server, timeout=30)
                session_statuses[response.status_code] += 1
                TALLY["cases"] += 1
                TALLY[f"{op.label} {response.status_code}"] += 1
                case.validate_response(response, checks=CHECKS)

            run()
        assert session_statuses and not any(s >= 500 for s in session_statuses), session_statuses
        if mode is GenerationMode.POSITIVE:  # the fuzzer reached the model, not only the validators
            assert session_statuses[200] > 0
        else:  # invalid input is refused as such; the few 200s are cases whose invalid part the API may ignore
            assert sum(n for s, n in session_statuses.items() if 400 <= s < 500) > sum(session_statuses.values()) / 2
        metrics = client.get(f"{server}/metrics").text
        assert 'status="500"' not in metrics and client.get(f"{server}/healthz").status_code == 200
    print(f"\nfuzz {mode.value}: {sum(session_statuses.values())} cases, statuses {dict(session_statuses)}")


# ---- bodies the parsers cannot read: generated nesting, numbers, bytes and boundaries ----------------------------

BODY_PATHS = ("/encode", "/caption", "/paraphrase", "/reconstruct", "/sentence-to-video")
VALID_JSON = b'{"sentence": "a red square moves", "seed": 3}'


@st.composite
def unreadable_json(draw: st.DrawFn) -> bytes:
    """JSON that Python's parser refuses, or reads into something no field takes."""
    kind = draw(st.sampled_from(["nested", "number", "constant", "bytes", "truncated", "duplicate"]))
    if kind == "nested":
        depth = draw(st.integers(1, 200_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" * (opener != b"[") + closer * depth * draw(st.booleans())
        return b'{"sentence": "a red square", "seed": ' + inner + b"}" if draw(st.booleans()) else inner
    if kind == "number":
        digits = draw(st.integers(1, 20_000))
        number = draw(st.sampled_from([b"1" + b"0" * digits, b"1e" + b"9" * min(digits, 30), b"-0." + b"0" * digits]))
        return b'{"sentence": "a red square", "' + draw(st.sampled_from([b"seed", b"fps", b"scale"])) + b'": ' + \
            number + b"}"
    if kind == "constant":
        return b'{"sentence": "a red square", "fps": ' + draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])) + \
            b"}"
    if kind == "bytes":  # a valid body with some bytes replaced by arbitrary ones (invalid UTF-8 among them)
        body = bytearray(VALID_JSON)
        for i, b in draw(st.lists(st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255)), min_size=1,
                                  max_size=4)):
            body[i] = b
        return bytes(body)
    if kind == "truncated":
        return VALID_JSON[:draw(st.integers(1, len(VALID_JSON) - 1))]
    return b'{"sentence": "a red square", "sentence": "a blue circle"}'


@st.composite
def odd_multipart(draw: st.DrawFn) -> tuple[str, bytes]:
    """A multipart form with an odd boundary (empty, long, quoted, absent) or damaged parts."""
    boundary = draw(st.sampled_from(["", "x", "b" * 5000, '"a b"', "é"]))
    part = b'--x\r\nContent-Disposition: form-data; name="seed"\r\n' + \
        b"X-A: b\r\n" * draw(st.integers(0, 3000)) + b"\r\n1\r\n--x--\r\n"
    body = draw(st.sampled_from([part, part[:draw(st.integers(1, len(part)))], b"--" + boundary.encode() + b"\r\n",
                                 b"\x00\x01garbage"]))
    header = "multipart/form-data" + (f"; boundary={boundary}" if draw(st.booleans()) else "")
    return header, body


def test_unreadable_bodies_are_refused_as_such(server: str) -> None:
    """Bodies no parser reads, from the JSON and multipart parsers' edges: a 4xx in the JSON error shape each,
    never a 5xx (a JSON body nested deeply enough was a 500: RecursionError in the parser)."""
    statuses: collections.Counter[int] = collections.Counter()
    with httpx.Client(base_url=server, timeout=30) as client:
        @given(path=st.sampled_from(BODY_PATHS),
               request=st.one_of(unreadable_json().map(lambda b: ("application/json", b)),
                                 unreadable_json().map(lambda b: ("text/plain", b)), odd_multipart()))
        @settings(max_examples=EXAMPLES * 10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(path: str, request: tuple[str, bytes]) -> None:
            ctype, body = request
            r = client.post(path, content=body, headers={"content-type": ctype.encode()})  # bytes: "é" travels
            statuses[r.status_code] += 1
            TALLY["cases"] += 1
            TALLY[f"unreadable body {r.status_code}"] += 1
            assert r.status_code < 500, (path, ctype, body[:200], r.text[:300])
            if r.status_code >= 400:
                error = r.json()["error"]
                assert set(error) == {"code", "message"} and error["message"], error

        run()
        assert 'status="500"' not in client.get("/metrics").text
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 0
    print(f"\nunreadable bodies: {sum(statuses.values())} cases, statuses {dict(statuses)}")
