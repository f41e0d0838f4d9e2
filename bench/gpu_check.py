"""`make gpu-check`: the one prepared command for a machine with a CUDA GPU (rarely at hand, and for minutes).

    python -m bench.gpu_check --out gpu-check [--budget 270] [--variant NAME:NAME=VALUE,...]
    python -m bench.gpu_check --dry-run --out /tmp/gpu-check     # the same steps on the CPU, tiny preset (the suite)

With only the checkout and a torch install it:
1. prints torch / CUDA / onnxruntime and its execution providers;
2. measures training throughput at batch 32 and 128 (learning rate scaled by sqrt(batch / 32)), each in fp32 and
   under bf16 autocast (model/precision.py), for the same wall time each: steps/s, clips/s and the mean loss of
   the last steps (a larger batch or a lower precision pays only if its loss at equal time is no worse); `--variant
   bf16:precision=bf16` trains a whole run so, beside the preset's;
3. generates the preset's synthetic corpus and trains the preset on the GPU under a time budget (`slr train
   --device cuda --time-budget`), with any `--variant` (the preset with some fields set, e.g. an ablation) trained
   beside it in its own process: a 3.9 M-parameter model at batch 32 is launch-bound and leaves the GPU mostly idle;
4. exports the main run with `--check` (parity against PyTorch, then the check figures through the ONNX engine);
5. validates every run on the test split (caption attributes; the video probe's colour, shape and motion);
6. where onnxruntime has CUDAExecutionProvider, times the engine on it beside the CPU, with parity;
and writes one JSON report (`<out>/report.json`), exiting non-zero on any failure.
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict[str, Any]:
    """What this machine runs: torch and its CUDA, the GPU, onnxruntime and its providers."""
    import numpy as np
    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                           "cuda_available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["ort_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
        env["ort_providers"] = []
    try:
        import av

        env["pyav"] = av.__version__
    except ImportError:
        env["pyav"] = None  # no codec round trips at data time: the corpus is drawn without them
    return env


def throughput(corpus: Any, preset_name: str, device: str, batch_sizes: tuple[int, ...], seconds: float
               ) -> list[dict]:
    """Training steps of the preset's model at each batch size and training precision the device runs
    (model/precision.py: bf16 on a GPU, or on a CPU with oneDNN's bfloat16) for the same wall time: steps/s, clips/s,
    and the mean loss of the last 20 steps."""
    import torch

    from core.config import preset
    from core.vocab import Vocab
    from model.data.dataset import BatchStream, tensorize
    from model.losses import star_losses, total_loss
    from model.precision import autocast, precisions_on, prepare_module
    from model.star import StarModel
    from model.train import model_config_for

    p = preset(preset_name)
    clips = corpus.splits["train"][:4096]
    vocab = Vocab.build(c for clip in clips for c in clip.captions)
    cfg = model_config_for(corpus, p.model, vocab)
    data = tensorize(clips, vocab, cfg)
    rows, torch_device = [], torch.device(device)
    for batch, precision in itertools.product(batch_sizes, precisions_on(torch_device)):
        torch.manual_seed(0)
        model = StarModel(cfg).to(device).train()
        prepare_module(model, precision)
        lr = p.train.lr * (batch / 32) ** 0.5
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        stream = BatchStream(data, batch, seed=0)
        ones = torch.ones(min(batch, len(data)), device=device)
        losses, steps, start = [], 0, None
        while True:
            b = {k: v.to(device, non_blocking=True) for k, v in stream.next().items()}
            with autocast(precision, torch_device):
                loss = total_loss(star_losses(model, b, ones, ones), p.train, p.train.lambda_kl)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), p.train.grad_clip)
            opt.step()
            losses.append(loss.detach())
            if start is None:  # the first step pays for kernels' first launch and the allocator
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                continue
            steps += 1
            if time.perf_counter() - start >= seconds:
                break
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        tail = torch.stack(losses[-20:]).float().mean().item()
        rows.append({"batch": batch, "precision": precision, "lr": lr, "steps": steps, "seconds": round(elapsed, 2),
                     "steps_per_s": round(steps / elapsed, 2), "clips_per_s": round(steps * batch / elapsed, 1),
                     "loss_last20": round(tail, 3)})
        print(f"throughput batch {batch} {precision}: {rows[-1]}", flush=True)
    return rows


def slr(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def train_runs(out: Path, corpus_dir: Path, preset_name: str, device: str, budget: float,
               variants: dict[str, list[str]], threads: int) -> dict[str, dict]:
    """The preset (run "main") and each variant trained at once, each in its own process under the same budget and
    with `threads` CPU threads (measured on an H200 with 16 cores: three runs at torch's default of one thread per
    core ran 1-2 steps/s each, against 23 steps/s for one process's bare training step)."""
    procs = {}
    for name, sets in {"main": [], **variants}.items():
        cmd = slr("train", "--data", "synthetic", "--data-dir", str(corpus_dir), "--preset", preset_name,
                  "--out", str(out / "runs" / name), "--device", device, "--time-budget", str(budget),
                  "--threads", str(threads),
                  *(a for s in sets for a in ("--set", s)))
        log = open(out / f"train_{name}.log", "w")
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), time.perf_counter(), log)
    results = {}
    for name, (proc, start, log) in procs.items():
        rc = proc.wait()
        log.close()
        run = out / "runs" / name
        steps, seconds = _last_step(run), round(time.perf_counter() - start, 1)
        results[name] = {"rc": rc, "seconds": seconds, "sets": variants.get(name, []), "steps_done": steps,
                         "steps_per_s_overall": round(steps / max(budget, 1e-9), 2)}
        print(f"train {name}: {results[name]}", flush=True)
    return results


