"""One object with the service's stages: preprocess (media, sentences), infer (cache, batched engine calls),
postprocess (captions, GIF/PNG). Knows nothing of FastAPI: routers call it and map its errors.

Engine calls go through the Batcher (threads: onnxruntime releases the GIL); decoding uploads and
encoding GIFs run in a separate media thread pool, so the event loop only parses and answers.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast, overload

import numpy as np

from core.answer_warnings import AnswerWarning, warning
from core.channels import encode_name, has_sentence, has_video, key_of
from core.config import ModelConfig
from core.familiarity import Verdict, sentence_familiarity, verdict
from core.frames import Box
from core.graph_contract import encoder_graph, reached_cap, resolve_max_len
from core.manifest import Manifest
from core.media import MediaLimitExceeded, MediaLimits, PreparedVideo, Source
from core.vocab import UNK_ID, Vocab, tokenize
from service.batching import Batcher, QueueFull
from service.cache import LATENT_ID, Lru, SlrCache, SlrEntry, canonical_digest, make_key
from service.decoding import DecodePool, PoolClosed
from service.errors import InvalidInput, NotReady, Overloaded, TaskUnavailable, UnknownLatent
from service.media import encode_gif, encode_png_frames
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.predictor")

RETRY_AFTER_S = 1
SAMPLE_ROUNDS = 4  # rounds of draws looking for distinct samples (the first is the plain seeded draw)
DIGEST_INLINE_BYTES = 1 << 20


@dataclass(frozen=True)
class BatchKey:
    """Which graph a queued job runs on, with the call options every job of one batch must share: the encoder's
    input configuration ('v', 's', 'vs'); a sentence decoder's beam size and (beam search only) length limit."""

    kind: Literal["encode", "score", "sentence", "video"]
    config: str = ""
    beam_size: int = 1
    max_len: int | None = None

    @property
    def graph(self) -> str:
        """The metrics' label: encoder_<config>, score (the familiarity rebuild), sentence or video."""
        return f"encoder_{self.config}" if self.kind == "encode" else self.kind


# What goes through the batcher, per BatchKey.kind: an encoder's (frames, word ids) -> (mu, sigma); the familiarity
# score's (frames, mu, picture box) -> signals; a sentence decoder's (z, max_len) -> word ids; the video decoder's
# (z, first frame) -> frames.
EncodeItem = tuple[np.ndarray | None, list[int] | None]
EncodeResult = tuple[np.ndarray, np.ndarray]
ScoreItem = tuple[np.ndarray, np.ndarray, Box | None]
Signals = tuple[float, ...]
SCORE_BATCH = 16  # most clips one familiarity score call rebuilds and reads (Predictor._batch_cap)
SentenceItem = tuple[np.ndarray, int | None]
VideoItem = tuple[np.ndarray, np.ndarray | None]
BatchItem = EncodeItem | ScoreItem | SentenceItem | VideoItem
BatchResult = EncodeResult | Signals | list[int] | np.ndarray


class EngineLike(Protocol):
    """What the service needs of an engine (service.engine.Engine; tests pass lighter doubles): the predictor runs
    it, /models and /readyz report its execution providers."""

    config: ModelConfig
    manifest: Manifest
    vocab: Vocab
    version: str
    providers: dict[str, list[str]]
    uses_gpu: bool

    def encode(self, video: np.ndarray | None, tokens: list[list[int]] | None) -> tuple[np.ndarray, np.ndarray]: ...

    def decode_sentence(self, z: np.ndarray, beam_size: int = 1, max_len: int | None = None) -> list[list[int]]: ...

    def decode_video(self, z: np.ndarray, first_frame: np.ndarray | None = None) -> np.ndarray: ...

    def rebuild_video(self, z: np.ndarray, first_frame: np.ndarray) -> np.ndarray: ...


