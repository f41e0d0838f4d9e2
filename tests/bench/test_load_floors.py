"""bench/load.py's floors without a server: cache-miss /caption as a share of the decode-only floor and of the
model's floor, counting the familiarity rebuild only where that mode's server scores it; and which servers score it,
read from the options."""
from __future__ import annotations

import pytest

from bench.load import Result, familiarity_scored, floor_shares, make_plan, parse_args, switch_values


def result(endpoint: str, mode: str, rps: float) -> Result:
    return Result(endpoint, mode, 8, 1.0, int(rps), rps, 1.0, 2.0, 3.0, 4.0, 0, 0)


def test_shares_of_both_floors_follow_each_modes_familiarity() -> None:
    decode = {"floor_clips_per_s": 400.0}
    model = {"familiarity_ms": {"batch_1": 2.0, "batch_8": 1.0},
             "without_familiarity": {"batch_1": {"floor_clips_per_s": 200.0}, "batch_8": {"floor_clips_per_s": 250.0}},
             "with_familiarity": {"batch_1": {"floor_clips_per_s": 100.0}, "batch_8": {"floor_clips_per_s": 125.0}}}
    rows = floor_shares([result("caption", "on", 50.0), result("caption", "off", 50.0), result("encode_miss", "on", 9)],
                        decode, model, {"on": True, "off": False})
    assert [(r["batching"], r["model_floor_counts_familiarity"]) for r in rows] == [("on", True), ("off", False)]
    on, off = rows
    assert on["share_of_floor"] == off["share_of_floor"] == pytest.approx(0.125)
    assert (on["share_of_model_floor_batch_1"], on["share_of_model_floor_batch_8"]) == (0.5, 0.4)
    assert (off["share_of_model_floor_batch_1"], off["share_of_model_floor_batch_8"]) == (0.25, 0.2)


def test_without_a_model_floor_only_the_decode_share_is_given() -> None:
    (row,) = floor_shares([result("caption", "", 100.0)], {"floor_clips_per_s": 400.0})
    assert row["share_of_floor"] == 0.25 and not any(k.startswith("share_of_model") for k in row)


def test_an_uncalibrated_model_floor_never_counts_familiarity() -> None:
    model = {"familiarity_ms": {"batch_1": None, "batch_8": None},
             "without_familiarity": {"batch_1": {"floor_clips_per_s": 200.0}, "batch_8": {"floor_clips_per_s": 200.0}},
             "with_familiarity": {"batch_1": {"floor_clips_per_s": 200.0}, "batch_8": {"floor_clips_per_s": 200.0}}}
    (row,) = floor_shares([result("caption", "on", 100.0)], {"floor_clips_per_s": 400.0}, model, {"on": True})
    assert row["model_floor_counts_familiarity"] is False and row["share_of_model_floor_batch_1"] == 0.5


def scored(*argv: str) -> dict[str, bool]:
    args = parse_args(list(argv))
    return familiarity_scored(make_plan(args), args.switch)


def test_familiarity_is_scored_unless_a_setting_or_the_switch_turns_it_off() -> None:
    assert scored("--artifacts", "a") == {"on": True, "off": True}
    assert scored("--artifacts", "a", "--switch", "SLR_FAMILIARITY") == {"on": True, "off": False}
    assert scored("--artifacts", "a", "--env", "SLR_FAMILIARITY=off") == {"on": False, "off": False}
    assert scored("--url", "http://127.0.0.1:1") == {"": True}  # a given URL: one mode, as it is configured


def test_an_unknown_endpoint_is_refused_before_any_load() -> None:
    with pytest.raises(SystemExit, match="unknown endpoints"):
        make_plan(parse_args(["--url", "http://127.0.0.1:1", "--endpoints", "caption,captions"]))


def test_the_switch_is_a_boolean_setting_or_any_setting_with_two_values() -> None:
    assert switch_values("SLR_FAMILIARITY") == ("SLR_FAMILIARITY", "true", "false")
    assert switch_values("SLR_MMAP_THRESHOLD_KIB=4096,128") == ("SLR_MMAP_THRESHOLD_KIB", "4096", "128")
