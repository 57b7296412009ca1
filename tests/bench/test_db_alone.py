"""The database-alone anchor of the host benchmark (``bench/db_alone.py``, ``bench/run.py
--only host``): pgbench makes the host's ``atm_authorize`` call for the bench terminals'
withdrawals, every call is checked approved and posted once, and the host section's table
gains the anchor, its lookup's cost, the CPU per withdrawal and the authorizations per host
core. Real PostgreSQL, pgbench and ``atm host`` processes; no figure is held to a speed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.bench.scripts import HANG_GUARD_SECONDS, load_script, run_script

ROOT = Path(__file__).resolve().parents[2]
HAVE_PGBENCH = shutil.which("pgbench") is not None or any(
    Path("/usr/lib/postgresql").glob("*/bin/pgbench")
)
needs_pgbench = pytest.mark.skipif(
    not HAVE_PGBENCH and os.environ.get("CI") != "true",
    reason="PostgreSQL is not installed here (CI installs it and never skips)",
)


def _row(table: str, figure: str) -> list[str]:
    """The cells (figure, target, ours, anchor, ratio, result) of the row starting so."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith(figure):
            return cells
    raise AssertionError(f"no row {figure!r} in:\n{table}")


def _number(text: str) -> float:
    match = re.search(r"[\d,]+(\.\d+)?", text)
    assert match is not None, text
    return float(match.group(0).replace(",", ""))


@needs_pgbench
@pytest.mark.timeout(HANG_GUARD_SECONDS)
def test_the_host_section_reports_the_database_alone_and_the_cpu_per_withdrawal(tmp_path):
    result = run_script(
        "run",
        "--only",
        "host",
        "--short",
        "--out",
        str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    table = (tmp_path / "host.md").read_text()
    assert table.strip() in result.stdout
    ours = _number(_row(table, "host withdrawals/s, 4 terminals")[2])
    assert ours > 0

    alone = _row(table, "database alone: pgbench")
    calls = re.search(r"all ([\d,]+) approved \(00\) and posted once", alone[2])
    assert calls is not None, alone
    assert int(calls.group(1).replace(",", "")) > 0
    tps = _number(alone[2])
    assert "pgbench TPC-B-like, scale 4" in alone[3]
    assert _number(alone[4]) == pytest.approx(tps / _number(alone[3]), abs=0.01)

    at_pool = _row(table, "same, 4 clients (as many as the host's connections")
    assert _number(at_pool[2]) > 0 and "CPU per call" in at_pool[2]

    split = _row(table, "ours against the database alone")
    assert _number(split[2]) == ours
    assert _number(split[4]) == pytest.approx(ours / tps, abs=0.01)

    lookup = _row(table, "the database-alone script's per-call lookup alone")
    assert _number(lookup[2]) > 0 and "PostgreSQL" in lookup[2]

    cpu = _row(table, "CPU per withdrawal, closed loop")[2]
    figures = dict(re.findall(r"(host|PostgreSQL|terminals) ([\d.]+) ms", cpu))
    assert set(figures) == {"host", "PostgreSQL", "terminals"}, cpu
    # Tens of withdrawals of a millisecond or more each: a few clock ticks at least.
    assert float(figures["host"]) > 0 and float(figures["PostgreSQL"]) > 0

    per_core = _row(table, "authorizations/s per host core")[2]
    assert _number(per_core) == pytest.approx(1000 / float(figures["host"]), rel=0.01)

    if len(os.sched_getaffinity(0)) >= 2:  # the database on cores of its own
        split_row = _row(table, "split cores: PostgreSQL on")
        assert "the same split" in split_row[3] and "CPU per withdrawal" in split_row[2]
        assert _number(split_row[4]) == pytest.approx(
            _number(split_row[2]) / _number(split_row[3]), abs=0.01
        )

    assert _row(table, "ledger check")[2:] == ["clean", "", "", "PASS"]


@needs_pgbench
@pytest.mark.timeout(HANG_GUARD_SECONDS)
def test_a_call_that_is_not_approved_is_caught():
    """Two terminals' card sessions opened through the host; pgbench's client 1 then carries
    a session token the host would not send (another PIN block's): its calls find no open
    session and apply nothing, and the run says not every call was approved."""
    db_alone = load_script("db_alone")
    bench_host = db_alone.bench_host
    cluster = bench_host.Cluster()
    cluster.start()
    try:
        cluster.create_database("atm")
        url = cluster.url("atm")
        pans = bench_host.prepare(url, 2)

        async def sessions() -> tuple[list[Any], dict[str, str]]:
            async with bench_host.HostProcess(url) as host:
                terminals = await bench_host.open_terminals(host.port, pans)
                await bench_host.close_terminals(terminals)
                return db_alone.clients(terminals, host.env), dict(host.env)

        clients, env = asyncio.run(sessions())
        good = db_alone.run(cluster, "atm", clients[:1], env, 1, 1)
        assert good.every_call_approved
        assert (
            good.approved
            == good.postings
            == (good.authorize.transactions + good.at_pool.transactions)
        )

        wrong = dataclasses.replace(clients[1], pin_token="0" * 64)
        bad = db_alone.run(cluster, "atm", [clients[0], wrong], env, 1, 2)
        assert not bad.every_call_approved
        calls = bad.authorize.transactions + bad.at_pool.transactions
        assert calls > bad.approved > 0  # client 0's only
        assert bad.declined == 0 and bad.postings == bad.approved
        assert bench_host.ledger_clean(url)
    finally:
        cluster.stop()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to split")
def test_pin_moves_every_thread_of_a_process_and_its_children():
    """The split run's pinning: a process with a thread and a child process, pinned with
    its children to one core, then back to all of them."""
    import subprocess
    import sys

    procstat = load_script("procstat")
    everything = os.sched_getaffinity(0)
    one = {min(everything)}
    code = (
        "import subprocess, sys, threading, time; "
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start(); "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print(child.pid, flush=True); time.sleep(30)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())

        def cores(pid: int) -> list[set[int]]:
            return [
                os.sched_getaffinity(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()
            ]

        procstat.pin(parent.pid, one, with_children=True)
        assert len(cores(parent.pid)) >= 2  # the main thread and the sleeping one
        assert all(c == one for c in cores(parent.pid) + cores(child))
        procstat.pin(parent.pid, everything, with_children=True)
        assert all(c == everything for c in cores(parent.pid) + cores(child))
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
