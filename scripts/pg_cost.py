"""PostgreSQL's cost per withdrawal on the hot path (issue 16): backend CPU, WAL bytes and
the costliest statements inside ``atm_authorize``, for one closed loop of ``bench_host``.

    .venv/bin/python -m scripts.pg_cost [--terminals 32] [--requests 40] [--warmup 5]
    .venv/bin/python -m scripts.pg_cost [--baseline REVISION] [--host-baseline DIR] [--rounds 4]

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

``--baseline REVISION`` and ``--host-baseline DIR`` do that, on one cluster and database:
old and new take turns (old, new, new, old, ...: ``--rounds`` pairs), each loop on a host
process and terminals of its own, after a warm-up of its own. Old is the database as
migration ``REVISION`` left it (``alembic downgrade``: its function, its indexes and
storage settings) and the host of the source tree ``DIR`` (another checkout, e.g.
``git archive integ | tar -x -C DIR``); new, the database at the newest migration
(``alembic upgrade head``) and this tree's host. Printed: each loop's figures (host process
CPU too), the medians, and new/old per round and of the medians.

    .venv/bin/python -m scripts.pg_cost --baseline 0017_authorize_one_read --rounds 6
    .venv/bin/python -m scripts.pg_cost --host-baseline /tmp/integ --rounds 6

Taking turns still leaves each loop to whatever else the machine does meanwhile (single
loops scatter by 10-30% on 2 shared cores). ``--side-by-side`` (with ``--baseline``) runs old
and new at the same time instead: two databases on the one cluster, the old one downgraded
to ``REVISION``, a host process and its terminals on each, both closed loops started
together each round; each side's backends are those connected to its database. Both pay the
same for the machine's other work, so the per-round ratio is steady (within a few per cent),
though the loops do not end at the same moment (the last requests of the faster side run
with less company).

    .venv/bin/python -m scripts.pg_cost --baseline 0017_authorize_one_read --side-by-side
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import statistics
import sys
from dataclasses import dataclass
from math import nan
from pathlib import Path

from alembic import command
from sqlalchemy import text

from bench.bench_host import (
    ROOT,
    BenchTerminal,
    Cluster,
    HostProcess,
    close_terminals,
    closed_loop,
    ledger_clean,
    open_terminals,
    prepare,
)
from bench.procstat import TICK_SECONDS, process_ticks, tree_ticks
from host.db import alembic_config, create_engine_for, head_revision

TICK_MS = TICK_SECONDS * 1000


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
        self.url = url
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
        return Counters(
            sum(process_ticks(pid) for pid in backends),
            tree_ticks(self.postmaster),
            int(wal[0]),
            int(wal[1]),
            int(wal[2]),
            str(wal[3]),
        )

    def reset_statements(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
                    " WHERE datname = current_database()), 0)"
                )
            )

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

    def nested_calls(self) -> int:
        """Statements run inside functions since the last reset (foreign-key checks too)."""
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE NOT toplevel"
                        " AND dbid = (SELECT oid FROM pg_database"
                        " WHERE datname = current_database())"
                    )
                )
            )

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


@dataclass(frozen=True)
class Loop:
    """One measured loop's figures per withdrawal."""

    rate: float
    host_ms: float  # the host process
    backend_ms: float
    server_ms: float
    wal_bytes: float
    statements: float  # inside the function, foreign-key checks included

    def row(self, name: str) -> str:
        return (
            f"{name:>8} {self.rate:7.0f}/s {self.host_ms:7.3f} ms {self.backend_ms:7.3f} ms "
            f"{self.server_ms:7.3f} ms {self.wal_bytes:7.0f} B {self.statements:6.2f}"
        )


HEADER = f"{'':>8} {'rate':>9} {'host':>10} {'backends':>10} {'server':>10} {'WAL':>9} {'stmts':>6}"


