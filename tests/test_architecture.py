"""Dependencies point one way (docs/architecture.md): protocol <- drivers <- device;
protocol <- host; simulators use drivers (and protocol); only `atm` (the composition roots)
imports everything, and `atm device` / `atm sim` never load the host. `webpanel` is what the
two browser panels' HTTP servers share (static files, the cross-site check): the ATM's front
panel lives in atm/ (device side) and the admin panel in host/, neither may import the other,
so the shared part is a package of its own that imports none of ours."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"atm", "device", "drivers", "host", "protocol", "simulators", "webpanel"}
ALLOWED = {
    "protocol": set(),
    "drivers": {"protocol"},
    "device": {"protocol", "drivers"},
    "host": {"protocol", "webpanel"},
    "simulators": {"protocol", "drivers"},
    "webpanel": set(),
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


# A device or simulator process must not load the authorization host: not through a shared
# module of atm/, nor through the CLI registering every subcommand. Each command is imported
# in a fresh interpreter, the way `atm COMMAND` starts (its --help parses the real argv path).
HOST_ONLY = ("host", "sqlalchemy", "aiohttp", "bcrypt", "alembic", "reportlab")
THIN_COMMANDS = ("device", "sim", "fleet")


def modules_loaded_by(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {line.split(".")[0] for line in done.stdout.splitlines()}


def test_the_scenario_atm_process_does_not_import_the_host():
    # The ATM a scenario kills runs as its own process (atm/scenario/atmproc.py).
    assert sorted(modules_loaded_by("import atm.scenario.atmproc") & set(HOST_ONLY)) == []


@pytest.mark.parametrize("command", THIN_COMMANDS)
def test_device_and_simulator_commands_do_not_import_the_host(command):
    loaded = modules_loaded_by(f"import atm.commands.{command}")
    assert sorted(loaded & set(HOST_ONLY)) == []


@pytest.mark.parametrize("command", THIN_COMMANDS)
def test_running_a_thin_command_does_not_import_the_host(command):
    code = (
        "import contextlib, io\n"
        "from atm.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main([{command!r}, '--help'])"
    )
    loaded = modules_loaded_by(code)
    assert "atm" in loaded
    assert sorted(loaded & set(HOST_ONLY)) == []


def test_demo_does_not_import_a_command_module():
    # The demo is a composition root of its own; CLI modules stand on it, not the other way.
    assert not any(
        name.startswith("atm.commands") for name in imported_modules(ROOT / "atm" / "demo.py")
    )


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_host_bank_does_not_import_the_link_side():
    # host/link turns messages into calls on host/bank; the banking side knows no ISO-8583.
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "host" / "bank").rglob("*.py")
        for name in imported_modules(path)
        if name == "host.link" or name.startswith("host.link.")
    ]
    assert bad == []
