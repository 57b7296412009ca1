"""The lock files agree with ``pyproject.toml`` and are what the image and CI install.

``requirements/dev.txt`` pins every package of every extra (pip constraints for ``make`` and
CI); ``requirements/runtime.txt`` pins the runtime dependencies and the ``s3`` extra with
hashes (the Docker image installs exactly it). ``make lock`` regenerates both; these tests only
read files, so they need neither uv nor the network.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import ROOT

DEV_LOCK = ROOT / "requirements" / "dev.txt"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]*))?")


def read_lock(path: Path) -> dict[str, tuple[str, str | None, int]]:
    """name -> (version, marker, number of hashes) for each pinned package."""
    pins: dict[str, tuple[str, str | None, int]] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match["name"])
            marker = match["marker"].strip() if match["marker"] else None
            assert current not in pins, f"{path.name}: {current} pinned twice"
            pins[current] = (match["version"], marker, 0)
            continue
        assert line.startswith(" "), f"{path.name}: not an exact pin: {line!r}"
        if stripped.startswith("--hash=") and current is not None:
            version, marker, hashes = pins[current]
            pins[current] = (version, marker, hashes + 1)
    return pins


def project_requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return found


def applies_somewhere(marker: str | None) -> bool:
    """Whether a lock line's marker holds for CPython 3.11 or 3.12 on Linux (CI and the image)."""
    if marker is None:
        return True
    return any(
        Marker(marker).evaluate(
            {
                "python_version": version,
                "python_full_version": f"{version}.0",
                "sys_platform": "linux",
                "platform_system": "Linux",
                "platform_python_implementation": "CPython",
                "implementation_name": "cpython",
            }
        )
        for version in ("3.11", "3.12")
    )


def assert_locked(requirements: list[Requirement], pins: dict[str, tuple[str, str | None, int]]):
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not locked: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} in the lock does not satisfy {requirement}: run `make lock`"
        )


def test_drivers_and_postgres_are_plain_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert {"pyserial", "pyserial-asyncio", "pyusb", "psycopg"} <= names
    assert set(project["optional-dependencies"]) == {"s3", "dev", "bench"}


def test_dev_lock_pins_every_extra() -> None:
    # ``bench`` (matplotlib, for the plot of ``make bench`` only) is installed on top, unlocked.
    assert_locked(project_requirements("dev", "s3"), read_lock(DEV_LOCK))


def test_runtime_lock_pins_the_image_dependencies_with_hashes() -> None:
    runtime = read_lock(RUNTIME_LOCK)
    dev = read_lock(DEV_LOCK)
    assert_locked(project_requirements("s3"), runtime)
    for name, (version, _marker, hashes) in runtime.items():
        assert hashes > 0, f"{name} has no hash in {RUNTIME_LOCK.name}"
        # One resolution: the image runs what the tests ran.
        assert dev[name][0] == version, f"{name}: {version} in runtime, {dev[name][0]} in dev"
    # Test-only packages stay out of the image.
    assert "pytest" not in runtime and "mypy" not in runtime
    # Everything the image needs on Linux is in the lock (pip runs it with --no-deps).
    psycopg_binary = runtime.get("psycopg-binary")
    assert psycopg_binary is not None and applies_somewhere(psycopg_binary[1])


def test_the_image_and_the_make_targets_install_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements.txt" in dockerfile
    assert "COPY requirements/runtime.txt ./requirements.txt" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK := requirements/dev.txt" in makefile
    # make demo, make test and make bench (the last adds the unlocked plot library)
    assert makefile.count("pip install --quiet -c $(LOCK)") == 3
    for line in (ROOT / ".github" / "workflows" / "ci.yml").read_text().splitlines():
        if "pip install" in line and "-e" in line.split():
            assert "-c requirements/dev.txt" in line, line
