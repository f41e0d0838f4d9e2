"""star-slr's caption path served by BentoML 1.4, written the way BentoML's documentation shows it (benchmark only).

    SLR_ARTIFACTS=models/default bentoml serve bench.peers.bentoml_service:Caption --port 3000

The same work as star-slr's POST /caption: the upload is decoded by `core.media.prepare_upload`, the video encoder
and greedy sentence decoding run on the same ONNX graphs (`service.engine.Engine`).

The shape follows BentoML's "Adaptive batching" guide ("Handle multiple parameters"): a batchable API accepts one
batched parameter and answers a list, so a client-facing wrapper Service takes the single upload and calls the
batchable model Service through `bentoml.depends`. The wrapper's endpoint is async and awaits the model Service
through `self.model.to_async` (the "Distributed Services" guide), the upload decoded in a worker thread
(`asyncio.to_thread`): a synchronous endpoint with `threads=32` (the batching guide's note) measured 8 req/s at
c=1 on a cache hit here (p50 117 ms), the async one 97 req/s (p50 10 ms). One worker
each (BentoML runs each Service in its own process); no access log, like star-slr under bench/load.py.

- `StarModel` (the model Service): two batchable APIs (`@bentoml.api(batchable=True)`, adaptive batching):
  `encode` stacks videos [1,T,H,W,3] along axis 0 and runs the video encoder; `caption` stacks SLR means [1,Nz]
  and runs greedy decoding, one caption per row.
- `Caption` (the wrapper, POST /caption, multipart field `video`): sha256 of the upload, an in-process dict
  sha256 -> mu (star-slr keeps that cache in Redis or an LRU), `prepare_upload` on a miss, then the two calls
  (`encode` only on a miss).
  Answers {"caption": ...}.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import bentoml
import numpy as np

ROOT = Path(__file__).resolve().parents[2]

ARTIFACTS = os.environ.get("SLR_ARTIFACTS", str(ROOT / "models" / "default"))
# onnxruntime threads per graph call: star-slr's setting and default (SLR_INTRA_OP_THREADS, 1), so the engine is the
# same and only the serving differs; 0 is onnxruntime's own default (a thread per core).
INTRA_OP_THREADS = int(os.environ.get("SLR_INTRA_OP_THREADS", "1"))
MAX_BATCH = int(os.environ.get("SLR_PEER_MAX_BATCH", "32"))
MAX_LATENCY_MS = int(os.environ.get("SLR_PEER_MAX_LATENCY_MS", "10000"))  # the most a request may wait in a batch
# No access log (star-slr runs with --no-access-log too): BentoML's `logging.access.enabled` service option.
CONFIG = {"workers": 1, "traffic": {"timeout": 60}, "logging": {"access": {"enabled": False}}}


@bentoml.service(**CONFIG)
class StarModel:
    """The ONNX graphs of one artifacts version behind two batchable endpoints."""

    def __init__(self) -> None:
        from service.engine import Engine

        self.engine = Engine.load(ARTIFACTS, intra_op_threads=INTRA_OP_THREADS)
        self.engine.warmup()

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def encode(self, videos: np.ndarray) -> np.ndarray:
        """videos f32 [B,T,H,W,3] in [0,1] -> SLR means [B,Nz]."""
        mu, _ = self.engine.encode(videos, None)
        return mu

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def caption(self, mu: np.ndarray) -> list[str]:
        """SLR means [B,Nz] -> one greedy caption per row."""
        ids = self.engine.decode_sentence(np.asarray(mu, dtype=np.float32))
        return [self.engine.vocab.decode(row) for row in ids]


@bentoml.service(**CONFIG)
class Caption:
    """POST /caption with a multipart `video` upload -> {"caption": ...}."""

    model = bentoml.depends(StarModel)

    def __init__(self) -> None:
        from core.manifest import Manifest, resolve_version_dir
        from core.media import MediaLimits

        self.cfg = Manifest.read(resolve_version_dir(Path(ARTIFACTS), None)).model
        self.limits = MediaLimits()
        self.cache: dict[str, np.ndarray] = {}  # sha256(upload) -> mu

    @bentoml.api(route="/caption")
    async def caption(self, video: Path) -> dict[str, str]:
        from core.media import prepare_upload

        data = video.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        mu = self.cache.get(key)
        if mu is None:
            clip = (await asyncio.to_thread(prepare_upload, data, self.cfg, self.limits)).array
            mu = (await self.model.to_async.encode(clip[None]))[0]
            self.cache[key] = mu
        return {"caption": (await self.model.to_async.caption(mu[None]))[0]}
