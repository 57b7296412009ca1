"""Load a script of bench/ as a module: bench/ is a folder of scripts, not a package."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def load_script(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module named ``name`` (its siblings importable meanwhile)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
        sys.path.remove(str(BENCH))
    return module


# How long a benchmark run may take before the test calls it hung (pytest-timeout's marker on
# each test that runs one): a guard against a hang, not a figure a run is expected to meet.
# A short run takes well under a minute on a quiet machine and a few on a loaded one; the
# tests otherwise wait for the run's own end (its exit), never for a time to pass.
HANG_GUARD_SECONDS = 900


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``bench/<name>.py`` with ``args`` from the repository's root and wait for it to
    exit, however long a loaded machine makes it take (no timeout of its own: see
    ``HANG_GUARD_SECONDS``)."""
    return subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        check=check,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)} if env is None else env,
    )
