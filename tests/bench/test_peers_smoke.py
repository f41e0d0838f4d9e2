"""bench/peers: BentoML and LitServe, each started briefly on the shipped model, caption the benchmark clip exactly
as star-slr does (same decode function, same graphs: the side-by-side compares servers, not work). The peers are
the optional extra `peers` (the Makefile's install has it); a peer that is not installed is skipped, by name."""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.load import start_server
from bench.peers.side_by_side import PEER_PACKAGE, caption_once, start_peer
from bench.support import make_clip

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "default"

# slow: three servers start (about 20 s on 2 cores); `make test` (CI) runs it, `make test-fast` leaves it out.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (SHIPPED / "latest").is_file(), reason="no shipped model in models/default")]


@pytest.fixture(scope="module")
def clip() -> bytes:
    return make_clip(16, 72, 128)


@pytest.fixture(scope="module")
def star_caption(clip: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """star-slr's caption of the clip, the service started as bench/load.py starts it (no Redis: its LRU)."""
    log = tmp_path_factory.mktemp("star") / "server.log"
    with start_server(SHIPPED, {"SLR_LOG_LEVEL": "warning", "SLR_REDIS_URL": ""}, log) as server:
        yield caption_once(server.url, clip)


@pytest.mark.parametrize("peer", ["bentoml", "litserve", "litserve-per-core", "litserve-per-core-score"])
def test_peer_captions_like_star_slr(peer: str, clip: bytes, star_caption: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(PEER_PACKAGE[peer]) is None:
        pytest.skip(f"{peer} is not installed: pip install -e '.[peers]' (the benchmark-only extra)")
    with start_peer(peer, SHIPPED, tmp_path / f"{peer}.log", timeout_s=120) as server:
        first = caption_once(server.url, clip)
        again = caption_once(server.url, clip)  # the second upload of the same bytes: the in-process cache's answer
    assert star_caption  # a real sentence, not empty
    assert first == star_caption, (peer, first, star_caption)
    assert again == first


def test_star_slr_per_core_serves_from_each_worker_like_one(clip: bytes, star_caption: str, tmp_path: Path) -> None:
    """The peers' star-slr-per-core variant: uvicorn's --workers, a serving process per core, answers alike."""
    from bench.peers.side_by_side import OWN_ARGS, OWN_VARIANTS

    env = {"SLR_LOG_LEVEL": "warning", "SLR_REDIS_URL": "", **OWN_VARIANTS["star-slr-per-core"]}
    with start_server(SHIPPED, env, tmp_path / "per-core.log", OWN_ARGS["star-slr-per-core"]) as server:
        captions = {caption_once(server.url, clip) for _ in range(4)}  # the workers take turns; each its own LRU
    assert captions == {star_caption}
