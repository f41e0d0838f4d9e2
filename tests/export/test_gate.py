"""The release gate (export/gate.py) on the tiny model: an equal version passes, a worse one is refused and `latest`
stays, a reason lets it through and is recorded; and the CLI says so with its exit status."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from cli.main import main
from core.manifest import Manifest
from core.vocab import EOS_ID
from export.gate import GateRefused, compare, release, run_gate
from export.onnx_export import export_run
from export.publish import read_latest
from model.checkpoint import load_checkpoint, save_checkpoint
from model.data.corpus import Corpus


@pytest.fixture(scope="module")
def clips(tiny_corpus):
    # The training clips: the tiny model has seen them, so it is right on some (its test split is 16 clips).
    return tiny_corpus.splits["train"][:96]


def one_word_checkpoint(run: Path, out: Path, word: str | None) -> Path:
    """The tiny checkpoint (which has learnt too little to name anything) with a sentence decoder that says one
    word over and over (`red`: right on the red clips, an eighth) or, with None, ends every sentence at once (right
    on none): a better and a worse model, exported and parity-checked like any other."""
    ckpt = load_checkpoint(run / "checkpoint.pt")
    with torch.no_grad():
        out_layer = ckpt.model.sentence_decoder.out
        out_layer.weight.zero_()
        out_layer.bias.fill_(-10.0)
        out_layer.bias[ckpt.vocab.id(word) if word else EOS_ID] = 10.0
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "checkpoint.pt", ckpt.model, ckpt.vocab, ckpt.train_config)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def root(tmp_path_factory, tiny_run, tiny_corpus) -> Path:
    root = tmp_path_factory.mktemp("gate")
    familiar = tiny_corpus.splits["val"] + tiny_corpus.splits["train"][:64]  # calibrates the familiarity score
    red = one_word_checkpoint(tiny_run, tmp_path_factory.mktemp("red"), "red")
    export_run(red, root, version="v1", calibration_clips=familiar)  # latest
    export_run(red, root, version="v1-again", update_latest=False, calibration_clips=familiar)
    export_run(one_word_checkpoint(tiny_run, tmp_path_factory.mktemp("mute"), None), root, version="v-mute",
               update_latest=False, calibration_clips=familiar)
    return root


def test_compare_pairs_figures_clip_by_clip() -> None:
    old = {"caption.shape": np.array([True] * 20 + [False] * 5), "only_old": np.array([True])}
    new = {"caption.shape": np.array([False] * 12 + [True] * 8 + [False] * 5)}
    (row,) = compare(old, new)
    assert (row.figure, row.n, row.lost, row.won) == ("caption.shape", 25, 12, 0)
    assert row.regressed


def test_an_equal_version_passes_and_is_recorded(root: Path, clips) -> None:
    result = run_gate(root, "v1-again", clips, [])
    figures = {c.figure for c in result.comparisons}
    assert {"caption.colour", "caption.shape", "caption.motion", "caption.all", "two_objects.first_clause",
            "sentence_to_video.shape", "sentence_to_video.clean", "reconstruct.colour", "familiarity.passes_one_object",
            "familiarity.flags_out_of_domain"} <= figures
    assert result.passed and all(c.lost == c.won == 0 for c in result.comparisons)
    assert next(c for c in result.comparisons if c.figure == "caption.colour").old > 0.05  # the red clips


def test_a_worse_version_is_refused_and_latest_stays(root: Path, clips) -> None:
    with pytest.raises(GateRefused, match="caption"):
        release(root, "v-mute", clips, [])
    assert read_latest(root) == "v1"
    assert Manifest.read(root / "v-mute").release is None


def test_the_cli_refuses_then_a_reason_overrides_and_is_kept(root: Path, tiny_corpus, clips, tmp_path,
                                                             capsys) -> None:
    data = tmp_path / "corpus"  # the clips the tiny model knows as the test split the gate compares on
    Corpus(tiny_corpus.name, tiny_corpus.video_input, {"test": list(clips)}).save(data)
    args = ["release", str(root), "--model-version", "v-mute", "--data-dir", str(data)]
    assert main([*args, "--outside", str(tmp_path / "none")]) == 2 and "no outside set" in capsys.readouterr().err
    assert main([*args, "--dry-run"]) == 3 and "would be refused" in capsys.readouterr().out
    assert main(args) == 3
    assert "regresses against v1" in capsys.readouterr().err and read_latest(root) == "v1"
    assert main([*args, "--reason", "a test of the override"]) == 0
    assert read_latest(root) == "v-mute"
    record = json.loads((root / "v-mute" / "manifest.json").read_text())["release"]
    assert record["override_reason"] == "a test of the override" and record["baseline"] == "v1"
    assert "caption.colour" in record["regressions"]
    assert readyz(root)["release_override"] == "a test of the override"


def readyz(root: Path) -> dict:
    """GET /readyz of the service on `root`, in process."""
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(artifacts=str(root), redis_url="", log_level="warning"))

    async def go() -> dict:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as c:
            return (await c.get("/readyz")).json()

    return asyncio.run(go())


def test_a_score_that_stops_flagging_the_out_of_domain_set_is_refused(root: Path, clips) -> None:
    """The same graphs with a calibration that lets every clip pass (threshold 0): no false alarm left, and the
    out-of-domain clips go unflagged: the gate pairs them clip by clip and refuses (recalibrating is no way around
    it)."""
    import dataclasses

    from export.calibrate import publish_copy

    manifest = Manifest.read(root / "v1-again")
    assert manifest.familiarity is not None
    blind = dataclasses.replace(manifest, familiarity=dataclasses.replace(manifest.familiarity, threshold=0.0))
    publish_copy(root, root / "v1-again", blind, "v-blind")
    result = run_gate(root, "v-blind", clips, [])
    ood = next(c for c in result.comparisons if c.figure == "familiarity.flags_out_of_domain")
    assert ood.n == 56 and ood.old >= 0.25 and ood.new == 0.0, ood
    assert result.regressions == ["familiarity.flags_out_of_domain"]


def test_each_version_is_read_once_into_the_outcome_cache(root: Path, clips, tmp_path, monkeypatch) -> None:
    """`slr release --outcome-cache`: a version's per-clip outcomes are kept under its key and read back on its next
    comparison; its release record does not change the key, and other clips or other reader code do."""
    from export import gate

    cache = tmp_path / "outcomes"
    first = run_gate(root, "v1-again", clips, [], baseline="v1", cache=cache)
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["v1", "v1"]  # v1 and v1-again, .npz each
    model = gate.GraphModel.open(root, "v1-again")
    key = gate.outcomes_key(model, clips, [])
    gate.record_release(root, first)  # the release record is written into the candidate's manifest
    assert gate.outcomes_key(gate.GraphModel.open(root, "v1-again"), clips, []) == key

    def unread(*_: object) -> dict:
        raise AssertionError("read anew")

    monkeypatch.setattr(gate, "outcomes", unread)
    again = run_gate(root, "v1-again", clips, [], baseline="v1", cache=cache)
    assert again.comparisons == first.comparisons
    with pytest.raises(AssertionError, match="read anew"):  # other clips: other outcomes
        run_gate(root, "v1-again", clips[:40], [], baseline="v1", cache=cache)
    monkeypatch.setattr(gate, "OUTCOME_READERS", (*gate.OUTCOME_READERS, "core.stats"))
    assert gate.outcomes_key(model, clips, []) != key  # the readers' code is part of the key
