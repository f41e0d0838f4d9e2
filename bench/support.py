"""What the tests and the benches share, and nothing they measure: clips and real files of them, the service and a
private redis-server as processes, stopping a process the way an orchestrator does (SIGTERM, a grace period, then
SIGKILL), and plain HTTP calls.

Standard library, numpy and (lazily, for the files) imageio + PyAV only: importing it loads none of the rooms, so a
test that starts the service in a process keeps torch and the service's modules out of its own (an import-linter
contract in pyproject.toml).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
UVICORN = (sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app")


def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS picks it), for a server a test or bench starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip_shape(text: str) -> tuple[int, int, int]:
    """A benchmark clip's FRAMESxHEIGHTxWIDTH (as `16x72x128`) as (frames, height, width)."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"clip shape {text!r}: want FRAMESxHEIGHTxWIDTH, e.g. 16x72x128")
    frames, height, width = (int(p) for p in parts)
    return frames, height, width


def stop_process(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _exited(proc: subprocess.Popen | None, what: str) -> None:
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{what}: the process exited with {proc.returncode}")


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout_s: float = 10.0) -> None:
    """Until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + timeout_s
    while True:
        _exited(proc, f"waiting for port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")
        time.sleep(0.02)


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout_s: float = 60.0) -> float:
    """Until GET url answers 200; returns the seconds it took. RuntimeError if `proc` exits first."""
    start = time.monotonic()
    while True:
        _exited(proc, f"waiting for {url}")
        with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.01)


# ---------------------------------------------------------------- a server's processes and memory

def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (which may hold spaces), the state first; [] for a process
    that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2:].split()


def process_state(pid: int) -> str:
    """The one-letter state of a process (R running, S sleeping, T stopped, ...); "" for one gone."""
    fields = proc_stat(pid)
    return fields[0] if fields else ""


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(ValueError, IndexError):
            children.setdefault(int(proc_stat(int(d.name))[1]), []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid: int, tree: bool = False) -> int:
    """VmRSS of a process (with `tree`, summed over it and its descendants: a server's decode workers), in KiB; 0
    for a process that is gone."""
    total = 0
    for p in process_tree(pid) if tree else [pid]:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


# star-slr gives its heaps' free pages back once it has been quiet for a tick (service/heap.py trim_periodically: 1 s),
# in a thread: RSS read SETTLE_S after the last request (two ticks and the trim's own time) counts what stays, not the
# free memory a heap keeps while requests keep coming (up to SLR_TRIM_THRESHOLD_KIB).
SETTLE_S = 2.5


def settle() -> None:
    """Wait until a server that has just answered its last request has trimmed its heaps."""
    time.sleep(SETTLE_S)


# ---------------------------------------------------------------- redis-server

def redis_installed() -> bool:
    return shutil.which("redis-server") is not None


def start_redis(port: int, directory: str | Path, extra_args: Sequence[str] = (),
                log_path: Path | None = None) -> subprocess.Popen:
    """redis-server on 127.0.0.1:port without persistence, returned once it accepts connections (stop it with
    stop_process). FileNotFoundError when redis-server is not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise FileNotFoundError("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    with open(log_path, "ab") if log_path else contextlib.nullcontext(subprocess.DEVNULL) as log:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", str(directory), *extra_args], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
    except BaseException:
        stop_process(proc, grace_s=5)
        raise
    return proc


@contextlib.contextmanager
def redis_server(port: int | None = None, directory: str | Path | None = None, extra_args: Sequence[str] = (),
                 log_path: Path | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """A private redis-server (a free port unless given; a temporary directory unless given); yields (process, URL)
    and stops it afterwards. The shared Redis at 6379 is never touched."""
    port = port or free_port()
    with contextlib.ExitStack() as stack:
        directory = directory or stack.enter_context(tempfile.TemporaryDirectory())
        proc = start_redis(port, directory, extra_args, log_path)
        try:
            yield proc, f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc, grace_s=15)


# ---------------------------------------------------------------- the service under uvicorn

@dataclass
class Server:
    url: str
    proc: subprocess.Popen | None
    cold_start_s: float | None = None  # spawn to the first /readyz 200

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def spawn_uvicorn(port: int, env: dict[str, str], log: int | object = subprocess.DEVNULL,
                  extra_args: Sequence[str] = ()) -> subprocess.Popen:
    """`python -m uvicorn --factory service.app:create_app` on 127.0.0.1:port, the repository on PYTHONPATH; env
    is added to this process's environment (SLR_* settings). Not waited for: see uvicorn_server."""
    return subprocess.Popen([*UVICORN, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             *extra_args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=log, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def uvicorn_server(env: dict[str, str], log_path: Path | None = None, extra_args: Sequence[str] = (),
                   timeout_s: float = 120.0, grace_s: float = 20.0) -> Iterator[Server]:
    """The service on a free port, yielded once /readyz answers 200 (cold start timed from spawn); stopped
    gracefully afterwards. The log (stdout and stderr) is appended to log_path when given."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") if log_path else contextlib.nullcontext(subprocess.DEVNULL) as log:
        start = time.monotonic()
        proc = spawn_uvicorn(port, env, log, extra_args)
        try:
            try:
                wait_ready(f"{url}/readyz", proc, timeout_s)
            except (RuntimeError, TimeoutError) as e:
                raise RuntimeError(f"the service did not become ready ({e}); see {log_path or 'its output'}") from None
            yield Server(url, proc, time.monotonic() - start)
        finally:
            stop_process(proc, grace_s)


# ---------------------------------------------------------------- clips and files of them

# container -> (imageio extension, PyAV codec); yuv420p needs even sizes (the default clip is 64x48).
VIDEO_CODECS = {"mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "webm": ("webm", "libvpx"),
                "avi": ("avi", "mpeg4")}
FORMATS = (*VIDEO_CODECS, "gif", "npy")


def moving_square_clip(n_frames: int = 12, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A square of a seeded colour sliding left to right over a dark background: uint8 [N,H,W,3]."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(80, 256, size=3, dtype=np.uint8)
    clip = np.full((n_frames, height, width, 3), 16, dtype=np.uint8)
    size = max(2, height // 3)
    for t in range(n_frames):
        x = int((width - size) * t / max(1, n_frames - 1))
        clip[t, height // 3: height // 3 + size, x: x + size] = colour
    return clip


def encode_clip(frames: np.ndarray, fmt: str, fps: int = 8) -> bytes:
    """uint8 frames as a real file of the given format (a key of VIDEO_CODECS, 'gif' or 'npy')."""
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, frames, allow_pickle=False)
        return buf.getvalue()
    import imageio.v3 as iio

    if fmt == "gif":
        return iio.imwrite("<bytes>", frames, extension=".gif", duration=int(1000 / fps), loop=0)
    ext, codec = VIDEO_CODECS[fmt]
    return iio.imwrite("<bytes>", frames, extension=f".{ext}", plugin="pyav", codec=codec, fps=fps)


def make_clip(frames: int, height: int, width: int, seed: int = 0) -> bytes:
    """A real H.264 mp4 of the moving square: the upload the load benchmarks send."""
    return encode_clip(moving_square_clip(frames, height, width, seed), "mp4")


# ---------------------------------------------------------------- folders of video files, as people bring them

FolderClip = tuple[str, np.ndarray, Sequence[str], str]  # (id, uint8 frames [T,H,W,3], captions, split)
MSRVTT_SPLIT = {"train": "train", "val": "validate", "test": "test"}
MSVD_COLUMNS = ("VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description")


def write_clip_file(path: Path, frames: np.ndarray, fmt: str, fps: int) -> None:
    path.write_bytes(encode_clip(frames, fmt, fps))


def write_video_folder(root: str | Path, layout: str, clips: Sequence[FolderClip],
                       formats: Sequence[str] = ("mp4",), fps: int = 8, workers: int = 1) -> dict[str, Path]:
    """Clips as real video files (formats taken in turn, keys of VIDEO_CODECS) and annotations in one of the three
    layouts slr data prepare reads: `msrvtt` (videos/ + the two videodatainfo json), `msvd` (YouTubeClips/ +
    video_corpus.csv, ids `<VideoID>_<Start>_<End>`, one French row per clip that must be dropped) or `plain`
    (clips/ + captions.csv). Returns clip id -> its file. `workers` > 1 encodes the files in that many processes
    (a corpus of thousands: each file pays the encoder's set-up, ~0.3 s for a tiny mp4)."""
    import csv
    import json
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    root = Path(root)
    folder = root / {"msrvtt": "videos", "msvd": "YouTubeClips", "plain": "clips"}[layout]
    folder.mkdir(parents=True, exist_ok=True)
    fmts = [formats[i % len(formats)] for i in range(len(clips))]
    files = {clip_id: folder / f"{clip_id}.{fmt}" for (clip_id, _, _, _), fmt in zip(clips, fmts)}
    jobs = (list(files.values()), [frames for _, frames, _, _ in clips], fmts, [fps] * len(clips))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(write_clip_file, *jobs, chunksize=32))
    else:
        list(map(write_clip_file, *jobs))
    if layout == "msrvtt":
        for name, wanted in (("train_val_videodatainfo.json", {"train", "val"}), ("test_videodatainfo.json", {"test"})):
            mine = [c for c in clips if c[3] in wanted]
            doc = {"videos": [{"video_id": cid, "split": MSRVTT_SPLIT[split]} for cid, _, _, split in mine],
                   "sentences": [{"video_id": cid, "caption": text, "sen_id": j}
                                 for cid, _, caps, _ in mine for j, text in enumerate(caps)]}
            (root / name).write_text(json.dumps(doc))
    elif layout == "msvd":
        with open(root / "video_corpus.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(MSVD_COLUMNS)
            for cid, _, caps, _ in clips:
                vid, start, end = cid.rsplit("_", 2)
                w.writerow([vid, start, end, 1, "clean", 10, "French", "une phrase en français"])
                w.writerows([vid, start, end, 1, "clean", 10, "English", text] for text in caps)
    else:
        with open(root / "captions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "caption", "split"])
            w.writerows([files[cid].relative_to(root).as_posix(), text, split]
                        for cid, _, caps, split in clips for text in caps)
    return files


# ---------------------------------------------------------------- plain HTTP (stdlib: no client to install)

def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of GET url; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_post(url: str, body: bytes, content_type: str, timeout: float = 30.0) -> int:
    """The status of POST url with the body; the answer is read and dropped."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
