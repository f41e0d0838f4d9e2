"""The two floors bench.load sets its cache-miss /caption rate against, measured in the same run: PyAV decoding the
upload alone, and the model's own work per clip with the service's engine (decode, sample and scale, encoder_v,
greedy caption, and the familiarity rebuild the service adds to every cache miss)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bench.decode import decode_only, median_ms


def decode_floor(clip: bytes, repeat: int = 40) -> dict[str, float]:
    """What PyAV alone reaches on the benchmark clip: clips/s on one core, and on all of them (the ceiling of
    any cache-miss path, which must at least decode the upload)."""
    ms = median_ms(lambda: decode_only(clip), repeat)
    cores = os.cpu_count() or 1
    return {"decode_only_ms": round(ms, 2), "clips_per_s_per_core": round(1000 / ms, 1),
            "cores": cores, "floor_clips_per_s": round(cores * 1000 / ms, 1)}


def model_floor(clip: bytes, artifacts: Path, repeat: int = 40, batch: int = 8,
                version: str | None = None) -> dict[str, Any]:
    """The model's own work on one cache-miss /caption, measured here with the service's engine (one intra-op
    thread, as served): the upload made the model's input (`core.media.prepare_upload`: decode, sample, scale),
    encoder_v, greedy captioning, and the familiarity score's rebuild (the video decoder and the signals; the
    service computes it on every cache miss of a calibrated model unless SLR_FAMILIARITY=false). Per clip at batch 1
    and at `batch` (the service's SLR_MAX_ENCODE_BATCH: what its batcher can reach under load); clips/s on all cores,
    as for the decode-only floor."""
    from core.media import MediaLimits, prepare_upload
    from service.engine import Engine

    engine = Engine.load(artifacts, version, device="cpu", intra_op_threads=1)
    cfg, limits = engine.config, MediaLimits()
    calibration = engine.manifest.familiarity
    prepare = median_ms(lambda: prepare_upload(clip, cfg, limits), repeat)
    prepared = prepare_upload(clip, cfg, limits)
    one = prepared.array[None]
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {"version": engine.version, "precision": engine.manifest.precision,
                              "prepare_ms": round(prepare, 3), "cores": cores, "encode_ms": {}, "caption_ms": {},
                              "familiarity_ms": {}, "without_familiarity": {}, "with_familiarity": {}}
    for n in (1, batch):
        video = np.repeat(one, n, axis=0)
        mu, _ = engine.encode(video, None)
        encode = median_ms(lambda: engine.encode(video, None), repeat) / n
        caption = median_ms(lambda: engine.decode_sentence(mu), repeat) / n
        familiarity = None
        if calibration is not None and engine.has_task("reconstruct"):
            def score() -> Any:
                rebuilt = engine.rebuild_video(mu, video[:, 0])
                return calibration.score(video, rebuilt, [prepared.box] * n)

            familiarity = median_ms(score, repeat) / n
        key = f"batch_{1 if n == 1 else 8}"
        report["encode_ms"][key], report["caption_ms"][key] = round(encode, 3), round(caption, 3)
        report["familiarity_ms"][key] = None if familiarity is None else round(familiarity, 3)
        for total_key, total in (("without_familiarity", prepare + encode + caption),
                                 ("with_familiarity", prepare + encode + caption + (familiarity or 0.0))):
            ms = round(total, 3)  # the rate from the ms reported, so that the two agree to the digits shown
            report[total_key][key] = {"ms": ms, "floor_clips_per_s": round(cores * 1000 / ms, 1)}
    return report


def model_floor_lines(model: dict[str, Any]) -> list[str]:
    """The model's floor per clip: its parts at batch 1 and 8, then the totals with and without familiarity."""
    fam = model["familiarity_ms"]
    lines = [f"model floor ({model['version']}, one intra-op thread): prepare_upload {model['prepare_ms']} ms + "
             f"encoder_v {model['encode_ms']['batch_1']} + greedy caption {model['caption_ms']['batch_1']}"
             + (f" + familiarity rebuild {fam['batch_1']}" if fam["batch_1"] is not None else "")
             + f" ms per clip at batch 1 (at batch 8: encoder_v {model['encode_ms']['batch_8']}, caption "
             f"{model['caption_ms']['batch_8']}" + (f", rebuild {fam['batch_8']}" if fam["batch_8"] is not None else "")
             + " ms per clip)"]
    for key in ("without_familiarity", "with_familiarity"):
        if key == "with_familiarity" and fam["batch_1"] is None:
            continue
        f1, f8 = model[key]["batch_1"], model[key]["batch_8"]
        lines.append(f"  {key.replace('_', ' ')}: {f1['ms']} ms per clip, {f1['floor_clips_per_s']} clips/s on "
                     f"{model['cores']} cores at batch 1; {f8['ms']} ms, {f8['floor_clips_per_s']} clips/s at batch 8")
    return lines


def floor_share_line(row: dict[str, Any]) -> str:
    """One row of floor_shares in words."""
    line = (f"  cache-miss /caption c={row['concurrency']} batching {row['batching'] or '-'}: {row['rps']} req/s = "
            f"{100 * row['share_of_floor']:.0f}% of the decode-only floor")
    if "share_of_model_floor_batch_1" in row:
        line += (f", {100 * row['share_of_model_floor_batch_1']:.0f}% / "
                 f"{100 * row['share_of_model_floor_batch_8']:.0f}% of the model floor at batch 1 / 8"
                 f" ({'with' if row['model_floor_counts_familiarity'] else 'without'} familiarity)")
    return line + f", p99 {row['p99_ms']} ms"
