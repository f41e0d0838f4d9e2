"""Own videos end to end (issue 34): a folder of real mp4 / webm files in the plain layout, prepared, trained with the
tiny preset, evaluated (BLEU, contact sheet), exported with familiarity calibrated on its validation split, served,
and one upload captioned over HTTP in the words of its own captions."""
from __future__ import annotations

import json
from pathlib import Path

import httpx

from bench.support import encode_clip, write_video_folder
from cli.main import main as slr
from core.manifest import Manifest, resolve_version_dir
from core.vocab import tokenize
from model.data.synthetic import generate
from tests.service_fixtures import uvicorn_server


def test_a_folder_of_videos_becomes_a_served_model(tmp_path: Path, redis_url: str) -> None:
    corpus = generate(30, seed=5, frames=8, height=48, width=64, captions_per_clip=4)
    clips = [(f"{split}{i}", c.frames, c.captions, split)
             for split in ("train", "val", "test") for i, c in enumerate(corpus.splits[split])]
    write_video_folder(tmp_path / "mine", "plain", clips, ("mp4", "webm"))
    store, run, art = tmp_path / "store", tmp_path / "run", tmp_path / "art"
    assert slr(["data", "prepare", str(tmp_path / "mine"), "--out", str(store), "--preset", "tiny",
                "--workers", "1"]) == 0
    assert slr(["train", "--data", "store", "--data-dir", str(store), "--preset", "tiny", "--out", str(run),
                "--threads", "1", "--min-count", "1"]) == 0
    assert slr(["eval", str(run), "--no-meteor", "--sheet", str(tmp_path / "sheet.png")]) == 0
    assert "BLEU@4" in json.loads((run / "eval_test.json").read_text())["caption"]
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert slr(["export", str(run), "--out", str(art)]) == 0
    manifest = Manifest.read(resolve_version_dir(art, None))
    n_val = len(corpus.splits["val"])
    assert manifest.familiarity is not None and manifest.familiarity.source == f"{n_val} validation clips"
    upload = encode_clip(corpus.splits["test"][0].frames, "mp4")
    with uvicorn_server({"SLR_ARTIFACTS": str(art), "SLR_REDIS_URL": redis_url}) as url:
        r = httpx.post(f"{url}/caption", files={"video": ("mine.mp4", upload, "video/mp4")}, timeout=60)
    assert r.status_code == 200, r.text
    words = set(json.loads((run / "vocab.json").read_text())["words"])
    assert set(tokenize(r.json()["caption"])) <= words and "familiarity" in r.json()
