"""Prometheus metrics, one registry per app (so several apps in one process, as in tests, never clash)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("slr_requests_total", "HTTP requests", ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("slr_request_latency_seconds", "HTTP request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.cache_hits = Counter("slr_cache_hits_total", "SLR cache hits", ["tier"], registry=r)
        self.cache_misses = Counter("slr_cache_misses_total", "SLR cache misses", registry=r)
        self.coalesced = Counter("slr_coalesced_total", "cache misses that joined an identical input already "
                                 "being decoded and encoded (single-flight)", registry=r)
        self.encoder_rows = Counter("slr_encoder_rows_total", "inputs run through an encoder graph", ["config"],
                                    registry=r)
        self.batch_size = Histogram("slr_batch_size", "rows per engine call", ["graph"], buckets=BATCH_BUCKETS,
                                    registry=r)
        self.batch_latency = Histogram("slr_batch_latency_seconds", "engine call time", ["graph"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.redis_up = Gauge("slr_redis_up", "1 when Redis is reachable, 0 when the LRU fallback serves", registry=r)
        self.rejected = Counter("slr_rejected_total", "requests refused before the engine", ["reason"], registry=r)
        self.queue_depth = Gauge("slr_queue_depth", "jobs waiting for a batch", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