class Schema:
    """The database at ``url`` as migration ``baseline`` left it ("old") or at the newest
    migration ("new"), switched by ``alembic downgrade`` / ``upgrade``. The host refuses a
    schema behind its head, so while "old", ``alembic_version`` says head (put back before
    going up again): the loop measures the old schema under this tree's host."""

    def __init__(self, url: str, baseline: str) -> None:
        self.url = url
        self.baseline = baseline
        self.head = head_revision()
        self.state = "new"

    def _stamp(self, revision: str) -> None:
        engine = create_engine_for(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(
                    text("UPDATE alembic_version SET version_num = :v"), {"v": revision}
                )
        finally:
            engine.dispose()

    def use(self, state: str) -> None:
        if state == self.state:
            return
        config = alembic_config(self.url)
        if state == "old":
            command.downgrade(config, self.baseline)
            self._stamp(self.head)
        else:
            self._stamp(self.baseline)
            command.upgrade(config, "head")
        self.state = state


async def one_loop(
    probe: Probe, host: HostProcess, terminals: list[BenchTerminal], args: argparse.Namespace
) -> tuple[Loop, Counters, Counters, int]:
    """Warm-up, then the measured loop with the counters read around it."""
    if args.warmup:
        await closed_loop(terminals, args.warmup)
    assert host.process is not None
    backends = probe.backends()
    probe.reset_statements()
    host_before = process_ticks(host.process.pid)
    before = probe.read(backends)
    loop = await closed_loop(terminals, args.requests)
    after = probe.read(backends)
    host_after = process_ticks(host.process.pid)
    n = loop.total
    figures = Loop(
        loop.rate,
        (host_after - host_before) * TICK_MS / n,
        (after.backend_ticks - before.backend_ticks) * TICK_MS / n,
        (after.server_ticks - before.server_ticks) * TICK_MS / n,
        (after.wal_bytes - before.wal_bytes) / n,
        probe.nested_calls() / n,
    )
    return figures, before, after, len(backends)


async def measure(
    cluster: Cluster, url: str, probe: Probe, pans: list[str], args: argparse.Namespace
) -> None:
    async with HostProcess(url) as host:
        terminals = await open_terminals(host.port, pans)
        try:
            figures, before, after, backends = await one_loop(probe, host, terminals, args)
        finally:
            await close_terminals(terminals)
    n = args.requests * len(pans)
    print(f"withdrawals measured: {n} ({len(pans)} terminals); {figures.rate:.0f}/s")
    print(f"host process: {figures.host_ms:.3f} ms CPU/withdrawal")
    print(f"PG client backends ({backends}): {figures.backend_ms:.3f} ms CPU/withdrawal")
    print(f"PG server, all processes: {figures.server_ms:.3f} ms CPU/withdrawal")
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
    print(f"statements (per withdrawal; fn = inside a function; {figures.statements:.2f} in all):")
    for line in probe.statements(n, args.top):
        print(f"  {line}")


async def compare(url: str, probe: Probe, pans: list[str], args: argparse.Namespace) -> None:
    """Old and new in turns (see the docstring): each loop on a host process of its own
    (from ``--host-baseline``'s tree for the old one, if given), on the database as
    ``--baseline`` left it for the old one, if given."""
    schema = Schema(url, args.baseline or head_revision())
    sources = {"old": args.host_source, "new": ROOT}
    loops: dict[str, list[Loop]] = {"old": [], "new": []}
    print(
        f"per withdrawal, {args.requests} x {len(pans)} terminals a loop; old: the database at "
        f"{args.baseline or 'head'}, host from {sources['old']}"
    )
    print(HEADER)
    try:
        for round_ in range(args.rounds):
            for name in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                schema.use(name if args.baseline else "new")
                async with HostProcess(url, source=sources[name]) as host:
                    terminals = await open_terminals(host.port, pans)
                    try:
                        figures = (await one_loop(probe, host, terminals, args))[0]
                    finally:
                        await close_terminals(terminals)
                loops[name].append(figures)
                print(figures.row(name), flush=True)
    finally:
        schema.use("new")
    summarise(loops)


def summarise(loops: dict[str, list[Loop]]) -> None:
    """The medians, new/old by round and of the medians."""
    medians = {
        name: Loop(*(statistics.median(getattr(f, k) for f in runs) for k in Loop.__annotations__))
        for name, runs in loops.items()
    }
    print("medians:")
    for name, figures in medians.items():
        print(figures.row(name))
    for figure in ("host_ms", "backend_ms"):
        paired = [
            getattr(n, figure) / getattr(o, figure)
            for o, n in zip(loops["old"], loops["new"], strict=True)
        ]
        print(
            f"new/old {figure} by round: {' '.join(f'{r:.3f}' for r in paired)}; "
            f"median {statistics.median(paired):.3f}"
        )
    old_m, new_m = medians["old"], medians["new"]
    print(
        f"new/old of the medians: rate {new_m.rate / old_m.rate:.3f}, host CPU "
        f"{new_m.host_ms / old_m.host_ms:.3f}, backend CPU "
        f"{new_m.backend_ms / old_m.backend_ms:.3f}, server CPU "
        f"{new_m.server_ms / old_m.server_ms:.3f}, WAL {new_m.wal_bytes / old_m.wal_bytes:.3f}, "
        f"statements {old_m.statements:.2f} -> {new_m.statements:.2f}"
    )


async def side_by_side(
    cluster: Cluster, urls: dict[str, str], pans: list[str], args: argparse.Namespace
) -> None:
    """Old and new at the same time (see the docstring), ``--rounds`` rounds."""
    Schema(urls["old"], args.baseline).use("old")
    probes = {name: Probe(cluster, url) for name, url in urls.items()}
    loops: dict[str, list[Loop]] = {"old": [], "new": []}
    print(
        f"per withdrawal, {args.requests} x {len(pans)} terminals a side, at the same time; "
        f"old: the database at {args.baseline}"
    )
    print(HEADER)
    try:
        async with HostProcess(urls["old"]) as old, HostProcess(urls["new"]) as new:
            hosts = {"old": old, "new": new}
            terminals = {
                name: await open_terminals(host.port, pans) for name, host in hosts.items()
            }
            try:
                for _ in range(args.rounds):
                    results = await asyncio.gather(
                        *(one_loop(probes[n], hosts[n], terminals[n], args) for n in loops)
                    )
                    for name, result in zip(loops, results, strict=True):
                        # The server's processes and its WAL serve both sides: not either's.
                        figures = dataclasses.replace(result[0], server_ms=nan, wal_bytes=nan)
                        loops[name].append(figures)
                        print(figures.row(name), flush=True)
                    ratio = loops["new"][-1].backend_ms / loops["old"][-1].backend_ms
                    print(f"  new/old backend CPU {ratio:.3f}", flush=True)
            finally:
                for group in terminals.values():
                    await close_terminals(group)
    finally:
        for probe in probes.values():
            probe.close()
    summarise(loops)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=32)
    parser.add_argument("--requests", type=int, default=40, help="measured, per terminal")
    parser.add_argument("--warmup", type=int, default=5, help="withdrawals per terminal first")
    parser.add_argument("--top", type=int, default=14, help="statements listed")
    parser.add_argument(
        "--baseline", help="a migration revision whose atm_authorize to compare against"
    )
    parser.add_argument(
        "--host-baseline",
        help="a source tree (another checkout) whose atm host to compare against",
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="pairs of loops with --baseline / --host-baseline"
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --baseline: old and new at the same time, on two databases",
    )
    args = parser.parse_args()
    if args.side_by_side and not args.baseline:
        parser.error("--side-by-side compares against --baseline")
    args.host_source = Path(args.host_baseline).resolve() if args.host_baseline else ROOT
    cluster = Cluster()
    start(cluster)
    try:
        if args.side_by_side:
            return run_side_by_side(cluster, args)
        cluster.create_database("atm")
        url = cluster.url("atm")
        pans = prepare(url, args.terminals)
        probe = Probe(cluster, url)
        with probe.engine.connect() as connection:
            connection.execute(text("CREATE EXTENSION pg_stat_statements"))
        try:
            if args.baseline or args.host_baseline:
                asyncio.run(compare(url, probe, pans, args))
            else:
                asyncio.run(measure(cluster, url, probe, pans, args))
        finally:
            probe.close()
        clean = ledger_clean(url)
        print(f"ledger check: {'clean' if clean else 'NOT CLEAN'}")
    finally:
        cluster.stop()
    return 0 if clean else 1


def run_side_by_side(cluster: Cluster, args: argparse.Namespace) -> int:
    urls = {}
    for name in ("old", "new"):
        cluster.create_database(f"atm_{name}")
        urls[name] = cluster.url(f"atm_{name}")
        pans = prepare(urls[name], args.terminals)
        engine = create_engine_for(urls[name], isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("CREATE EXTENSION pg_stat_statements"))
        engine.dispose()
    asyncio.run(side_by_side(cluster, urls, pans, args))
    clean = True
    for name, url in urls.items():
        ok = ledger_clean(url)
        clean = clean and ok
        print(f"ledger check ({name}): {'clean' if ok else 'NOT CLEAN'}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