def _hashed_off_loop(data: Source) -> bool:
    """sha256 runs ~1 GB/s: past 1 MB (~1 ms), or from a spooled file, it leaves the event loop."""
    return not isinstance(data, bytes) or len(data) > DIGEST_INLINE_BYTES


@dataclass(frozen=True)
class Upload:
    """An uploaded file as bytes, or in its spooled temporary file when large; its name is kept for messages only
    (the bytes decide the format)."""

    data: Source
    filename: str | None = None


@dataclass(frozen=True)
class Latent:
    """An SLR and where it came from: `latent_id` is its cache key. On a cache miss `settled` is the entry as it is
    cached, with its familiarity signals: they are computed beside the request's decoding (a caption's beam search
    and the score's rebuild run on two engine threads at once), and only the verdict waits for them."""

    latent_id: str
    config: str  # 'v', 's' or 'vs'
    entry: SlrEntry
    cached: bool
    settled: asyncio.Future[SlrEntry] | None = None

    @property
    def config_name(self) -> str:
        return encode_name(self.config)


@dataclass(frozen=True)
class Flight:
    """The tasks of one input's SLR in flight: `encoded` its SLR (without familiarity signals) and the frames it was
    encoded from; `settled` the entry as cached, with its signals."""

    encoded: asyncio.Future[tuple[SlrEntry, np.ndarray | None]]
    settled: asyncio.Future[SlrEntry]


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Retrieve a finished task's exception: when every waiter has left, nobody else would (asyncio logs it)."""
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class Captions:
    caption: str
    samples: list[str]
    latent: Latent
    truncated: bool = False  # the caption ran to the length cap without <eos>: cut off (the answer says so)
    cap: int = 0  # that cap, in words

    def cut_off(self) -> list[AnswerWarning]:
        """The warning of a caption that reached the length cap without ending (none when it ended)."""
        return [warning("truncated", max_len=self.cap)] if self.truncated else []


def unique_new(texts: list[str], seen: set[str], limit: int) -> list[str]:
    """Up to `limit` of texts, in order, none in `seen` and none twice."""
    out: list[str] = []
    for t in texts:
        if len(out) < limit and t not in seen and t not in out:
            out.append(t)
    return out


