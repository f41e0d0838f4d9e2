"""Reading the compose files and .env files as compose does, for tests/deploy: .env values, the interpolation
subset compose defines ($$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}), override merging, durations and sizes.
Hand-written on purpose: python-dotenv reads .env files but not compose's interpolation forms ($VAR-d, ${VAR:?e})
and accepts lines compose refuses, and no maintained Python package implements compose's merge; the real
`docker-compose config` checks this reading where it is installed (test_compose_config_agrees_with_the_parser...).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"

# ---------------------------------------------------------------------------------------------------------------
# .env files and compose interpolation (the subset compose defines: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e})


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()), f"{path.name}:{lineno}: not KEY=VALUE"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def documented_env_names(path: Path) -> set[str]:
    """Names set or shown commented out (`# NAME=example`) in an env file."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), flags=re.M))


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4)
        value = env.get(name)
        if op in (":-", ":?"):
            missing = not value
        else:
            missing = value is None
        if op and op.endswith("?") and missing:
            raise ValueError(f"required variable {name}: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return value or ""

    return _VAR.sub(sub, text)


def interpolate_tree(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


def interpolated_names(*paths: Path) -> set[str]:
    names: set[str] = set()
    for path in paths:
        text = path.read_text().replace("$$", "")
        names |= {a or b for a, b in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)", text)}
    return names


def merge(base, override):
    """Compose's merge for the keys used here: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return override


def environment_of(service: dict, env: dict[str, str]) -> dict[str, str | None]:
    """A service's environment as compose hands it to the container: entries without a value come from the env."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict((item.split("=", 1) + [None])[:2] for item in raw)
    return {k: (env.get(k) if v is None else str(v)) for k, v in raw.items()}


def load_compose(*files: Path, env_file: Path | None = ENV_EXAMPLE) -> dict:
    env = read_env_file(env_file) if env_file else {}
    config: dict = {}
    for f in files:
        config = merge(config, yaml.safe_load(f.read_text()))
    config = interpolate_tree(config, env)
    for svc in config["services"].values():
        if "environment" in svc:
            svc["environment"] = environment_of(svc, env)
    return config


def duration_s(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(a + b for a, b in parts) == value, f"not a compose duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def size_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([kmg]?)b?", str(value).strip().lower())
    assert m, f"not a size: {value!r}"
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]
