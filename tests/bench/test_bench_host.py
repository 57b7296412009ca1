"""The host throughput benchmark runs (``--short``) against its own PostgreSQL and pgbench and
prints both rates, the latency quantiles, an open loop's, a clean ledger and the ratio."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAVE_PGBENCH = shutil.which("pgbench") is not None or any(
    Path("/usr/lib/postgresql").glob("*/bin/pgbench")
)


@pytest.mark.skipif(
    not HAVE_PGBENCH and os.environ.get("CI") != "true",
    reason="PostgreSQL is not installed here (CI installs it and never skips)",
)
def test_short_run_prints_rates_and_ratio():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_host.py"), "--short"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=240,
    )
    out = result.stdout
    assert "host over TCP on PostgreSQL:" in out and "authorizations/s" in out
    assert "latency p50" in out and "p99" in out
    # What the simulated terminals cost the machine under test.
    assert "ms CPU per withdrawal" in out and "cores of" in out
    # The open loop: one request outstanding per terminal at most (a real fleet).
    assert "over 4 terminals (at most one request outstanding each)" in out
    assert "ledger check: clean" in out
    assert "pgbench TPC-B-like, 4 clients:" in out
    assert "ratio host/pgbench:" in out
