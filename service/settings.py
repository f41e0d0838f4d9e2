"""Service settings, read once from `SLR_*` environment variables (pydantic-settings)."""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLR_", env_file=None, extra="ignore")

    artifacts: str = Field("models/default", description="artifacts root (holds `latest` and version dirs)")
    model_version: str | None = Field(None, description="version dir to serve; default: the root's `latest` file")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="empty string disables Redis (LRU only)")
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    cache_lru_size: int = Field(4096, ge=1,
                                description="entries kept in process (always; the only cache without Redis)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_upload_bytes: int = Field(256 * MiB, ge=1024, description="largest request body, rejected while streaming "
                                  "(a minute of 1080p phone video; past 1 MiB a file part is spooled to disk)")
    max_video_frames: int = Field(2000, ge=1)
    max_video_pixels: int = Field(1920 * 1080, ge=1, description="largest width x height of an uploaded video")
    max_decode_s: float = Field(10.0, gt=0)
    max_sentence_chars: int = Field(1000, ge=1)
    familiarity: bool = Field(True, description="false: answers carry familiarity null (no reconstruction of each new "
                                                "clip to score it; for measuring its cost)")
    batching: bool = Field(True, description="false: every engine call runs one request (max_batch 1, no wait)")
    max_batch: int = Field(32, ge=1, description="most requests in one engine call (sentence and video decoders)")
    max_encode_batch: int = Field(8, ge=1, description="most inputs in one encoder call: a convolutional encoder "
                                                      "costs the same per row at any batch size, and more per row "
                                                      "past about 8 on CPU")
    max_wait_ms: float = Field(5.0, ge=0, description="longest a request waits for companions (never when alone)")
    backlog_wait_ms: float = Field(40.0, ge=0, description="longest a caption or score waits for companions while "
                                   "uploads wait for a decoder (the server saturated): larger batches of graphs that "
                                   "cost little more per batch than per row")
    queue_size: int = Field(256, ge=1, description="requests waiting for the engine before 503")
    api_key: str | None = Field(None, description="when set, X-API-Key is required (health endpoints stay open)")
    log_level: str = "info"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                         description="comma-separated origins; empty = CORS off")
    intra_op_threads: int = Field(1, ge=0, description="onnxruntime intra-op threads per graph call; 1 suits a "
                                  "server on CPU (requests already run in parallel: graphs, media decoding, the "
                                  "event loop; more threads spin on the same cores: /caption 2-3x slower under "
                                  "load on 2 cores); 0 = one per core")
    media_workers: int = Field(2, ge=1, description="threads decoding uploads and encoding GIFs")
    mmap_threshold_kib: int = Field(4096, ge=0, le=32 * 1024,
                                    description="buffers this large or larger are mmapped and given back when freed "
                                                "(glibc; service/heap.py); 0 keeps malloc's own threshold, which "
                                                "grows with use and leaves the heap fragmented. Below a batch's "
                                                "buffers (a score batch's are 1-2 MiB), every call pays the page "
                                                "faults of fresh mmaps: at 128 the score cost a miss 2.8x its CPU")
    trim_threshold_kib: int = Field(64 * 1024, ge=0, le=1024 * 1024,
                                    description="free memory the serving process's heap keeps at its top before a "
                                                "free() gives it back (glibc; service/heap.py); 0 keeps glibc's, "
                                                "which a pinned mmap threshold leaves at 128 KiB: every graph call "
                                                "then faults its buffers in anew (cache-miss /caption at c=32 1.15x "
                                                "and 1.27x with 64 MiB, docs/performance.md). The periodic trim "
                                                "(malloc_trim_s) still gives it all back")
    malloc_arenas: int = Field(2, ge=0, le=64,
                               description="glibc malloc arenas of the serving process (service/heap.py): each keeps "
                                           "the memory freed in it; 0 keeps glibc's 8 per core. 2 left the process "
                                           "220 against 245 MiB after a bench.load sweep (232 against 229 in another "
                                           "run), req/s within noise")
    malloc_trim_s: float = Field(10.0, ge=0, description="the heap's free pages go back to the system (glibc's "
                                 "malloc_trim; service/heap.py) a second after a load ends, and every this many "
                                 "seconds under a steady one: a load's freed batch buffers leave it fragmented and "
                                 "resident; 0 = never")
    gc_freeze: bool = Field(True, description="take the objects alive after start-up out of Python's cyclic "
                                               "collector (service/heap.py): its full passes stalled the event loop")
    decode_processes: int = Field(2, ge=0, description="processes decoding uploads (spawned at start, core only: "
                                  "no torch, no onnxruntime); decoding in threads shares the event loop's GIL, "
                                  "which caps cache-miss throughput below the cores (docs/performance.md); "
                                  "0 = decode in the media threads")
    decode_depth: int = Field(2, ge=1, le=8, description="uploads each decode process holds at once: the next one "
                              "waits in its socket while it decodes the last, so a busy worker never idles between "
                              "a reply and its next request (1: one at a time)")
    graceful_timeout_s: int = Field(10, ge=0)
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        return [o.strip() for o in v.split(",") if o.strip()] if isinstance(v, str) else v

    @field_validator("model_version", "api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v


@lru_cache
def get_settings() -> Settings:
    return Settings()
