"""The inference engine: an artifacts version (CONTRIBUTING.md, "The artifacts contract") run in onnxruntime.

Torch-free by design (numpy, onnxruntime and the light model.* modules only): the service image ships
without torch. Sentence decoding runs core.search over the one-step graph, the same functions the
PyTorch model uses, so captions match the trained model token for token.

Execution providers are reported as they are, never as hoped: onnxruntime-gpu on a machine without a
usable GPU lists CUDA in get_available_providers(), yet a session asked for CUDA quietly runs on CPU
with one log line. So every decision here reads session.get_providers() after the session exists.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.channels import INPUT_KEYS, has_sentence, has_video, key_of
from core.graph_contract import (
    ENCODER_OUTPUTS,
    SENTENCE_INIT,
    SENTENCE_STEP,
    VIDEO_DECODER,
    VIDEO_REBUILD,
    encoder_graph,
    resolve_max_len,
)
from core.manifest import ArtifactError, Manifest, resolve_version_dir
from core.search import decode_with_graphs
from core.vocab import PAD_ID, Vocab, pad_tokens

__all__ = ["ArtifactError", "DeviceUnavailableError", "Engine", "resolve_version_dir"]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
GPU_PROVIDERS = frozenset({CUDA, "TensorrtExecutionProvider", "ROCMExecutionProvider"})
DEVICES = ("auto", "cpu", "cuda")

log = logging.getLogger(__name__)


class DeviceUnavailableError(Exception):
    """The requested device cannot run the graphs here (no silent fallback)."""


# ---------------------------------------------------------------- sessions and providers

def session_options(intra_op_threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(0, int(intra_op_threads))  # 0: onnxruntime picks (one per core)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena grows to the largest (batch, length) ever seen and never shrinks: with variable request
    # shapes that is a known onnxruntime memory leak. Plain allocations cost little next to the graphs.
    opts.enable_cpu_mem_arena = False
    return opts


def requested_providers(device: str) -> list[str]:
    """What to ask onnxruntime for; what it actually uses is checked after each session is created."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda" and CUDA not in available:
        raise DeviceUnavailableError(
            f"device='cuda' requested but this onnxruntime build has no CUDA provider (available: {available}); "
            "install onnxruntime-gpu on a machine with an NVIDIA GPU, or load with device='cpu' or 'auto'")
    return [CUDA, CPU] if CUDA in available else [CPU]


def open_session(path: Path, options: ort.SessionOptions, providers: list[str], device: str) -> ort.InferenceSession:
    """A session for one graph; device='cuda' is refused unless the session really runs on CUDA."""
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as first:  # some builds raise (not fall back) when the GPU cannot be initialised
        if providers == [CPU]:
            raise ArtifactError(f"{path}: onnxruntime cannot load it: {first}") from first
        try:
            session = ort.InferenceSession(str(path), options, providers=[CPU])
        except Exception as e:
            raise ArtifactError(f"{path}: onnxruntime cannot load it: {e}") from e
        if device == "cuda":
            raise DeviceUnavailableError(
                f"device='cuda' requested but CUDA failed to start for {path.name}: {first}") from first
    in_use = session.get_providers()
    if device == "cuda" and CUDA not in in_use:
        raise DeviceUnavailableError(
            f"device='cuda' requested; CUDA is listed as available but the session for {path.name} runs on "
            f"{in_use} (no usable GPU, or CUDA/cuDNN libraries missing); refusing to fall back to CPU")
    return session


# ---------------------------------------------------------------- the engine

