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
