"""The SLR cache: mu, sigma (and the first input frame, which reconstruct conditions on) per canonical input.

Redis holds them as raw little-endian bytes in a hash (never pickle) under
`slr:<model-version>:<input config>:<sha256 of canonical input>` with a TTL; that key is the `latent_id`.
A small in-process LRU always sits in front, and is the whole cache when Redis is unset or down: the
cache never fails a request, it only logs, reports `redis_up = False` and retries Redis now and then.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from core.familiarity import VIDEO_SIGNALS
from core.frames import Box
from core.media import Source

log = logging.getLogger("service.cache")

F32 = np.dtype("<f4")
BOX = np.dtype("<i2")
LATENT_ID = re.compile(r"^slr:(?P<version>[A-Za-z0-9._-]+):(?P<config>v|s|vs):(?P<digest>[0-9a-f]{64})$")


@dataclass(frozen=True)
class SlrEntry:
    mu: np.ndarray  # f32 [Nz]
    sigma: np.ndarray  # f32 [Nz]
    first_frame: np.ndarray | None = None  # uint8 [H,W,3] when the input had frames
    # (top, left, h, w) of the clip's own picture in a letterboxed frame ("pad" models), so that reconstruct can
    # answer in the clip's aspect ratio; None when the picture fills the frame.
    box: Box | None = None
    # What the familiarity score reads (core/familiarity.py): the clip's signals, not its score, so that a model
    # recalibrated in place (`slr calibrate`) scores cached clips by its new calibration; None when there was no
    # video or the service computed none (SLR_FAMILIARITY=false, a model without calibration).
    video_signals: tuple[float, ...] | None = None
    sentence_familiarity: float | None = None  # the share of known words: no calibration involved


def canonical_digest(video: Source | None, token_ids: list[int] | None) -> str:
    """sha256 of the canonical input: the raw upload (a hit must skip decoding; a spooled one is read in chunks)
    and the sentence's word ids (so case, punctuation and unknown words that the model cannot tell apart share one
    entry)."""
    h = hashlib.sha256()
    if video is not None:
        h.update(b"video\0" + _sha256(video))
    if token_ids is not None:
        h.update(b"tokens\0" + np.asarray(token_ids, dtype="<i8").tobytes())
    return h.hexdigest()


def _sha256(source: Source) -> bytes:
    if isinstance(source, bytes):
        return hashlib.sha256(source).digest()
    source.seek(0)
    return hashlib.file_digest(cast(io.BufferedReader, source), "sha256").digest()


def make_key(version: str, config: str, digest: str) -> str:
    return f"slr:{version}:{config}:{digest}"


def _to_fields(entry: SlrEntry) -> dict[FieldT, EncodableT]:
    fields: dict[FieldT, EncodableT] = {"mu": entry.mu.astype(F32).tobytes(),
                                        "sigma": entry.sigma.astype(F32).tobytes()}
    if entry.first_frame is not None:
        fields["first"] = np.ascontiguousarray(entry.first_frame, dtype=np.uint8).tobytes()
    if entry.box is not None:
        fields["box"] = np.asarray(entry.box, dtype=BOX).tobytes()
    if entry.video_signals is not None:
        fields["sig_v"] = np.asarray(entry.video_signals, dtype=F32).tobytes()
    if entry.sentence_familiarity is not None:
        fields["fam_s"] = np.asarray([entry.sentence_familiarity], dtype=F32).tobytes()
    return fields


def _share(raw: bytes | None) -> float | None:
    """A stored familiarity, or None when absent or not a number in [0, 1] (a foreign value is not trusted)."""
    if raw is None or len(raw) != F32.itemsize:
        return None
    value = float(np.frombuffer(raw, dtype=F32)[0])
    return value if 0.0 <= value <= 1.0 else None


def _signals(raw: bytes | None) -> tuple[float, ...] | None:
    """Stored video signals, or None when absent, of another layout, or not finite (a foreign value is not trusted)."""
    if raw is None or len(raw) != len(VIDEO_SIGNALS) * F32.itemsize:
        return None
    values = np.frombuffer(raw, dtype=F32)
    return tuple(float(v) for v in values) if np.all(np.isfinite(values)) else None


def _box(raw: bytes | None, frame_shape: tuple[int, int, int]) -> Box | None:
    """A stored box, or None when absent or not one that fits the frame (a foreign value is not trusted)."""
    if raw is None or len(raw) != 4 * BOX.itemsize:
        return None
    top, left, h, w = (int(v) for v in np.frombuffer(raw, dtype=BOX))
    if min(top, left) < 0 or h < 1 or w < 1 or top + h > frame_shape[0] or left + w > frame_shape[1]:
        return None
    return top, left, h, w


def _from_fields(fields: Mapping[bytes, bytes], frame_shape: tuple[int, int, int],
                 latent_dim: int | None = None) -> SlrEntry | None:
    mu, sigma, first = fields.get(b"mu"), fields.get(b"sigma"), fields.get(b"first")
    if mu is None or sigma is None or len(mu) != len(sigma) or len(mu) % 4:
        return None  # foreign or truncated value: treat as a miss
    if latent_dim is not None and len(mu) != 4 * latent_dim:
        return None  # another model's (or a planted) vector: the engine would refuse its shape
    frame = None
    if first is not None and len(first) == int(np.prod(frame_shape)):
        frame = np.frombuffer(first, dtype=np.uint8).reshape(frame_shape)
    return SlrEntry(np.frombuffer(mu, dtype=F32).copy(), np.frombuffer(sigma, dtype=F32).copy(), frame,
                    _box(fields.get(b"box"), frame_shape), _signals(fields.get(b"sig_v")), _share(fields.get(b"fam_s")))


def _raw(fields: Mapping[bytes | str, bytes | str]) -> Mapping[bytes, bytes]:
    """A hash as Redis returned it: the client never decodes (no decode_responses), so keys and values are bytes."""
    return cast(Mapping[bytes, bytes], fields)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most `size` values, the least recently used dropped first: the SLR cache's memory tier, and the sentences
    the predictor remembers per latent."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class SlrCache:
    """Two tiers: in-process LRU (always) and Redis (when configured and reachable)."""

    def __init__(self, redis_url: str | None, ttl_s: int, lru_size: int, frame_shape: tuple[int, int, int],
                 retry_s: float = 2.0, on_redis_state: Callable[[bool], None] | None = None,
                 latent_dim: int | None = None, local: bool = False) -> None:
        self.ttl_s, self.frame_shape, self.retry_s = ttl_s, frame_shape, retry_s
        self.latent_dim = latent_dim
        self._lru: Lru[str, SlrEntry] = Lru(lru_size)
        self._on_state = on_redis_state or (lambda up: None)
        self._redis = self._client(redis_url) if redis_url else None
        self._up = False
        self._retry_at = 0.0
        if self._redis is None and not local:  # a local command (slr caption) has no replicas to share with
            log.warning("SLR_REDIS_URL is empty: caching SLRs in process only (not shared between replicas)")
        self._on_state(False)

    @staticmethod
    def _client(url: str) -> aioredis.Redis:
        # Short timeouts: a dead or slow Redis must cost a request milliseconds, not seconds. One immediate retry,
        # on a broken connection only: after Redis restarts, every pooled connection is dead, and without it each
        # would fail one command (a lost write, and Redis reported down again for retry_s). Never on a timeout.
        return aioredis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.5,
                                       retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                                       retry_on_timeout=False, health_check_interval=0)

    @property
    def redis_configured(self) -> bool:
        return self._redis is not None

    @property
    def redis_up(self) -> bool:
        return self._up

    def _mark(self, up: bool, err: Exception | None = None) -> None:
        if up != self._up:
            if up:
                log.info("Redis reachable: SLR cache shared")
            else:
                log.warning("Redis unavailable (%s): falling back to the in-process LRU cache", err)
            self._on_state(up)
        self._up = up
        if not up:
            self._retry_at = time.monotonic() + self.retry_s

    def _redis_usable(self) -> bool:
        return self._redis is not None and (self._up or time.monotonic() >= self._retry_at)

    async def ping(self) -> bool:
        """Check Redis now (readiness probe); also restores it after an outage."""
        if self._redis is None:
            return False
        try:
            await self._redis.ping()
            self._mark(True)
        except (RedisError, OSError) as e:
            self._mark(False, e)
        return self._up

    async def get(self, key: str) -> tuple[SlrEntry, str] | None:
        """(entry, tier) on a hit, where tier is 'memory' or 'redis'; None on a miss."""
        entry = self._lru.get(key)
        if entry is not None:
            return entry, "memory"
        if not self._redis_usable():
            return None
        assert self._redis is not None
        try:
            fields = await self._redis.hgetall(key)
            self._mark(True)
        except (RedisError, OSError) as e:
            self._mark(False, e)
            return None
        entry = _from_fields(_raw(fields), self.frame_shape, self.latent_dim) if fields else None
        if entry is None:
            return None
        self._lru.put(key, entry)
        return entry, "redis"

    async def put(self, key: str, entry: SlrEntry) -> None:
        self._lru.put(key, entry)
        if not self._redis_usable():
            return
        assert self._redis is not None
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=_to_fields(entry))
                pipe.expire(key, self.ttl_s)
                await pipe.execute()
            self._mark(True)
        except (RedisError, OSError) as e:
            self._mark(False, e)

    async def close(self) -> None:
        if self._redis is not None:
            try:
                await self._redis.aclose()
            except (RedisError, OSError):
                pass
