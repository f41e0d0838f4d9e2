"""Single-flight: identical uploads that arrive together on a cold cache are decoded and encoded once."""
from __future__ import annotations

import asyncio
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.service_fixtures import encode_clip, moving_square_clip

CONCURRENT = 16


SERVER_ENV = {"SLR_LOG_LEVEL": "warning"}  # the shared `server` (tests/service/conftest.py)


def counters(base: str) -> dict[str, float]:
    """Every sample of /metrics by name and labels, e.g. 'slr_encoder_rows_total{config=v}'."""
    out = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def post_together(base: str, path: str, files: dict) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return await asyncio.gather(*(client.post(path, files=files) for _ in range(CONCURRENT)))


def test_identical_uploads_in_flight_share_one_decode_and_encode(server: str) -> None:
    seed = uuid.uuid4().int % 10**9  # a clip the shared Redis has never seen
    data = encode_clip(moving_square_clip(150, 120, 160, seed=seed), "mp4")
    before = counters(server)
    responses = asyncio.run(post_together(server, "/encode", {"video": ("clip.mp4", data, "video/mp4")}))
    after = counters(server)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert [r.status_code for r in responses] == [200] * CONCURRENT, [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["latent_id"] for r in responses}) == 1
    assert delta("slr_encoder_rows_total{config=v}") == 1, "the clip was encoded more than once"
    misses = delta("slr_cache_misses_total")
    hits = sum(delta(k) for k in after if k.startswith("slr_cache_hits_total"))
    assert misses + hits == CONCURRENT
    assert delta("slr_coalesced_total") == misses - 1 >= 1, "no request joined the one in flight"