class Predictor:
    def __init__(self, engine: EngineLike, cache: SlrCache, metrics: Metrics, settings: Settings) -> None:
        self.engine, self.cache, self.metrics, self.settings = engine, cache, metrics, settings
        self.cfg = engine.config
        self.calibration = engine.manifest.familiarity if settings.familiarity else None
        # A cache hit brings back signals already scored here: the score of one row through numpy costs ~0.3 ms,
        # a quarter of a hit's event-loop time under load (issue 35); memoised, a dict lookup.
        self._video_score = functools.lru_cache(maxsize=settings.cache_lru_size)(self._score_signals)
        # The verdict too is a function of what a cache entry holds (its signals and its sentence's share of known
        # words): kept per distinct pair, so that a hit does one lookup with the score on as with it off (building
        # it cost ~1.1 us more with the score on, the one per-hit work that differed: bench/hit_cost.py).
        self._verdicts = functools.lru_cache(maxsize=settings.cache_lru_size)(self._verdict_of)
        # The sentence of an SLR's mean, per (latent id, beam size, length cap): a function of the latent as the SLR
        # is, so a cache hit's caption skips the sentence decoder too.
        self._mean_sentences: Lru[tuple[str, int, int | None], list[int]] = Lru(settings.cache_lru_size)
        self.limits = MediaLimits(settings.max_video_frames, settings.max_video_pixels, settings.max_decode_s)
        self._media_pool = ThreadPoolExecutor(settings.media_workers, thread_name_prefix="media")
        self.decoder = DecodePool(settings.decode_processes, self._media_pool, settings.mmap_threshold_kib * 1024,
                                  settings.decode_depth)
        # One thread per batch key is enough: a key runs one batch at a time (3 encoders, the score, 2 decoders).
        self._engine_pool = ThreadPoolExecutor(6, thread_name_prefix="engine")
        self._media_pending = 0
        self.batches_run = 0  # engine calls so far: the heap trimmer's measure of activity (service/heap.py)
        self._in_flight: dict[str, Flight] = {}  # cache key -> the tasks computing its SLR
        # Batching off (SLR_BATCHING=false): the same queue and threads, one request per engine call.
        batching = settings.batching
        self.batcher = Batcher(self._run_batch, self._engine_pool, self._batch_cap if batching else 1,
                               settings.max_wait_ms if batching else 0.0, settings.queue_size,
                               on_batch=self._record_batch, feeds=lambda key: key.kind == "encode",
                               backlog=self._decode_backlog,
                               backlog_wait_ms=settings.backlog_wait_ms if batching else 0.0)

    def _decode_backlog(self) -> bool:
        """More uploads in hand than decoders: the server is saturated, and more SLRs are on their way."""
        return self._media_pending > (self.settings.decode_processes or self.settings.media_workers)

    def _batch_cap(self, key: BatchKey) -> int:
        if key.kind == "encode":  # a convolutional encoder costs the same per row at any batch
            return min(self.settings.max_encode_batch, self.settings.max_batch)
        if key.kind == "score":  # the rebuild graph does not (cache-miss c=32 1.07x at 16 against 8; ~2 MB a row)
            return min(SCORE_BATCH, self.settings.max_batch)
        return self.settings.max_batch

    def require_task(self, task: str) -> None:
        """Refuse a task the exported model has no graphs for (e.g. video out from a features model)."""
        tasks = self.engine.manifest.tasks
        if task not in tasks:
            raise TaskUnavailable(f"model {self.engine.version} does not serve {task!r}; it serves {sorted(tasks)}")

    # ---- preprocess -------------------------------------------------------------------------------
    def tokens(self, sentence: str) -> list[int]:
        """Word ids of a sentence; unknown words become <unk>, empty or over-long input is refused."""
        if len(sentence) > self.settings.max_sentence_chars:
            raise InvalidInput(f"sentence has {len(sentence)} characters; at most {self.settings.max_sentence_chars}")
        words = tokenize(sentence)
        if not words:
            raise InvalidInput("sentence is empty (it has no words)")
        if len(words) > self.cfg.max_words:
            raise InvalidInput(f"sentence has {len(words)} words; this model takes at most {self.cfg.max_words}")
        return [self.engine.vocab.id(w) for w in words]

    async def _bounded(self, start: Callable[[], Awaitable[Any]]) -> Any:
        """Media work (decoding, GIF encoding), refused with 503 past queue_size waiting at once."""
        if self._media_pending >= self.settings.queue_size:
            self.metrics.rejected.labels("media_queue_full").inc()
            raise Overloaded("too many uploads are being decoded; retry shortly", RETRY_AFTER_S)
        self._media_pending += 1
        try:
            return await start()
        finally:
            self._media_pending -= 1

    async def _in_media_pool(self, fn: Any, *args: Any) -> Any:
        return await self._bounded(lambda: asyncio.get_running_loop().run_in_executor(self._media_pool, fn, *args))

    async def prepare(self, upload: Upload) -> PreparedVideo:
        # The decoder checks its own clock; this outer bound only stops the request from waiting on a stuck one.
        try:
            work = self._bounded(lambda: self.decoder.prepare(upload.data, self.cfg, self.limits))
            return await asyncio.wait_for(work, self.settings.max_decode_s + 5)
        except asyncio.TimeoutError:
            raise MediaLimitExceeded(f"decoding took longer than {self.settings.max_decode_s:g} s") from None
        except PoolClosed:
            raise NotReady("the server is stopping: send the upload again") from None

    # ---- infer --------------------------------------------------------------------------------------
    async def _submit(self, key: BatchKey, item: BatchItem) -> Any:
        """The batch's answer for this item: the type that goes with key.kind (see BatchItem above)."""
        try:
            return await self.batcher.submit(key, item)
        except QueueFull:
            self.metrics.rejected.labels("queue_full").inc()
            raise Overloaded("the engine queue is full; retry shortly", RETRY_AFTER_S) from None
        finally:
            self.metrics.queue_depth.set(self.batcher.queued)

    async def encode(self, video: Upload | None, sentence: str | None) -> Latent:
        """Media -> SLR, through the cache: a hit skips decoding the upload and the encoder."""
        if video is None and sentence is None:
            raise InvalidInput("send a video, a sentence, or both")
        tokens = self.tokens(sentence) if sentence is not None else None
        config = key_of(video=video is not None, sentence=tokens is not None)
        if encoder_graph(config) not in self.engine.manifest.graphs:
            raise TaskUnavailable(f"model {self.engine.version} has no encoder for inputs {config!r}")
        data = video.data if video else None
        if data is not None and _hashed_off_loop(data):
            digest = await self._in_media_pool(canonical_digest, data, tokens)
        else:
            digest = canonical_digest(data, tokens)
        key = make_key(self.engine.version, config, digest)
        hit = await self.cache.get(key)
        if hit is not None and has_video(config) and self.calibration is not None and hit[0].video_signals is None:
            hit = None  # cached without familiarity signals (scoring was off, or an older layout): compute again
        if hit is not None:
            self.metrics.cache_hits.labels(hit[1]).inc()
            return Latent(key, config, hit[0], cached=True)
        self.metrics.cache_misses.inc()
        flight = self._single_flight(key, video, config, tokens)
        entry, _ = await asyncio.shield(flight.encoded)
        return Latent(key, config, entry, cached=False, settled=flight.settled)

    def _single_flight(self, key: str, video: Upload | None, config: str, tokens: list[int] | None) -> Flight:
        """One decode + encode per distinct input in flight: identical uploads arriving together on a cold
        cache await the first one's SLR. The work runs as its own tasks, awaited shielded, so a client that leaves
        cancels only its own wait, never the SLR the others are waiting for."""
        flight = self._in_flight.get(key)
        if flight is None:
            encoded = asyncio.ensure_future(self._encode_slr(video, config, tokens))
            flight = Flight(encoded, asyncio.ensure_future(self._settle_slr(key, encoded)))
            self._in_flight[key] = flight
            encoded.add_done_callback(_retrieve)
            flight.settled.add_done_callback(lambda done: self._finished(key, done))
        else:
            self.metrics.coalesced.inc()
        return flight

    def _finished(self, key: str, task: asyncio.Future[SlrEntry]) -> None:
        self._in_flight.pop(key, None)
        _retrieve(task)

    async def _encode_slr(self, video: Upload | None, config: str,
                          tokens: list[int] | None) -> tuple[SlrEntry, np.ndarray | None]:
        """The SLR of an input, without its familiarity signals, and the frames it was encoded from."""
        prepared = await self.prepare(video) if video is not None else None
        frames = prepared.array if prepared else None
        mu, sigma = await self._submit(BatchKey("encode", config), (frames, tokens))
        # A copy: a view would keep the whole clip's pixels (8x the frame) alive in the cache entry.
        first = prepared.pixels[0].copy() if prepared and prepared.pixels is not None else None
        sentence_fam = sentence_familiarity(tokens, UNK_ID) if tokens is not None else None
        return SlrEntry(mu, sigma, first, prepared.box if prepared else None, None, sentence_fam), frames

    async def _settle_slr(self, key: str, encoded: asyncio.Future[tuple[SlrEntry, np.ndarray | None]]) -> SlrEntry:
        """The entry with its familiarity signals (a video's, where scoring is on), cached once it has them."""
        entry, frames = await encoded
        if frames is not None and self.calibration is not None:
            # The model rebuilds the clip from its own SLR (the video decoder's video-to-video rows, over the
            # background it draws itself, where /reconstruct may draw over the first frame's scene): what it misses
            # is one familiarity signal, read inside the upload's own picture. Cache misses only; the signals are
            # cached with the SLR.
            signals = await self._submit(BatchKey("score"), (frames, entry.mu, entry.box))
            entry = dataclasses.replace(entry, video_signals=signals)
        await self.cache.put(key, entry)
        return entry

    async def lookup(self, latent_id: str) -> Latent:
        m = LATENT_ID.match(latent_id)
        if m is None:
            raise InvalidInput("latent_id must look like slr:<version>:<v|s|vs>:<64 hex digits>")
        if m["version"] != self.engine.version:
            raise UnknownLatent(f"latent_id belongs to model version {m['version']}; "
                                f"this server runs {self.engine.version}")
        hit = await self.cache.get(latent_id)
        if hit is None:
            raise UnknownLatent("unknown or expired latent_id; encode the input again")
        self.metrics.cache_hits.labels(hit[1]).inc()
        return Latent(latent_id, m["config"], hit[0], cached=True)

    async def resolve(self, video: Upload | None = None, sentence: str | None = None,
                      latent_id: str | None = None) -> Latent:
        """The SLR of exactly one source: media or a latent_id from /encode."""
        if latent_id is not None:
            if video is not None or sentence is not None:
                raise InvalidInput("send either media or latent_id, not both")
            return await self.lookup(latent_id)
        return await self.encode(video, sentence)

    async def verdict(self, latent: Latent, unknown_words: list[str] | None = None) -> Verdict:
        """How familiar the SLR's input was, with warnings in words: on a cache miss, once its signals are in (and
        the entry cached)."""
        entry = await asyncio.shield(latent.settled) if latent.settled is not None else latent.entry
        return self.entry_verdict(entry, unknown_words)

    def entry_verdict(self, entry: SlrEntry, unknown_words: list[str] | None = None) -> Verdict:
        """The verdict of a cache entry (core/familiarity.py), with the request's unknown words."""
        signals = entry.video_signals if self.calibration is not None else None
        if unknown_words:  # the request's own words: not memoised (a key per sentence would only fill the memo)
            return self._verdict_of(signals, entry.sentence_familiarity, tuple(unknown_words))
        return self._verdicts(signals, entry.sentence_familiarity)

    def _verdict_of(self, signals: tuple[float, ...] | None, sentence: float | None,
                    unknown_words: tuple[str, ...] = ()) -> Verdict:
        """The verdict of an entry's signals (None: not scored) and sentence share, with the request's unknown words."""
        if self.calibration is None or signals is None:
            return verdict(None, sentence, None, list(unknown_words))
        return verdict(self._video_score(signals), sentence, self.calibration.threshold, list(unknown_words))

    def _score_signals(self, signals: tuple[float, ...]) -> float:
        assert self.calibration is not None  # only called when scoring is on
        return float(self.calibration.familiarity(np.asarray([signals]))[0])

    def sample(self, entry: SlrEntry, n: int, seed: int) -> np.ndarray:
        """n draws z = mu + sigma * eps from the SLR, reproducible with the seed."""
        eps = np.random.default_rng(seed).standard_normal((n, entry.mu.shape[0]), dtype=np.float32)
        return entry.mu[None, :] + entry.sigma[None, :] * eps

    async def sentences(self, zs: np.ndarray, beam_size: int, max_len: int | None) -> list[str]:
        """One sentence per row of zs (sentence_ids, in words)."""
        return [self.engine.vocab.decode(ids) for ids in await self.sentence_ids(zs, beam_size, max_len)]

    async def sentence_ids(self, zs: np.ndarray, beam_size: int, max_len: int | None) -> list[list[int]]:
        """One sentence's word ids per row of zs. Rows of every concurrent request with the same beam size decode as one
        batch (beam search included: its rows are item*K + k). Greedy rows share a batch whatever their
        max_len (a greedy sentence cut at n words equals the first n words of a longer one); beam rows
        also need the same max_len, since a shorter limit changes which hypotheses finish."""
        greedy = beam_size <= 1
        key = BatchKey("sentence") if greedy else BatchKey("sentence", beam_size=beam_size, max_len=max_len)
        if len(zs) == 1:  # the common case (one caption): no task per row
            rows = [await self._submit(key, (zs[0], max_len))]
        else:
            rows = await asyncio.gather(*(self._submit(key, (z, max_len)) for z in zs))
        return list(rows)

    async def _mean_sentence(self, latent: Latent, beam_size: int, max_len: int | None) -> list[int]:
        """The word ids of the sentence of the SLR's mean: decoded once per latent and options, then remembered."""
        key = (latent.latent_id, beam_size, max_len)
        ids = self._mean_sentences.get(key)
        if ids is not None:
            # Remembered: no engine call, so this request would run to its answer without ever yielding, and under
            # load the requests behind it wait in a long queue of ready connections (p99 82-91 ms against 36-86
            # with this one yield at c=32, docs/performance.md).
            await asyncio.sleep(0)
        else:
            ids = (await self.sentence_ids(latent.entry.mu[None, :], beam_size, max_len))[0]
            self._mean_sentences.put(key, ids)
        return ids

    async def describe(self, latent: Latent, samples: int, seed: int, beam_size: int, max_len: int | None,
                       distinct: bool = False) -> Captions:
        """The sentence of the SLR mean and `samples` sentences of draws from it (caption and paraphrase).
        distinct: the samples differ from each other and from the mean's; up to SAMPLE_ROUNDS rounds of draws
        look for them, so fewer may come back when the SLR is narrow."""
        if samples > 0:
            zs = np.concatenate([latent.entry.mu[None, :], self.sample(latent.entry, samples, seed)])
            rows = await self.sentence_ids(zs, beam_size, max_len)
        else:
            rows = [await self._mean_sentence(latent, beam_size, max_len)]
        texts = [self.engine.vocab.decode(ids) for ids in rows]
        cap = resolve_max_len(max_len, self.cfg.max_words)
        truncated = reached_cap(rows[0], cap)
        if not distinct:
            return Captions(texts[0], texts[1:], latent, truncated, cap)
        found = unique_new(texts[1:], {texts[0]}, samples)
        for extra in range(1, SAMPLE_ROUNDS):
            if len(found) >= samples:
                break
            more = await self.sentences(self.sample(latent.entry, samples, seed + extra * 7919), beam_size, max_len)
            found += unique_new(more, {texts[0], *found}, samples - len(found))
        return Captions(texts[0], found, latent, truncated, cap)

    async def video(self, latent: Latent, condition_on_first_frame: bool) -> np.ndarray:
        """f32 [T,H,W,3]: reconstruct conditions on the input's first frame; sentence-to-video on zeros."""
        first = latent.entry.first_frame
        first_f32 = first.astype(np.float32) / 255.0 if condition_on_first_frame and first is not None else None
        return await self._submit(BatchKey("video"), (latent.entry.mu, first_f32))

    # ---- postprocess --------------------------------------------------------------------------------
    @overload
    async def render(self, frames: np.ndarray, fmt: Literal["gif"], scale: int, fps: float) -> bytes: ...

    @overload
    async def render(self, frames: np.ndarray, fmt: Literal["json"], scale: int, fps: float) -> list[str]: ...

    async def render(self, frames: np.ndarray, fmt: Literal["gif", "json"], scale: int,
                     fps: float) -> bytes | list[str]:
        """A GIF's bytes, or base64 PNG frames for JSON."""
        if fmt == "gif":
            return await self._in_media_pool(encode_gif, frames, scale, fps)
        return await self._in_media_pool(encode_png_frames, frames, scale)

    # ---- the engine side (runs in the engine threads) -----------------------------------------------
    def _run_batch(self, key: BatchKey, items: list[BatchItem]) -> Sequence[BatchResult]:
        # The batcher groups items by key, and each kind submits one item type: the casts say which.
        if key.kind == "encode":
            return self._run_encode(key.config, cast(list[EncodeItem], items))
        if key.kind == "score":
            return self._run_score(cast(list[ScoreItem], items))
        if key.kind == "sentence":
            return self._run_sentences(key.beam_size, cast(list[SentenceItem], items))
        if key.kind == "video":
            return self._run_video(cast(list[VideoItem], items))
        raise ValueError(f"unknown batch key {key!r}")

    def _run_encode(self, config: str, items: list[EncodeItem]) -> list[EncodeResult]:
        # An encoder's batch holds one input configuration: its items carry exactly the inputs `config` names.
        video = np.stack([v for v, _ in items if v is not None]) if has_video(config) else None  # f32 already
        tokens = [t for _, t in items if t is not None] if has_sentence(config) else None
        mu, sigma = self.engine.encode(video, tokens)
        self.metrics.encoder_rows.labels(config).inc(len(items))
        return [(np.asarray(m, np.float32), np.asarray(s, np.float32)) for m, s in zip(mu, sigma)]

    def _run_score(self, items: list[ScoreItem]) -> list[Signals]:
        video = np.stack([v for v, _, _ in items])  # float32 already (PreparedVideo): no second copy
        rebuilt = self.engine.rebuild_video(np.stack([mu for _, mu, _ in items]), video[:, 0])
        assert self.calibration is not None  # a score is asked for only where the model carries one
        rows = self.calibration.measure(video, rebuilt, [box for _, _, box in items])
        return [tuple(float(v) for v in row) for row in rows]

    def _run_sentences(self, beam_size: int, items: list[SentenceItem]) -> list[list[int]]:
        z = np.stack([z for z, _ in items]).astype(np.float32)
        limits = [resolve_max_len(n, self.cfg.max_words) for _, n in items]
        rows = self.engine.decode_sentence(z, beam_size=beam_size, max_len=max(limits))
        return [ids[:n] for ids, n in zip(rows, limits)]

    def _run_video(self, items: list[VideoItem]) -> list[np.ndarray]:
        z = np.stack([z for z, _ in items]).astype(np.float32)
        first = None
        if any(f is not None for _, f in items):
            blank = np.zeros((self.cfg.height, self.cfg.width, 3), np.float32)
            first = np.stack([f if f is not None else blank for _, f in items])
        return list(self.engine.decode_video(z, first))

    def _record_batch(self, key: BatchKey, size: int, seconds: float) -> None:
        self.batches_run += 1
        self.metrics.batch_size.labels(key.graph).observe(size)
        self.metrics.batch_latency.labels(key.graph).observe(seconds)

    async def close(self) -> None:
        await self.batcher.close()
        await self.cache.close()
        self._media_pool.shutdown(wait=False, cancel_futures=True)
        self.decoder.close()
        self._engine_pool.shutdown(wait=False, cancel_futures=True)


def build_predictor(engine: EngineLike, settings: Settings, metrics: Metrics, local: bool = False) -> Predictor:
    """The predictor of a loaded engine, with its SLR cache: shared through Redis when settings name one, in
    process otherwise. The server and the local commands (slr caption, slr generate; `local`: no Redis warning,
    there are no replicas to share with) both set up through here."""
    cfg = engine.config
    cache = SlrCache(settings.redis_url or None, settings.cache_ttl_s, settings.cache_lru_size,
                     (cfg.height, cfg.width, 3), on_redis_state=metrics.redis_up.set, latent_dim=cfg.latent_dim,
                     local=local)
    return Predictor(engine, cache, metrics, settings)
