"""Soak: N mixed requests at concurrency C against a real server; prints requests served, errors and RSS growth.

    python -m bench.soak --artifacts models/default                      # 10,000 requests at concurrency 64
    python -m bench.soak --artifacts DIR --requests 1000 --json          # the shorter soak the tests run
    python -m bench.soak --url http://127.0.0.1:8000 --pid 1234          # a server you started (RSS read by pid)

The load comes from Debian's `wrk` (a compiled client; a Python client would measure itself, see DESIGN.md
"Measuring a server on this machine") driven by a generated Lua script that cycles through a fixed mix:
paraphrase and sentence-to-video (JSON), encode/caption/reconstruct with real mp4 uploads or latent_ids
(multipart and form), /models and /healthz. Each wrk thread stops after its share of responses, so the count
is exact. Any status other than 200, and any socket error or timeout, is an error.

RSS is the server process's VmRSS: after a warm-up pass (the caches, the arena of every graph shape and the
allocator settle there), after the soak, and its peak during the soak, sampled every 0.2 s. The first two are read
once the server has been quiet for SETTLE_S: it gives its heaps' free pages back after a quiet second
(service/heap.py), so growth, (after - warm) / warm, counts what stays (a leak), not free memory the allocator holds
while requests keep coming (up to SLR_TRIM_THRESHOLD_KIB a heap); the RSS at the soak's last response is reported
too. Without --url the script starts its own redis-server (when installed) and uvicorn on free ports, and stops them
afterwards.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.support import (
    encode_clip,
    mib,
    moving_square_clip,
    redis_installed,
    redis_server,
    rss_kib,
    settle,
    uvicorn_server,
)

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("a", "the", "red", "blue", "green", "yellow", "square", "circle", "triangle", "moves", "slides", "left",
         "right", "up", "down", "to", "small", "big", "bounces", "quickly")

LUA = r"""
local dir = "%(dir)s"
local quota = %(quota)d
local reqs = {}
local threads = {}
counter, responses, errors, offset = 0, 0, {}, 0

