"""What a person meets (issue 15), one test per finding: a real uvicorn process, real Redis, real encoded files,
the README's quick start run as written, and the `slr` command line in subprocesses."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bench.support import free_port, stop_process, wait_ready
from tests.service_fixtures import ROOT, encode_clip, moving_square_clip

RUN = uuid.uuid4().int % 10**6
# The shared `server` and `client` (tests/service/conftest.py) run with these settings.
SERVER_ENV = {"SLR_LOG_LEVEL": "info", "SLR_INTRA_OP_THREADS": "1", "SLR_MEDIA_WORKERS": "2"}
CLIENT_TIMEOUT_S = 60


def clip_bytes(i: int, fmt: str = "mp4") -> bytes:
    return encode_clip(moving_square_clip(12, seed=RUN * 100 + i), fmt)


@pytest.fixture(scope="module")
def latent_id(client: httpx.Client) -> str:
    r = client.post("/encode", files={"video": ("clip.mp4", clip_bytes(1))})
    assert r.status_code == 200, r.text
    return r.json()["latent_id"]


def error(r: httpx.Response, status: int, code: str | None = None) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert code is None or body["error"]["code"] == code, body
    return body["error"]["message"]


# ---- 1. Swagger UI's prefills (the browser half is in test_swagger_browser.py) ------------------------------

def test_1_form_prefills_leave_optional_inputs_empty(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def form(path: str) -> dict:
        return paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]

    assert form("/caption")["latent_id"]["example"] == "" and form("/reconstruct")["latent_id"]["example"] == ""
    assert form("/caption")["max_len"]["example"] == ""  # not 1 (its minimum)
    assert form("/caption")["num_captions"]["example"] == 1
    assert form("/encode")["sentence"]["example"] == ""  # a video alone stays a video latent
    assert form("/caption")["video"]["format"] == "binary"


# ---- 2. errors that say what to do ------------------------------------------------------------------------

def test_2_errors_name_the_field_and_what_is_accepted(client: httpx.Client) -> None:
    mp4 = clip_bytes(2)
    cases = [
        (client.post("/caption"), 422, ["'video'", "'latent_id'", "curl -F video=@"]),
        (client.post("/caption", files={"file": ("clip.mp4", mp4)}), 422, ["'file'", "'video'"]),
        (client.post("/caption", content=mp4, headers={"content-type": "video/mp4"}), 415,
         ["multipart form", "'video'", "video/mp4"]),
        (client.post("/caption", content=mp4, headers={"content-type": "application/octet-stream"}), 415,
         ["form field"]),
        (client.post("/caption", json={"num_captions": 2}), 422, ["'video'", "'latent_id'"]),
        (client.post("/caption", data={"sentence": "a red square"}), 422, ["'sentence'", "/paraphrase"]),
        (client.post("/paraphrase", content=b'{"sentence": "a red square"', headers={"content-type":
                                                                                    "application/json"}),
         422, ["not valid JSON", "line 1", "column", '{"sentence"']),
        (client.post("/paraphrase", json=["a red square"]), 422, ["must be an object"]),
        (client.post("/paraphrase", json={"text": "a red square"}), 422, ["'text'", "'sentence'"]),
        (client.post("/paraphrase", json={"sentence": "a red square", "num_alternatives": 40}), 422,
         ["num_alternatives", "16"]),
        (client.post("/caption", data={"video": "clip.mp4"}), 422, ["file part", "-F video=@clip.mp4"]),
        (client.post("/caption", json={"video": "clip.mp4"}), 422, ["cannot travel in JSON"]),
    ]
    for r, status, words in cases:
        message = error(r, status)
        for w in words:
            assert w in message, (w, message)


def test_2_json_without_its_content_type_is_read_as_json(client: httpx.Client) -> None:
    # curl -d '{...}' without -H sends it as a urlencoded form: read it as the JSON it is.
    r = client.post("/paraphrase", content=b'{"sentence": "a red square moves"}',
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    r = client.post("/paraphrase", content=b'{"sentence": "a red square moves"}')
    assert r.status_code == 200, r.text


def test_2_bad_files_are_explained(client: httpx.Client) -> None:
    message = error(client.post("/caption", files={"video": ("notes.mp4", b"shopping list: milk, eggs\n")}), 415,
                    "unsupported_media_type")
    assert "notes.mp4" in message and "text" in message and ".mp4" in message, message
    truncated = clip_bytes(3)[:600]
    message = error(client.post("/caption", files={"video": ("cut.mp4", truncated)}), 422, "undecodable_media")
    assert "cut.mp4" in message and "truncated" in message and "Errno" not in message and "<none>" not in message


# ---- 3. latent_id the same way everywhere -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/caption", "/reconstruct", "/paraphrase", "/sentence-to-video"])
def test_3_latent_id_as_form_field_and_in_json(client: httpx.Client, latent_id: str, path: str) -> None:
    as_form = client.post(path, data={"latent_id": latent_id})
    as_json = client.post(path, json={"latent_id": latent_id})
    assert as_form.status_code == as_json.status_code == 200, (as_form.text, as_json.text)
    assert as_form.content == as_json.content
    both = client.post(path, data={"latent_id": latent_id, "sentence" if "video" in path or path == "/paraphrase"
                                   else "x": "a red square"})
    assert both.status_code == 422


# ---- 4. per-code error examples ---------------------------------------------------------------------------

def test_4_each_error_status_has_its_own_example(client: httpx.Client) -> None:
    examples: dict[str, set[str]] = {}
    for ops in client.get("/openapi.json").json()["paths"].values():
        for op in ops.values():
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content", {}).get("application/json", {})
                if (status.startswith(("4", "5"))
                        and content.get("schema", {}).get("$ref", "").endswith("/ErrorResponse")):
                    ex = content["example"]["error"]
                    examples.setdefault(status, set()).add(ex["code"])
    assert {"401", "404", "413", "415", "422", "503"} <= set(examples)
    assert all(len(codes) == 1 for codes in examples.values()), examples
    codes = [next(iter(c)) for c in examples.values()]
    assert len(set(codes)) == len(codes), examples  # not one example for all


# ---- 5. unknown words, the vocabulary -----------------------------------------------------------------------

def test_5_unknown_words_are_reported_and_the_vocabulary_is_public(client: httpx.Client) -> None:
    vocab = client.get("/vocab").json()
    assert vocab["size"] == len(vocab["words"]) + 4 and "red" in vocab["words"] and vocab["max_words"] > 0
    sentence = "a magenta hexagon spins clockwise"
    para = client.post("/paraphrase", json={"sentence": sentence}).json()
    assert para["unknown_words"] == [w for w in sentence.split() if w not in vocab["words"]] != []
    enc = client.post("/encode", data={"sentence": sentence}).json()
    assert enc["unknown_words"] == para["unknown_words"]
    gif = client.post("/sentence-to-video", json={"sentence": sentence})
    assert gif.status_code == 200 and gif.headers["x-unknown-words"] == ",".join(para["unknown_words"])
    frames = client.post("/sentence-to-video", json={"sentence": sentence, "format": "json"}).json()
    assert frames["unknown_words"] == para["unknown_words"]
    assert client.post("/paraphrase", json={"sentence": "a red square"}).json()["unknown_words"] == []
    too_long = error(client.post("/paraphrase", json={"sentence": "red " * (vocab["max_words"] + 1)}), 422)
    assert str(vocab["max_words"]) in too_long


# ---- 6. distinct samples ------------------------------------------------------------------------------------

def test_6_samples_are_distinct_or_said_to_be_fewer(client: httpx.Client, latent_id: str) -> None:
    cap = client.post("/caption", data={"latent_id": latent_id, "num_captions": "8", "seed": "3"}).json()
    assert cap["captions"][0] == cap["caption"] and len(set(cap["captions"])) == len(cap["captions"]) <= 8
    assert (len(cap["captions"]) < 8) == ("note" in cap), cap
    para = client.post("/paraphrase", json={"sentence": "a red square moves to the right", "num_alternatives": 8})
    body = para.json()
    assert body["sentence"] not in body["alternatives"] and len(set(body["alternatives"])) == len(body["alternatives"])
    assert (len(body["alternatives"]) < 8) == ("note" in body), body


# ---- 7. duplicate parts -------------------------------------------------------------------------------------

def test_7_duplicate_parts_are_one_clear_error(client: httpx.Client, latent_id: str) -> None:
    two = [("video", ("a.mp4", clip_bytes(4))), ("video", ("b.mp4", clip_bytes(5)))]
    assert "'video' was sent 2 times" in error(client.post("/caption", files=two), 422, "duplicate_field")
    assert "'video'" in error(client.post("/encode", files=two), 422, "duplicate_field")
    r = client.post("/paraphrase", content=f"latent_id={latent_id}&latent_id={latent_id}".encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert "'latent_id'" in error(r, 422, "duplicate_field")


# ---- 8. the page, HEAD, request ids, the command line ----------------------------------------------------

def test_8_page_head_and_not_found(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.head("/healthz").status_code == 200 and client.head("/").status_code == 200
    assert "/docs" in error(client.get("/nothing-here"), 404, "not_found")


def test_8_request_ids_are_echoed_made_and_logged(client: httpx.Client, log_path: Path) -> None:
    mine = f"req-{uuid.uuid4().hex[:12]}"
    assert client.get("/healthz", headers={"X-Request-ID": mine}).headers["x-request-id"] == mine
    made = client.post("/caption").headers["x-request-id"]  # errors carry one too
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"] != \
        "bad id\twith spaces"
    client.get("/models")  # flush: the access line is written after the answer
    log = log_path.read_text()
    assert re.search(rf"{mine} GET /healthz 200 ", log) and re.search(rf"{made} POST /caption 422 ", log), log[-2000:]


def test_samples_map_points_pair_clips_and_captions(client: httpx.Client) -> None:
    body = client.get("/samples").json()
    names = {s["name"] for s in body["samples"]}
    assert len(names) >= 4 and len(body["points"]) == 2 * len(names) and len(body["explained"]) == 2
    assert {(p["sample"], p["kind"]) for p in body["points"]} == {(n, k) for n in names for k in ("video", "sentence")}
    point = body["points"][0]
    assert client.post("/caption", json={"latent_id": point["latent_id"]}).status_code == 200


def slr(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120, check=False)


def test_8_cli_version_caption_and_generate(artifacts_dir: Path, tmp_path: Path) -> None:
    version = slr("--version")
    assert version.returncode == 0 and re.search(r"\d+\.\d+", version.stdout), version
    clip, text = tmp_path / "clip.mp4", tmp_path / "notes.mp4"
    clip.write_bytes(clip_bytes(6))
    text.write_text("not a video\n")
    cap = slr("caption", str(clip), str(text), "--artifacts", str(artifacts_dir), "--num", "2")
    assert cap.returncode == 2, cap  # one file was bad: exit status 2, as for any bad input
    assert re.search(rf"^{re.escape(str(clip))}: \w+", cap.stdout, re.MULTILINE), cap.stdout
    assert "notes.mp4" in cap.stderr and "text" in cap.stderr, cap.stderr
    out = tmp_path / "out.gif"
    gen = slr("generate", "a red square zzyzx moves", "-o", str(out), "--artifacts", str(artifacts_dir))
    assert gen.returncode == 0, gen.stderr
    assert Image.open(out).n_frames >= 1 and "zzyzx" in gen.stderr


def test_8_slr_serve_takes_artifacts(artifacts_dir: Path, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLR_REDIS_URL": redis_url, "SLR_ARTIFACTS": "/nonexistent"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--artifacts", str(artifacts_dir),
                             "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/models").json()["version"] == "tiny-test"
    finally:
        stop_process(proc, grace_s=15)


# ---- the README's quick start, as written -------------------------------------------------------------------

def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quick start"):]
    section = section[:section.index("\n## ", 5)]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)


def test_readme_quick_start_runs_as_written(server: str, artifacts_dir: Path, tmp_path: Path) -> None:
    blocks = readme_blocks()
    curl_block = next(b for b in blocks if "curl" in b)
    local_block = next(b for b in blocks if "slr caption" in b)
    (tmp_path / "clip.mp4").write_bytes(clip_bytes(7))
    host = server.removeprefix("http://")
    # curl fails on any 4xx/5xx; every line of the block must succeed.
    script = "set -euo pipefail\ncurl() { command curl -sS --fail-with-body \"$@\"; }\n" + \
        curl_block.replace("localhost:8000", host)
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-2000:])
    for gif in ("square.gif", "reconstructed.gif", "same.gif"):
        assert Image.open(tmp_path / gif).format == "GIF", gif
    assert '"caption"' in run.stdout and '"words"' in run.stdout
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLR_ARTIFACTS": str(artifacts_dir),
           "PYTHONPATH": str(ROOT)}
    run = subprocess.run(["bash", "-c", "set -euo pipefail\n" + local_block], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-2000:])
    assert "clip.mp4: " in run.stdout and (tmp_path / "square.gif").exists()
    json.dumps(blocks)  # the blocks were found


# ---- what a new user met (issue 27) ------------------------------------------------------------------------

def installed_slr(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The installed `slr` command from a folder outside the checkout, with no SLR_ARTIFACTS set."""
    env = {k: v for k, v in os.environ.items() if k != "SLR_ARTIFACTS"}
    return subprocess.run([str(Path(sys.executable).parent / "slr"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_slr_finds_the_shipped_model_from_any_folder_and_says_no_cache_line(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(clip_bytes(31))
    run = installed_slr(["caption", "clip.mp4"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("clip.mp4: ") and "SLR_REDIS_URL" not in run.stderr, (run.stdout, run.stderr)


def test_slr_bad_input_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    for args in (["generate", "", "-o", "x.gif"], ["generate", "a red square", "-o", "/nonexistent/x.gif"]):
        run = installed_slr(args, tmp_path)
        assert run.returncode == 2, (args, run.stderr[-2000:])
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.stderr, run.stderr
    (tmp_path / "notes.mp4").write_text("shopping list\n")
    run = installed_slr(["caption", "notes.mp4"], tmp_path)
    assert run.returncode == 2 and "notes.mp4: error:" in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_errors_quote_the_servers_own_address(server: str, client: httpx.Client) -> None:
    message = error(client.post("/caption"), 422)
    assert f"curl -F video=@clip.mp4 {server}/caption" in message, (server, message)
