"""Readers for the deployment files, shared by the tests in this package.

Everything the tests compare is read from its source: the names and defaults of the host's
settings by parsing ``host/*config*.py`` (so a setting added later is picked up), the image by
parsing the ``Dockerfile``, the stack from ``docker-compose.yml`` and the cloud side from the
Terraform files (python-hcl2).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass
class AppSettings:
    names: set[str] = field(default_factory=set)
    defaults: dict[str, Any] = field(default_factory=dict)


_READERS = {"from_env", "parse_environment"}


def read_app_settings() -> AppSettings:
    """Every environment variable the host's configuration modules read, with the literal
    default where the call gives one: ``env.get("NAME", default)``, ``env["NAME"]`` and helper
    calls such as ``integer("NAME", default, low, high)`` inside ``from_env`` (and the shared
    ``parse_environment`` of host/environment.py)."""
    settings = AppSettings()
    host = ROOT / "host"
    for path in sorted({*host.rglob("*config*.py"), host / "environment.py"}):
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef) or function.name not in _READERS:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and node.args:
                    first = node.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        if _NAME.match(first.value):
                            settings.names.add(first.value)
                            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                                settings.defaults.setdefault(first.value, node.args[1].value)
                elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                    key = node.slice.value
                    if isinstance(key, str) and _NAME.match(key):
                        settings.names.add(key)
    return settings


@dataclass
class Stage:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    expose: set[int] = field(default_factory=set)
    cmd: list[str] | None = None
    healthcheck: list[str] | None = None
    user: str | None = None


def _instructions(text: str) -> list[tuple[str, str]]:
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out = []
    for item in logical:
        keyword, _, rest = item.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def read_dockerfile() -> dict[str, Stage]:
    """The Dockerfile's stages by name; a stage inherits ENV, EXPOSE, CMD, HEALTHCHECK and USER
    from the stage it is built FROM, as Docker does."""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, rest in _instructions((ROOT / "Dockerfile").read_text()):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
            parent = stages.get(words[0])
            stage = Stage(name)
            if parent is not None:
                stage.env = dict(parent.env)
                stage.expose = set(parent.expose)
                stage.cmd, stage.healthcheck, stage.user = (
                    parent.cmd,
                    parent.healthcheck,
                    parent.user,
                )
            stages[name] = stage
        elif stage is None:
            continue
        elif keyword == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                stage.env[key] = value
        elif keyword == "EXPOSE":
            stage.expose |= {int(port.split("/")[0]) for port in rest.split()}
        elif keyword == "CMD":
            stage.cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest[rest.index("CMD") + 3 :].strip())
        elif keyword == "USER":
            stage.user = rest
    return stages


def read_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals; drop them (recursively)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:  # a template with quoted parts inside: "${a == "" ? "x" : "y"}"
            return value[1:-1]
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, dict):
        return {unquote(key): unquote(item) for key, item in value.items()}
    return value


def read_tf(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        data: dict[str, Any] = unquote(hcl2.load(handle))
    return data


def tf_locals(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in read_tf(path).get("locals", []):
        merged.update(block)
    return merged


def tf_variable_defaults(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in read_tf(path).get("variable", []):
        for name, body in block.items():
            if "default" in body:
                out[name] = body["default"]
    return out


def tf_module(path: Path, name: str) -> dict[str, Any]:
    for block in read_tf(path).get("module", []):
        if name in block:
            body: dict[str, Any] = block[name]
            return body
    raise KeyError(f"no module {name!r} in {path}")


@pytest.fixture(scope="session")
def app() -> AppSettings:
    return read_app_settings()


@pytest.fixture(scope="session")
def dockerfile() -> dict[str, Stage]:
    return read_dockerfile()


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return read_compose()
