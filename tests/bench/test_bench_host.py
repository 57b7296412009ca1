"""The host throughput benchmark runs (``--short``) against its own PostgreSQL and pgbench and
prints both rates, the latency quantiles, an open loop's, a clean ledger and the ratio."""

import os
import shutil
from pathlib import Path

import pytest

from tests.bench.scripts import HANG_GUARD_SECONDS, run_script

ROOT = Path(__file__).resolve().parents[2]
HAVE_PGBENCH = shutil.which("pgbench") is not None or any(
    Path("/usr/lib/postgresql").glob("*/bin/pgbench")
)


@pytest.mark.skipif(
    not HAVE_PGBENCH and os.environ.get("CI") != "true",
    reason="PostgreSQL is not installed here (CI installs it and never skips)",
)
@pytest.mark.timeout(HANG_GUARD_SECONDS)
def test_short_run_prints_rates_and_ratio():
    # Waits for the run to end: its pieces are bounded by what they do (20 withdrawals, a
    # 1 s open loop, 2 s of pgbench), not by the time the machine takes for them.
    result = run_script("bench_host", "--short", env={**os.environ, "PYTHONPATH": str(ROOT)})
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
