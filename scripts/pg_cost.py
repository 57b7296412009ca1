"""PostgreSQL's cost per withdrawal on the hot path (issue 16): backend CPU, WAL bytes and
the costliest statements inside ``atm_authorize``, for one closed loop of ``bench_host``.

    .venv/bin/python -m scripts.pg_cost [--terminals 32] [--requests 40] [--warmup 5]

A throw-away cluster like ``bench/bench_host.py``'s (fsync and synchronous commit on) with
``pg_stat_statements`` loaded (``track = all``: the statements inside the function too), the
same seeded database, one ``atm host`` process, every terminal's card session opened first.
After ``--warmup`` withdrawals per terminal, the counters are read before and after the
measured loop:

- CPU of the host's database connections (client backends, /proc utime + stime), and of the
  whole server (every process of the cluster, those that exited included);
- WAL (``pg_stat_wal``: bytes, records, full-page images; pg_waldump's sizes by record);
- per statement: calls, mean time, rows and WAL bytes (``pg_stat_statements``).

Every figure is divided by the withdrawals of the measured loop. CPU figures on a shared
machine include what other processes' load costs this one: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bench.bench_host import (
    Cluster,
    HostProcess,
    close_terminals,
    closed_loop,
    ledger_clean,
    open_terminals,
    prepare,
)
from host.db import create_engine_for

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _ticks(pid: int, children: bool = False) -> int:
    """utime + stime of a process (+ its reaped children's), in clock ticks; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # After the command: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
    used = int(fields[11]) + int(fields[12])
    return used + (int(fields[13]) + int(fields[14]) if children else 0)


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == parent:
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Counters:
    backend_ticks: int
    server_ticks: int
    wal_bytes: int
    wal_records: int
    wal_fpi: int
    lsn: str


class Probe:
    def __init__(self, cluster: Cluster, url: str) -> None:
        self.postmaster = int((cluster.base / "data" / "postmaster.pid").read_text().split()[0])
        self.engine = create_engine_for(url, isolation_level="AUTOCOMMIT")

    def backends(self) -> list[int]:
        with self.engine.connect() as connection:
            return list(
                connection.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
                        " AND datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            )

    def read(self, backends: list[int]) -> Counters:
        with self.engine.connect() as connection:
            wal = connection.execute(
                text(
                    "SELECT wal_bytes, wal_records, wal_fpi, pg_current_wal_insert_lsn()::text"
                    " FROM pg_stat_wal"
                )
            ).one()
        server = _ticks(self.postmaster, children=True)
        server += sum(_ticks(pid) for pid in _children(self.postmaster))
        return Counters(
            sum(_ticks(pid) for pid in backends),
            server,
            int(wal[0]),
            int(wal[1]),
            int(wal[2]),
            str(wal[3]),
        )

    def reset_statements(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_statements_reset()"))

    def statements(self, count: int, top: int) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT calls, total_exec_time, rows, wal_bytes, toplevel,"
                    " regexp_replace(query, '\\s+', ' ', 'g')"
                    " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                    " ORDER BY total_exec_time DESC LIMIT :top"
                ),
                {"top": top},
            ).all()
        return [
            f"{calls / count:5.2f}/w {total / count:7.4f} ms/w {int(rows_) / count:5.2f} rows/w "
            f"{float(wal) / count:7.1f} WAL B/w {'top ' if toplevel else 'fn  '}{query[:110]}"
            for calls, total, rows_, wal, toplevel, query in rows
        ]

    def close(self) -> None:
        self.engine.dispose()


def start(cluster: Cluster) -> None:
    """``Cluster.start`` with pg_stat_statements loaded (tracking nested statements)."""
    data = str(cluster.base / "data")
    cluster.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    options = (
        f"-k {cluster.base} -c listen_addresses= -c max_connections=300"
        " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
    )
    cluster.run("pg_ctl", "-D", data, "-o", options, "-l", str(cluster.base / "log"), "-w", "start")


def wal_by_record(cluster: Cluster, start: str, end: str, count: int) -> list[tuple[int, str]]:
    """pg_waldump's statistics of the measured loop's WAL: (bytes, record type and count per
    withdrawal), biggest first."""
    out = cluster.run(
        "pg_waldump", "-p", str(cluster.base / "data" / "pg_wal"), "-s", start, "-e", end,
        "--stats=record",
    )  # fmt: skip
    # "Heap/INSERT  count (%)  record size (%)  FPI size (%)  combined size (%)"
    share = r"\s+\(\s*[\d.]+\)\s+"
    pattern = re.compile(rf"^(\S+/\S+)\s+(\d+){share}\d+{share}\d+{share}(\d+)")
    rows = []
    for line in out.splitlines():
        match = pattern.match(line)
        if match:
            rows.append((int(match[3]), match[1], int(match[2])))
    rows.sort(reverse=True)
    return [(size, f"{n / count:5.2f} records/w {name}") for size, name, n in rows if size]


async def measure(
    cluster: Cluster, url: str, probe: Probe, pans: list[str], args: argparse.Namespace
) -> None:
    async with HostProcess(url) as host:
        terminals = await open_terminals(host.port, pans)
        try:
            if args.warmup:
                await closed_loop(terminals, args.warmup)
            backends = probe.backends()
            probe.reset_statements()
            before = probe.read(backends)
            loop = await closed_loop(terminals, args.requests)
            after = probe.read(backends)
        finally:
            await close_terminals(terminals)
    n = loop.total
    print(f"withdrawals measured: {n} ({len(pans)} terminals); {loop.rate:.0f}/s")
    print(
        f"PG client backends ({len(backends)}): "
        f"{(after.backend_ticks - before.backend_ticks) * TICK_MS / n:.3f} ms CPU/withdrawal"
    )
    print(
        f"PG server, all processes: "
        f"{(after.server_ticks - before.server_ticks) * TICK_MS / n:.3f} ms CPU/withdrawal"
    )
    print(
        f"WAL: {(after.wal_bytes - before.wal_bytes) / n:.0f} bytes/withdrawal, "
        f"{(after.wal_records - before.wal_records) / n:.1f} records, "
        f"{(after.wal_fpi - before.wal_fpi) / n:.2f} full-page images"
    )
    records = wal_by_record(cluster, before.lsn, after.lsn, n)
    total = sum(size for size, _ in records)
    print(f"WAL by record type (pg_waldump --stats=record): {total / n:.0f} bytes/withdrawal")
    for size, name in records[: args.top]:
        print(f"  {size / n:7.1f} B/w {name}")
    print("statements (per withdrawal; fn = inside a function):")
    for line in probe.statements(n, args.top):
        print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=32)
    parser.add_argument("--requests", type=int, default=40, help="measured, per terminal")
    parser.add_argument("--warmup", type=int, default=5, help="withdrawals per terminal first")
    parser.add_argument("--top", type=int, default=14, help="statements listed")
    args = parser.parse_args()
    cluster = Cluster()
    start(cluster)
    try:
        cluster.create_database("atm")
        url = cluster.url("atm")
        pans = prepare(url, args.terminals)
        probe = Probe(cluster, url)
        with probe.engine.connect() as connection:
            connection.execute(text("CREATE EXTENSION pg_stat_statements"))
        try:
            asyncio.run(measure(cluster, url, probe, pans, args))
        finally:
            probe.close()
        clean = ledger_clean(url)
        print(f"ledger check: {'clean' if clean else 'NOT CLEAN'}")
    finally:
        cluster.stop()
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
