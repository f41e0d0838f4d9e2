"""Reading the Dockerfiles for tests/deploy: instructions with line continuations and comments, split into stages;
ARG defaults; the pip installs of a stage and the project requirements they pull. Hand-written: hadolint (run by
the tests) lints the files but exposes no parse, and the PyPI `dockerfile-parse` would be a new dependency for the
little read here (instructions per stage)."""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------------
# a Dockerfile parser: instructions with line continuations and comments, split into stages


@dataclass
class Instruction:
    keyword: str
    args: str
    lineno: int

    def exec_form(self) -> list[str] | None:
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            for token in shlex.split(ins.args):
                key, sep, value = token.partition("=")
                assert sep, f"line {ins.lineno}: use ENV KEY=VALUE"
                out[key] = value
        return out


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages). Comment lines are dropped, also inside a continued instruction."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        if raw.lstrip().startswith("#"):
            continue
        if not pending:
            if not raw.strip():
                continue
            start = lineno
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, f"{path}: the last instruction ends in a line continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", ins.args, flags=re.I)
            assert m, f"{path}:{ins.lineno}: FROM {ins.args}"
            stages.append(Stage(m.group(1), m.group(2)))
        elif not stages:
            assert ins.keyword == "ARG", f"{path}:{ins.lineno}: only ARG may come before the first FROM"
            name, _, default = ins.args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(ins)
    assert stages, f"{path}: no FROM"
    return global_args, stages


def stage_arg_default(stage: Stage, name: str) -> str | None:
    for ins in stage.all("ARG"):
        key, sep, default = ins.args.partition("=")
        if key == name:
            return default if sep else None
    return None


def pip_installs(stage: Stage) -> list[tuple[int, list[str]]]:
    """(instruction index, arguments) of every `pip install` in the stage's RUN lines."""
    out = []
    for index, ins in enumerate(stage.instructions):
        if ins.keyword != "RUN":
            continue
        words = shlex.split(re.sub(r"^(--\S+\s+)+", "", ins.args))
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";"):
                if len(command) >= 2 and command[0] in ("pip", "pip3") and command[1] == "install":
                    out.append((index, command[2:]))
                elif command[:4] == ["python", "-m", "pip", "install"]:
                    out.append((index, command[4:]))
                command = []
            else:
                command.append(word)
    return out


PIP_OPTIONS_WITH_VALUE = {"--index-url", "-i", "--extra-index-url", "-r", "--requirement", "-c", "--constraint",
                          "-f", "--find-links", "--target", "-t", "--prefix", "--root"}


def positional(args: list[str]) -> list[str]:
    """pip install's requirement arguments: neither options nor their values."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in PIP_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0).lower().replace("_", "-")


def project_requirements(extras: set[str]) -> list[str]:
    """The core dependencies and those of the extras asked for, following self-references (star-slr[...])."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    reqs, todo, seen = list(project["dependencies"]), list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        assert extra in optional, f"pyproject.toml has no extra [{extra}]"
        for req in optional[extra]:
            if requirement_name(req) == requirement_name(project["name"]):
                todo += re.search(r"\[([^\]]*)\]", req).group(1).split(",")
            else:
                reqs.append(req)
    return reqs


def local_extras(args: list[str]) -> set[str] | None:
    """Extras of the local project in pip arguments (`./[cpu]`, `.[cpu]`, `/src[cpu]`); None if it is not there."""
    for arg in args:
        m = re.fullmatch(r"(\.|\./|/src/?)(?:\[([^\]]*)\])?", arg)
        if m:
            return set(filter(None, (m.group(2) or "").split(",")))
    return None
