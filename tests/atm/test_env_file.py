"""``.env.example`` is for Compose; outside Compose the shell exports it (the ``atm`` command
reads only its environment). Both uses are exercised here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_says_the_atm_command_does_not_read_it() -> None:
    header = (ROOT / ".env.example").read_text().split("\n\n", 1)[0]
    assert "does NOT read .env" in header
    assert "set -a; . ./.env; set +a" in header


def test_exported_as_the_example_says_it_configures_the_host(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        (ROOT / ".env.example").read_text().replace("OPS_PORT=8080", "OPS_PORT=18080")
    )
    code = "from host.config import HostConfig; print(HostConfig.from_env().ops_port)"
    done = subprocess.run(
        ["bash", "-c", f'set -a; . ./.env; set +a; exec "{sys.executable}" -c "{code}"'],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.stdout.strip() == "18080", done.stderr