local function slurp(name)
  local f = assert(io.open(dir .. "/" .. name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local index = slurp("index.tsv")
  for line in index:gmatch("[^\n]+") do
    local method, path, ctype, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
    local headers = {}
    if ctype ~= "" then headers["Content-Type"] = ctype end
    if "%(api_key)s" ~= "" then headers["X-API-Key"] = "%(api_key)s" end
    local b = nil
    if body ~= "" then b = slurp(body) end
    table.insert(reqs, wrk.format(method, path, headers, b))
  end
  offset = tid * 7919
end

function request()
  counter = counter + 1
  return reqs[((counter + offset) %% #reqs) + 1]
end

function response(status, headers, body)
  -- A response in flight when the thread reached its quota may still land before stop() takes effect: not counted.
  if responses >= quota then return end
  responses = responses + 1
  if status ~= 200 then
    local k = tostring(status)
    errors[k] = (errors[k] or 0) + 1
  end
  if responses == quota then
    -- wrk's main thread sleeps for the whole -d whatever the threads do: tell the driver, which sends SIGINT.
    local f = io.open(dir .. "/done." .. tid, "w")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total, bad, parts = 0, {}, {}
  for _, t in ipairs(threads) do
    total = total + t:get("responses")
    for k, v in pairs(t:get("errors")) do bad[k] = (bad[k] or 0) + v end
  end
  for k, v in pairs(bad) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local e = summary.errors
  io.write(string.format('SOAK {"responses": %%d, "statuses_not_200": {%%s}, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "timeout": %%d, "status_errors": %%d, "duration_s": %%.3f, "p50_ms": %%.2f, "p99_ms": %%.2f, ' ..
    '"max_ms": %%.2f}\n', total, table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout, e.status,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def settled_rss_kib(pid: int) -> int:
    """VmRSS once the server has been quiet long enough to give its heaps' free pages back."""
    settle()
    return rss_kib(pid)


def _clip(seed: int) -> bytes:
    return encode_clip(moving_square_clip(12, 48, 64, seed), "mp4")


def _multipart(fields: dict[str, str], file: bytes | None) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    if file is not None:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="clip.mp4"\r\n'
                  f"Content-Type: video/mp4\r\n\r\n".encode() + file + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def build_requests(base: str, directory: Path, api_key: str = "", n_clips: int = 24, n_sentences: int = 400,
                   seed: int = 0) -> int:
    """Write the request mix (index.tsv + bodies) into `directory`; returns how many distinct requests."""
    import httpx

    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]  # fresh inputs each run: a shared Redis may hold the last run's SLRs
    headers = {"X-API-Key": api_key} if api_key else {}
    clips = [_clip(seed * 1000 + i + int(run, 16) % 100_000) for i in range(n_clips)]
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n_sentences)]
    r = httpx.post(f"{base}/encode", files={"video": ("a.mp4", clips[0])}, headers=headers, timeout=60)
    r.raise_for_status()
    latent_ids = [r.json()["latent_id"]]
    r = httpx.post(f"{base}/encode", data={"sentence": sentences[0]}, headers=headers, timeout=60)
    r.raise_for_status()
    latent_ids.append(r.json()["latent_id"])
    rows: list[tuple[str, str, str, bytes | None]] = []
    for i in range(1000):
        kind = rng.choices(["paraphrase", "encode", "caption_upload", "caption_latent", "s2v", "reconstruct",
                            "models", "healthz"], weights=[25, 15, 10, 15, 10, 10, 5, 10])[0]
        s = rng.choice(sentences)
        if kind == "paraphrase":
            rows.append(("POST", "/paraphrase", "application/json",
                         json.dumps({"sentence": s, "num_alternatives": rng.randint(0, 3), "seed": i}).encode()))
        elif kind == "encode":
            rows.append(("POST", "/encode", *_multipart({"sentence": s} if rng.random() < 0.3 else {},
                                                        rng.choice(clips))))
        elif kind == "caption_upload":
            rows.append(("POST", "/caption", *_multipart({"num_captions": str(rng.randint(1, 3))},
                                                         rng.choice(clips))))
        elif kind == "caption_latent":
            rows.append(("POST", "/caption", "application/x-www-form-urlencoded",
                         f"latent_id={rng.choice(latent_ids)}&beam_size={rng.randint(1, 3)}".encode()))
        elif kind == "s2v":
            rows.append(("POST", "/sentence-to-video", "application/json",
                         json.dumps({"sentence": s, "scale": rng.randint(1, 4),
                                     "format": rng.choice(["gif", "json"])}).encode()))
        elif kind == "reconstruct":
            rows.append(("POST", "/reconstruct", "application/x-www-form-urlencoded",
                         f"latent_id={latent_ids[0]}&scale={rng.randint(1, 3)}".encode()))
        else:
            rows.append(("GET", f"/{kind}", "", None))
    with open(directory / "index.tsv", "w") as index:
        for i, (method, path, ctype, body) in enumerate(rows):
            name = ""
            if body is not None:
                name = f"body{i}"
                (directory / name).write_bytes(body)
            index.write(f"{method}\t{path}\t{ctype}\t{name}\n")
    return len(rows)


def run_wrk(base: str, directory: Path, requests: int, concurrency: int, threads: int, api_key: str = "",
            timeout_s: int = 30) -> dict:
    """One wrk pass of exactly `requests` responses (each thread stops after its share)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    threads = max(1, min(threads, concurrency))
    script = directory / "soak.lua"
    script.write_text(LUA % {"dir": str(directory), "quota": -(-requests // threads), "api_key": api_key})
    for old in directory.glob("done.*"):
        old.unlink()
    proc = subprocess.Popen([wrk, f"-t{threads}", f"-c{concurrency}", "-d3600s", f"--timeout={timeout_s}s",
                             "-s", str(script), base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Each thread drops a done file at its quota; wrk then only needs SIGINT to join them and print.
        while proc.poll() is None and len(list(directory.glob("done.*"))) < threads:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SOAK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    result = json.loads(line[5:])
    result["errors"] = sum(result["statuses_not_200"].values()) + sum(
        result[k] for k in ("connect", "read", "write", "timeout"))
    return result


@contextlib.contextmanager
def local_server(artifacts: Path, workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """A private redis-server (when installed) and uvicorn on free ports; yields (base URL, server pid)."""
    with contextlib.ExitStack() as stack:
        env = {"SLR_ARTIFACTS": str(artifacts), "SLR_LOG_LEVEL": "warning"}
        if redis_installed() and "SLR_REDIS_URL" not in (extra_env or {}):
            _, env["SLR_REDIS_URL"] = stack.enter_context(redis_server(directory=workdir,
                                                                         log_path=workdir / "redis.log"))
        env.update(extra_env or {})
        server = stack.enter_context(uvicorn_server(env, workdir / "server.log", timeout_s=120))
        yield server.url, server.pid


def soak(base: str, pid: int, requests: int, concurrency: int, threads: int, warmup: int, api_key: str = "",
         workdir: Path | None = None, clips: int = 24) -> dict:
    """Warm-up pass, then the soak; RSS before, after warm-up, peak during and after the soak."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(workdir or tmp)
        distinct = build_requests(base, directory, api_key, n_clips=clips)
        rss_start = rss_kib(pid)
        warm = run_wrk(base, directory, warmup, concurrency, threads, api_key) if warmup else None
        rss_warm = settled_rss_kib(pid)
        peak, stop = [rss_warm], threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                with contextlib.suppress(OSError, RuntimeError):
                    peak.append(rss_kib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = run_wrk(base, directory, requests, concurrency, threads, api_key)
        finally:
            stop.set()
            sampler.join()
        rss_busy_end = rss_kib(pid)
        rss_end = settled_rss_kib(pid)
    result.update(requests_asked=requests, concurrency=concurrency, wrk_threads=threads, distinct_requests=distinct,
                  warmup_requests=warmup, warmup_errors=warm["errors"] if warm else 0,
                  rss_start_mib=mib(rss_start), rss_after_warmup_mib=mib(rss_warm),
                  rss_peak_mib=mib(max(peak)), rss_last_response_mib=mib(rss_busy_end),
                  rss_end_mib=mib(rss_end),
                  rss_growth_pct=round(100.0 * (rss_end - rss_warm) / rss_warm, 2),
                  req_per_s=round(result["responses"] / result["duration_s"], 1) if result["duration_s"] else None)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", type=Path, help="artifacts root to serve (starts a server and a redis-server)")
    p.add_argument("--url", help="an already running server instead")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for RSS")
    p.add_argument("--api-key", default="")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--warmup", type=int, default=1000, help="requests before the RSS baseline")
    p.add_argument("--max-growth-pct", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if bool(args.url) == bool(args.artifacts):
        p.error("give either --artifacts or --url (with --pid)")
    if args.url and not args.pid:
        p.error("--url needs --pid (RSS is read from /proc/<pid>/status)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            result = soak(args.url, args.pid, args.requests, args.concurrency, args.threads, args.warmup,
                          args.api_key)
        else:
            extra = {"SLR_API_KEY": args.api_key} if args.api_key else {}
            with local_server(args.artifacts, Path(tmp), extra) as (base, pid):
                result = soak(base, pid, args.requests, args.concurrency, args.threads, args.warmup, args.api_key)
    ok = result["errors"] == 0 and result["warmup_errors"] == 0 and result["rss_growth_pct"] < args.max_growth_pct
    result["pass"] = ok
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"served {result['responses']} requests (after {result['warmup_requests']} warm-up) at concurrency "
              f"{result['concurrency']} in {result['duration_s']:.1f} s ({result['req_per_s']} req/s); "
              f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
        print(f"errors {result['errors']} (non-200 {result['statuses_not_200']}, socket connect/read/write/timeout "
              f"{result['connect']}/{result['read']}/{result['write']}/{result['timeout']})")
        print(f"RSS {result['rss_start_mib']} MiB at start, {result['rss_after_warmup_mib']} MiB after warm-up, "
              f"peak {result['rss_peak_mib']} MiB, {result['rss_last_response_mib']} MiB at the last response, "
              f"{result['rss_end_mib']} MiB at the end: "
              f"growth {result['rss_growth_pct']:+.2f}% (limit {args.max_growth_pct}%)")
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