def _last_step(run: Path) -> int:
    """The global step the run ended at (its last phase summary's)."""
    path = run / "train_log.jsonl"
    if not path.exists():
        return 0
    summaries = [json.loads(line)["summary"] for line in path.read_text().splitlines() if '"summary"' in line]
    return int(summaries[-1]["global_step"]) if summaries else 0


def validate(run: Path, corpus: Any, clips: int) -> dict[str, Any]:
    """Caption attributes and the video probe (colour, shape, motion) of a run on the first test clips."""
    from model.checkpoint import load_checkpoint
    from model.evaluate import validation_figures

    ckpt = load_checkpoint(run / "checkpoint.pt")
    figures = validation_figures(ckpt.model, ckpt.vocab, corpus.splits["test"][:clips],
                                 ("caption", "reconstruct", "sentence_to_video"))
    return {task: {k: round(v, 4) for k, v in f.items()} for task, f in figures.items()}


def export_check(run: Path, artifacts: Path) -> dict[str, Any]:
    proc = subprocess.run(slr("export", str(run), "--out", str(artifacts), "--version", "gpu-check", "--check"),
                          cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout[-2000:], proc.stderr[-2000:], flush=True)
    result: dict[str, Any] = {"rc": proc.returncode}
    manifest = artifacts / "gpu-check" / "manifest.json"
    if manifest.exists():
        result["parity"] = json.loads(manifest.read_text()).get("parity")
    check = artifacts / "check.json"
    if check.exists():
        result["check"] = json.loads(check.read_text()).get("caption_attributes")
    return result


def engine_on_cuda(artifacts: Path, clips: Any) -> dict[str, Any]:
    """The ONNX engine on CUDAExecutionProvider beside the CPU: encoder latency at batch 1 and 8, and parity."""
    import numpy as np

    from service.engine import Engine

    video = np.stack([c.frames for c in clips[:8]]).astype(np.float32) / 255.0
    out: dict[str, Any] = {}
    results = {}
    for provider, device in (("CPUExecutionProvider", "cpu"), ("CUDAExecutionProvider", "cuda")):
        engine = Engine.load(artifacts, device=device)
        out[f"{provider}_in_use"] = sorted({p for ps in engine.providers.values() for p in ps})
        mu, _ = engine.encode(video, None)
        results[provider] = mu
        row = {}
        for batch in (1, 8):
            engine.encode(video[:batch], None)
            start = time.perf_counter()
            for _ in range(20):
                engine.encode(video[:batch], None)
            row[f"encode_ms_b{batch}"] = round((time.perf_counter() - start) / 20 * 1000, 3)
        out[provider] = row
    out["max_abs_diff_mu"] = float(np.abs(results["CPUExecutionProvider"] - results["CUDAExecutionProvider"]).max())
    return out


