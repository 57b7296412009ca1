"""Dependencies point one way (DESIGN section 2): protocol <- drivers <- device; protocol <- host;
simulators use drivers (and protocol); only `atm` (the composition roots) imports everything."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"atm", "device", "drivers", "host", "protocol", "simulators"}
ALLOWED = {
    "protocol": set(),
    "drivers": {"protocol"},
    "device": {"protocol", "drivers"},
    "host": {"protocol"},
    "simulators": {"protocol", "drivers"},
    "atm": OURS,
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        for dep in imported_packages(path) - ALLOWED[package] - {package}:
            bad.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert bad == []