class Engine:
    """One artifacts version, loaded: one onnxruntime session per graph."""

    def __init__(self, directory: Path, manifest: Manifest, vocab: Vocab,
                 sessions: dict[str, ort.InferenceSession]) -> None:
        self.directory = directory
        self.version = manifest.version
        self.manifest = manifest
        self.config = manifest.model
        self.vocab = vocab
        self.sessions = sessions
        self.providers: dict[str, list[str]] = {name: s.get_providers() for name, s in sessions.items()}
        self.uses_gpu: bool = any(p in GPU_PROVIDERS for ps in self.providers.values() for p in ps)

    @classmethod
    def load(cls, root: str | Path, version: str | None = None, device: str = "auto",
             intra_op_threads: int = 0) -> "Engine":
        """Open root/version (root/latest when version is None) after verifying every checksum.

        device: "auto" (GPU when a session really gets one, else CPU), "cpu", or "cuda" (fails with
        DeviceUnavailableError rather than falling back)."""
        directory = resolve_version_dir(Path(root), version)
        manifest = Manifest.read(directory)
        manifest.verify_files(directory)
        providers = requested_providers(device)
        options = session_options(intra_op_threads)
        sessions: dict[str, ort.InferenceSession] = {}
        for name, g in manifest.graphs.items():
            sessions[name] = open_session(directory / g.file, options, providers, device)
            if CUDA in providers and CUDA not in sessions[name].get_providers():
                log.warning("onnxruntime lists CUDA but it did not start (no usable GPU or CUDA/cuDNN libraries "
                            "missing): running on CPU")
                providers = [CPU]  # CUDA will not start for the next graph either
        try:
            vocab = Vocab.from_json((directory / manifest.vocab).read_text(encoding="utf-8"))
        except ValueError as e:
            raise ArtifactError(f"vocabulary of {directory} is invalid: {e}") from e
        return cls(directory, manifest, vocab, sessions)

    # -- tasks --------------------------------------------------------------------------------------
    def has_task(self, name: str) -> bool:
        return name in self.manifest.tasks

    def graph(self, name: str) -> ort.InferenceSession:
        try:
            return self.sessions[name]
        except KeyError:
            raise ArtifactError(f"artifacts version {self.version} has no graph {name!r}") from None

    def encode(self, video: np.ndarray | None, tokens: list[list[int]] | None) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) [B, Nz] from video [B,T,H,W,3] in [0,1] and/or word ids; the graph (v, s or vs)
        is chosen by which inputs are given, so an absent input costs nothing."""
        feed: dict[str, np.ndarray] = {}
        if video is not None:
            feed["video"] = self._check_video(video)
        if tokens is not None:
            feed["tokens"], feed["lengths"] = pad_tokens(tokens)
            if feed["tokens"].min() < 0 or feed["tokens"].max() >= len(self.vocab):
                raise ValueError(f"token ids must lie in [0, {len(self.vocab)})")
        if not feed:
            raise ValueError("encode needs video, tokens, or both")
        if video is not None and tokens is not None and len(feed["video"]) != len(feed["tokens"]):
            raise ValueError(f"video batch {len(feed['video'])} != tokens batch {len(feed['tokens'])}")
        key = key_of(video=video is not None, sentence=tokens is not None)
        mu, sigma = self.graph(encoder_graph(key)).run(list(ENCODER_OUTPUTS), feed)
        return mu, sigma

    def decode_sentence(self, z: np.ndarray, beam_size: int = 1, max_len: int | None = None) -> list[list[int]]:
        """Word ids per row of z (without <bos>/<eos>): greedy at beam 1, beam search above; all rows batched."""
        z = self._check_z(z)
        if len(z) == 0:
            return []
        max_len = resolve_max_len(max_len, self.config.max_words)
        return decode_with_graphs(self.graph(SENTENCE_INIT), self.graph(SENTENCE_STEP), z, beam_size, max_len)

    def decode_video(self, z: np.ndarray, first_frame: np.ndarray | None = None) -> np.ndarray:
        """Frames [B,T,H,W,3] in [0,1]; first_frame [B,H,W,3] seeds the decoder (zeros: sentence-to-video)."""
        return self._run_video_graph(VIDEO_DECODER, z, first_frame)

    def rebuild_video(self, z: np.ndarray, first_frame: np.ndarray) -> np.ndarray:
        """The familiarity score's rebuild of rows that all have a first frame: the model's rebuild graph where it has
        one (video-to-video's heads only, 0.6-0.75x decode_video's cost: bench/rebuild.py; over the decoder's own
        background where decode_video draws over the first frame's scene), else decode_video's frames."""
        return self._run_video_graph(VIDEO_REBUILD if VIDEO_REBUILD in self.sessions else VIDEO_DECODER, z,
                                     first_frame)

    def _run_video_graph(self, graph: str, z: np.ndarray, first_frame: np.ndarray | None) -> np.ndarray:
        z = self._check_z(z)
        cfg = self.config
        if first_frame is None:
            first_frame = np.zeros((len(z), cfg.height, cfg.width, 3), dtype=np.float32)
        first_frame = np.ascontiguousarray(first_frame, dtype=np.float32)
        if first_frame.shape != (len(z), cfg.height, cfg.width, 3):
            raise ValueError(f"first_frame must be {(len(z), cfg.height, cfg.width, 3)}, got {first_frame.shape}")
        return self.graph(graph).run(["frames"], {"z": z, "first_frame": first_frame})[0]

    def warmup(self) -> None:
        """One batch-1 call through every graph, so the first request does not pay for lazy initialisation."""
        cfg = self.config
        video = np.zeros((1, *self.video_shape()), dtype=np.float32)
        for key in INPUT_KEYS:
            if encoder_graph(key) in self.sessions:
                self.encode(video if has_video(key) else None, [[PAD_ID]] if has_sentence(key) else None)
        z = np.zeros((1, cfg.latent_dim), dtype=np.float32)
        self.decode_sentence(z, max_len=1)
        if VIDEO_DECODER in self.sessions:
            self.decode_video(z)
            self.rebuild_video(z, np.ones((1, cfg.height, cfg.width, 3), dtype=np.float32))

    # -- input checks -------------------------------------------------------------------------------
    def video_shape(self) -> tuple[int, ...]:
        return self.config.video_shape

    def _check_video(self, video: np.ndarray) -> np.ndarray:
        video = np.ascontiguousarray(video, dtype=np.float32)
        expected = self.video_shape()
        features = self.config.video_input == "features"
        ok = video.ndim == len(expected) + 1 and (video.shape[2:] == expected[1:] if features
                                                  else video.shape[1:] == expected)
        if not ok:
            raise ValueError(f"video must be [B, {', '.join(map(str, expected))}], got {list(video.shape)}")
        return video

    def _check_z(self, z: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must be [B, {self.config.latent_dim}], got {list(z.shape)}")
        return z