def parse_variants(specs: list[str]) -> dict[str, list[str]]:
    """`NAME:field=value,field=value` -> {NAME: ["field=value", ...]}."""
    variants = {}
    for spec in specs:
        name, _, sets = spec.partition(":")
        if not name or name == "main" or not sets:
            raise SystemExit(f"--variant {spec!r}: expected NAME:field=value[,field=value...] (NAME not 'main')")
        variants[name] = sets.split(",")
    return variants


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the corpus, runs, artifacts and report.json")
    ap.add_argument("--preset", default="quality")
    ap.add_argument("--budget", type=float, default=270.0, help="training seconds per run (all phases)")
    ap.add_argument("--throughput-seconds", type=float, default=15.0)
    ap.add_argument("--validate-clips", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=4, help="CPU threads per training process")
    ap.add_argument("--variant", action="append", default=[], help="NAME:field=value,... trained beside the preset")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny preset, seconds: checks the script itself")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.dry_run else "cuda"
    preset_name = "tiny" if args.dry_run else args.preset
    budget = min(args.budget, 10.0) if args.dry_run else args.budget
    seconds = min(args.throughput_seconds, 1.0) if args.dry_run else args.throughput_seconds
    report: dict[str, Any] = {"dry_run": args.dry_run, "preset": preset_name, "budget_s": budget, "failures": []}
    started = time.perf_counter()

    def stage(name: str, fn: Any) -> Any:
        t = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # a report with the failure beats no report: every stage is tried
            traceback.print_exc()
            report["failures"].append(f"{name}: {type(exc).__name__}: {exc}")
            value = None
        report.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - t, 1)
        report[name] = value
        (out / "report.json").write_text(json.dumps(report, indent=2))
        return value

    env = stage("environment", environment)
    print(json.dumps(env, indent=2), flush=True)
    if not args.dry_run and not (env or {}).get("cuda_available"):
        report["failures"].append("environment: torch sees no CUDA device")
        (out / "report.json").write_text(json.dumps(report, indent=2))
        print("no CUDA device: nothing to check (use --dry-run on a CPU)", file=sys.stderr)
        return 1
    corpus_dir = out / "corpus"
    codec = "0.2" if (env or {}).get("pyav") and not args.dry_run else "0"
    stage("corpus", lambda: subprocess.run(
        slr("data", "synth", "--preset", preset_name, "--codec-share", codec, "--seed", "0", "--out", str(corpus_dir)),
        cwd=ROOT, check=True, capture_output=True).returncode)
    from model.data.corpus import Corpus

    corpus = Corpus.load(corpus_dir) if corpus_dir.exists() else None
    if corpus is not None and seconds > 0:
        stage("throughput", lambda: throughput(corpus, preset_name, device, (32, 128), seconds))
    trained = stage("train", lambda: train_runs(out, corpus_dir, preset_name, device, budget,
                                                parse_variants(args.variant), args.threads))
    for name, result in (trained or {}).items():
        if result["rc"] != 0:
            report["failures"].append(f"train {name}: exit status {result['rc']} (see train_{name}.log)")
    main_run = out / "runs" / "main"
    exported = stage("export", lambda: export_check(main_run, out / "artifacts"))
    if exported and exported["rc"] != 0:
        report["failures"].append(f"export: exit status {exported['rc']}")
    if corpus is not None:
        stage("validation", lambda: {name: validate(out / "runs" / name, corpus, args.validate_clips)
                                     for name in (trained or {}) if (out / "runs" / name / "checkpoint.pt").exists()})
    if "CUDAExecutionProvider" in (env or {}).get("ort_providers", []) and corpus is not None:
        stage("engine_cuda", lambda: engine_on_cuda(out / "artifacts", corpus.splits["test"]))
    else:
        report["engine_cuda"] = "skipped: onnxruntime has no CUDAExecutionProvider here"
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("failures", "stage_seconds", "total_seconds")}, indent=2))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
