"""What bench.load sends: one request body per endpoint (a multipart upload or a JSON sentence), with where wrk's
Lua script rewrites bytes to make each request new (a cache miss), and the served model's words for sentences."""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.manifest import VOCAB, ArtifactError, resolve_version_dir
from core.vocab import Vocab

BOUNDARY = "----slrbenchboundary7f3a9c"
X264_TEXT = b"videolan.org"  # inside the x264 encoder-info SEI of every libx264 stream: decoders ignore it
FALLBACK_WORDS = ("a", "the", "red", "green", "blue", "yellow", "circle", "square", "triangle", "moves", "left",
                  "right", "up", "down", "grows", "shrinks", "bounces", "slowly", "quickly", "small", "big")


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, int]:
    """A multipart/form-data body and the offset of the file's first byte in it."""
    parts = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                     for k, v in fields.items())
    head = parts + (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode(), len(head)


@dataclass
class Target:
    """One benchmarked endpoint: path, body file, content type and how post.lua varies the body."""

    name: str
    path: str
    body_file: Path
    content_type: str
    mode: str  # same | tag | words
    offset: int = 0
    length: int = 0
    prime: bool = False  # send one request first (the cache-hit endpoints)

    def lua_args(self, nonce: str, words_file: Path, n_words: int) -> list[str]:
        if self.mode == "same":
            return [str(self.body_file), self.content_type, "same"]
        if self.mode == "tag":
            return [str(self.body_file), self.content_type, "tag", str(self.offset), str(self.length), nonce]
        return [str(self.body_file), self.content_type, "words", str(self.offset), str(self.length), str(words_file),
                str(n_words)]


def build_targets(workdir: Path, clip: bytes) -> dict[str, Target]:
    tag_at = clip.find(X264_TEXT)
    if tag_at < 0:
        raise SystemExit("the benchmark clip has no x264 encoder-info text to vary; is PyAV's libx264 missing?")
    form = f"multipart/form-data; boundary={BOUNDARY}"
    targets: dict[str, Target] = {}

    def video_target(name: str, path: str, mode: str, fields: dict[str, str] | None = None) -> None:
        body, start = multipart(fields or {}, "video", "clip.mp4", clip)
        f = workdir / f"{name}.body"
        f.write_bytes(body)
        targets[name] = Target(name, path, f, form, mode, start + tag_at, len(X264_TEXT), prime=mode == "same")

    def json_target(name: str, path: str, body: dict[str, Any]) -> None:
        placeholder = "@" * 16
        text = json.dumps({"sentence": placeholder, **body}).encode()
        f = workdir / f"{name}.body"
        f.write_bytes(text)
        targets[name] = Target(name, path, f, "application/json", "words", text.index(placeholder.encode()),
                               len(placeholder))

    video_target("encode_miss", "/encode", "tag")
    video_target("encode_hit", "/encode", "same")
    video_target("caption", "/caption", "tag")
    video_target("caption_hit", "/caption", "same")
    json_target("paraphrase", "/paraphrase", {})
    video_target("reconstruct", "/reconstruct", "tag")
    json_target("sentence_to_video", "/sentence-to-video", {})
    return targets


def vocabulary_words(artifacts: Path | None) -> list[str]:
    """Real words of the served model (so sentences are not all <unk>, which would share one cache entry)."""
    if artifacts is not None:
        with contextlib.suppress(ArtifactError, OSError, ValueError):
            vocab = Vocab.load(resolve_version_dir(artifacts, None) / VOCAB)
            words = [w for w in vocab.words if w.isalpha()]
            if len(words) >= 10:
                return words
    return list(FALLBACK_WORDS)
