"""One exported version's graphs on the CPU, run as the service runs them (z = mu, greedy captions): what the release
gate (export/gate.py) and the familiarity recalibration (export/calibrate.py) read a version through when its
checkpoint may not be at hand. Sessions open on first use, so a caller pays only for the graphs it runs."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from core.familiarity import Calibration
from core.graph_contract import SENTENCE_INIT, SENTENCE_STEP, VIDEO_DECODER, VIDEO_REBUILD, decode_length, encoder_graph
from core.manifest import Manifest, resolve_version_dir
from core.search import decode_with_graphs
from core.vocab import Vocab, pad_tokens
from export.parity import open_cpu_session

BATCH = 64


@dataclass
class GraphModel:
    directory: Path
    manifest: Manifest
    _sessions: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, root: Path, version: str | None) -> GraphModel:
        """The version folder's graphs, its files checked against the manifest's sha256s."""
        directory = resolve_version_dir(root, version)
        manifest = Manifest.read(directory)
        manifest.verify_files(directory)
        return cls(directory, manifest)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def calibration(self) -> Calibration | None:
        return self.manifest.familiarity

    @cached_property
    def vocab(self) -> Vocab:
        return Vocab.load(self.directory / self.manifest.vocab)

    def session(self, graph: str) -> Any:
        if graph not in self._sessions:
            self._sessions[graph] = open_cpu_session(self.directory / self.manifest.graphs[graph].file)
        return self._sessions[graph]

    def video_mu(self, video: np.ndarray) -> np.ndarray:
        enc = self.session(encoder_graph("v"))
        return np.concatenate([enc.run(["mu"], {"video": np.ascontiguousarray(video[i:i + BATCH], np.float32)})[0]
                               for i in range(0, len(video), BATCH)])

    def sentence_mu(self, sentences: Sequence[str]) -> np.ndarray:
        enc, cap = self.session(encoder_graph("s")), self.manifest.model.max_words
        parts = []
        for i in range(0, len(sentences), BATCH):
            tokens, lengths = pad_tokens([self.vocab.encode(s, cap) for s in sentences[i:i + BATCH]])
            parts.append(enc.run(["mu"], {"tokens": tokens, "lengths": lengths})[0])
        return np.concatenate(parts)

    def captions(self, mu: np.ndarray) -> list[str]:
        init, step = self.session(SENTENCE_INIT), self.session(SENTENCE_STEP)
        max_len = decode_length(self.manifest.model.max_words)
        out: list[str] = []
        for i in range(0, len(mu), BATCH):
            out += [self.vocab.decode(ids) for ids in decode_with_graphs(init, step, mu[i:i + BATCH], 1, max_len)]
        return out

    def frames(self, mu: np.ndarray, first: np.ndarray, graph: str = VIDEO_DECODER) -> np.ndarray:
        """The video decoder from z = mu and a first frame per clip (zeros: sentence-to-video)."""
        dec = self.session(graph)
        return np.concatenate([dec.run(["frames"], {"z": mu[i:i + BATCH],
                                                    "first_frame": np.ascontiguousarray(first[i:i + BATCH])})[0]
                               for i in range(0, len(mu), BATCH)])

    @property
    def rebuild_graph(self) -> str:
        """The graph the familiarity score rebuilds clips with: the rebuild graph where the version has one."""
        return VIDEO_REBUILD if VIDEO_REBUILD in self.manifest.graphs else VIDEO_DECODER

    def rebuild(self, video: np.ndarray) -> np.ndarray:
        """Clips [N,T,H,W,3] in [0, 1] rebuilt as the service does for familiarity: from their mu and first frame."""
        video = np.asarray(video, np.float32)
        return self.frames(self.video_mu(video), video[:, 0], self.rebuild_graph)
