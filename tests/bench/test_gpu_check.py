"""`make gpu-check` without a GPU: the script's dry run goes through every stage on the CPU (tiny preset), writes
its report and exits 0; without CUDA and without --dry-run it refuses with a report that says why."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import gpu_check
from model.precision import precisions_on


def test_dry_run_goes_through_every_stage_and_reports(tmp_path: Path) -> None:
    rc = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--validate-clips", "8",
                         "--variant", "nokl:lambda_kl=0"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert rc == 0, report["failures"]
    assert report["failures"] == [] and report["dry_run"] is True
    assert {"environment", "corpus", "throughput", "train", "export", "validation"} <= set(report["stage_seconds"])
    precisions = precisions_on(torch.device("cpu"))  # bf16 only where oneDNN has it
    assert [(row["batch"], row["precision"]) for row in report["throughput"]] == [
        (batch, p) for batch in (32, 128) for p in precisions]
    assert set(report["train"]) == {"main", "nokl"} and report["train"]["nokl"]["sets"] == ["lambda_kl=0"]
    assert all(r["rc"] == 0 and r["steps_done"] > 0 for r in report["train"].values())
    assert report["export"]["rc"] == 0 and report["export"]["parity"]["greedy_captions_equal"] is True
    assert set(report["export"]["check"]) == {"colour", "shape", "motion", "all"}
    assert set(report["validation"]["main"]) >= {"caption"}
    assert "engine_cuda" in report


def test_without_cuda_it_refuses_and_says_why(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal is for machines without one")
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert any("no CUDA device" in f for f in report["failures"])


@pytest.mark.parametrize("spec", ["noname", "main:lambda_kl=0", "x:"])
def test_malformed_variants_are_refused(spec: str) -> None:
    with pytest.raises(SystemExit):
        gpu_check.parse_variants([spec])
