"""The PyTorch model run over a split in batches, from z = mu: captions, paraphrases, rebuilt clips and clips drawn
from sentences, and the true frames they are compared with (what the evaluation and the figures read)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from core.vocab import Vocab, pad_tokens
from model.data.corpus import Clip
from model.star import StarModel

EVAL_BATCH = 64


def _batches(items: Sequence[Any], size: int = EVAL_BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i: i + size]


def _video_tensor(clips: Sequence[Clip], model: StarModel) -> torch.Tensor:
    if model.cfg.video_input == "frames":
        return torch.from_numpy(np.stack([c.frames for c in clips])).float() / 255.0
    feats = [np.asarray(c.features, np.float32) for c in clips]
    return torch.from_numpy(np.stack([f[None] if f.ndim == 1 else f.mean(0, keepdims=True) for f in feats]))


def _token_tensors(sentences: Sequence[str], vocab: Vocab, max_words: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens, lengths = pad_tokens([vocab.encode(s, max_words) for s in sentences])
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


@torch.no_grad()
def caption_clips(model: StarModel, vocab: Vocab, clips: Sequence[Clip], beam_size: int = 1) -> list[str]:
    out: list[str] = []
    for chunk in _batches(clips):
        z = model.encode(video=_video_tensor(chunk, model)).mu
        out += [vocab.decode(ids) for ids in model.generate_sentences(z, beam_size)]
    return out


@torch.no_grad()
def paraphrase_sentences(model: StarModel, vocab: Vocab, sentences: Sequence[str], beam_size: int = 1) -> list[str]:
    out: list[str] = []
    for chunk in _batches(sentences):
        tokens, lengths = _token_tensors(chunk, vocab, model.cfg.max_words)
        z = model.encode(tokens=tokens, lengths=lengths).mu
        out += [vocab.decode(ids) for ids in model.generate_sentences(z, beam_size)]
    return out


@torch.no_grad()
def reconstruct_clips(model: StarModel, clips: Sequence[Clip]) -> np.ndarray:
    out = []
    for chunk in _batches(clips):
        video = _video_tensor(chunk, model)
        out.append(model.decode_video(model.encode(video=video).mu, video[:, 0]).numpy())
    return np.concatenate(out)


@torch.no_grad()
def sentences_to_video(model: StarModel, vocab: Vocab, sentences: Sequence[str]) -> np.ndarray:
    out = []
    for chunk in _batches(sentences):
        tokens, lengths = _token_tensors(chunk, vocab, model.cfg.max_words)
        out.append(model.decode_video(model.encode(tokens=tokens, lengths=lengths).mu).numpy())
    return np.concatenate(out)


def true_frames(clips: Sequence[Clip]) -> np.ndarray:
    """[N,T,H,W,3] float32 in [0, 1]: the clips' own frames, what the model's video is compared with."""
    return np.stack([c.frames for c in clips]).astype(np.float32) / 255.0


def single_object(clips: Sequence[Clip]) -> list[int]:
    """The rows of the clips that show one object (what the video probe reads)."""
    return [i for i, c in enumerate(clips) if len(c.attributes.get("objects", [None])) == 1]
