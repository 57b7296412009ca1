"""Two checkouts of the host side by side on one PostgreSQL (issue 16): host CPU per
authorization and closed-loop authorizations/s, in paired rounds under the same load.

    .venv/bin/python -m scripts.link_ab --old /tmp/linkproto-old [--new DIR] [--rounds 6]
        [--terminals 32] [--requests 60] [--warmup 5] [--profile DIR] [--link-only]
        [--memory N] [--old-loop asyncio|uvloop] [--new-loop asyncio|uvloop]
    .venv/bin/python -m scripts.link_ab --old DIR --open-rate 450 [--open-seconds 4]
        [--open-warmup 2] [--breakdown 0.02] [--old-gc asis] [--pg-set N=V]

``--old`` is another checkout of this repository (``git worktree add /tmp/x integ``); the "new"
host is this one, or ``--new``'s. Both run as ``atm host`` processes with this virtualenv's
Python, each from its own checkout (its directory first on ``sys.path``). One throw-away
cluster and one seeded database as in ``bench/bench_host.py`` (fsync and synchronous commit
on); each round starts one host of each kind in turn (the order alternates, so a drift of the
machine's load or of the growing ledger falls on both alike), opens the terminals' card
sessions, runs ``--warmup`` withdrawals per terminal, then measures a closed loop of
``--requests`` per terminal: the host process's CPU (/proc utime + stime, all threads) divided
by the withdrawals, and the rate. ``uptime``'s load average is printed with every round.
``--link-only``: requests the link answers alone (a format error after the MAC check), to see
the link's own cost without the database's. ``--profile DIR``: after the rounds, one more loop
per kind under ``py-spy record --gil`` (raw collapsed stacks in DIR; the profiler's own cost
makes those loops unfit for the figures above). ``--memory N``: then the host's resident memory
per signed-on connection with N connected, as ``make bench``. Each round also gives the
terminals' own CPU per withdrawal (this process); ``--old-loop`` / ``--new-loop`` put the
terminals of that kind's rounds on asyncio's loop or uvloop (the same host on both sides
then measures the load generator).

Open loop (``make bench``'s target): ``--open-rate R [--open-seconds 4] [--open-warmup 2]``:
paired windows instead of closed-loop rounds, each on a fresh host of its kind: the
terminals' card sessions, ``--open-warmup`` s at R/s, then the measured ``--open-seconds`` at
R/s (``bench_host.open_loop``: latency from each request's due time). Per window: p50, p99
and max, the load generator's own lag (due -> bytes handed to the socket) p99, CPU per
withdrawal of the host, PostgreSQL and the terminals, their run-queue wait per withdrawal
(runnable with no core free: /proc schedstat) and the share of the window in which any task
on the machine waited for a core or for I/O (/proc/pressure: other tenants show there);
then the medians and the median of the per-pair new/old ratios. The server logs its
checkpoints and autovacuum runs; ``--pg-set NAME=VALUE`` sets more (diagnosis only).
``--breakdown 0.02``: for the slowest 2 % of each window beside 50 median requests, where the
time went (the generator's timer and encoding, the round trip, the terminal's decoding),
when the slowest were due (bunched: a stall; spread: queueing), this
process's garbage collections over 2 ms and the server's log lines in the window.
``--old-gc asis``: this process's collector as it comes in the old kind's windows (default
``quiet``: ``bench_host.collector_quiet``, as ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from atm.commands._host_serve import loop_factory
from bench import bench_host
from bench.bench_host import (
    BenchTerminal,
    ClosedLoop,
    Cluster,
    HostProcess,
    OpenLoop,
    close_terminals,
    closed_loop,
    ledger_clean,
    open_loop,
    open_terminals,
    prepare,
    prepare_terminals,
    quantile,
    raise_open_file_limit,
    sign_on_all,
)
from bench.procstat import pressure, process_ticks, run_queue_wait, tree_ticks
from host.db import create_engine_for
from protocol.errors import LinkError

ROOT = Path(__file__).resolve().parents[1]
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _uptime() -> str:
    """``uptime``'s load figures."""
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%H:%M:%S')} load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def host_process(root: Path, url: str, quiet: bool = False) -> HostProcess:
    """One ``atm host`` process (link only) from checkout ``root``."""
    env = {
        "PYTHONPATH": str(root),
        # --link-only: the format errors' warning lines would be most of the work.
        "LOG_LEVEL": "ERROR" if quiet else "WARNING",
    }
    return HostProcess(url, env, source=root)


class GcClock:
    """This process's garbage collections, timed (gc.callbacks): (start, seconds,
    generation) on the loop's clock."""

    def __init__(self) -> None:
        self.collections: list[tuple[float, float, int]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.monotonic()
        else:
            now = time.monotonic()
            self.collections.append((self._started, now - self._started, info["generation"]))

    def within(self, start: float, end: float) -> list[tuple[float, float, int]]:
        return [c for c in self.collections if start <= c[0] <= end]


GC_CLOCK: GcClock | None = None


@dataclass
class OpenWindow:
    """One measured open-loop window of one host: its run and what the machine did."""

    run: OpenLoop
    host_cpu_ms: float  # host CPU per answered withdrawal
    pg_cpu_ms: float  # PostgreSQL's
    bench_cpu_ms: float  # this process's (the terminals)
    host_wait_ms: float  # run-queue wait (runnable, no core free) per withdrawal
    pg_wait_ms: float
    bench_wait_ms: float
    gcs: list[tuple[float, float, int]]  # this process's collections in the window
    start: float = 0.0
    end: float = 0.0
    wall_start: float = 0.0
    cpu_pressure: float = 0.0  # share of the window some task (anyone's) waited for a core
    io_pressure: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.run.latencies or [0.0]) * 1000

    @property
    def p99(self) -> float:
        return quantile(self.run.latencies, 0.99) * 1000

    @property
    def max(self) -> float:
        return max(self.run.latencies or [0.0]) * 1000

    @property
    def lag_p99(self) -> float:
        return quantile(self.run.lags(), 0.99) * 1000


async def one_open_window(
    root: Path, url: str, pans: list[str], args: argparse.Namespace, postmaster: int
) -> OpenWindow:  # fmt: skip
    """A fresh host of ``root``: the terminals open, ``--open-warmup`` s at the rate, then the
    measured ``--open-seconds`` at the same rate."""
    async with host_process(root, url) as host:
        terminals = await open_terminals(host.port, pans)
        try:
            if args.open_warmup > 0:
                await open_loop(terminals, args.open_rate, args.open_warmup)
            ticks = (process_ticks(host.pid), tree_ticks(postmaster), process_ticks())
            waits = (
                run_queue_wait(host.pid),
                run_queue_wait(postmaster, with_children=True),
                run_queue_wait(),
            )
            start, wall, psi = time.monotonic(), time.time(), pressure()
            run = await open_loop(terminals, args.open_rate, args.open_seconds)
            end, psi2 = time.monotonic(), pressure()
            ticks2 = (process_ticks(host.pid), tree_ticks(postmaster), process_ticks())
            waits2 = (
                run_queue_wait(host.pid),
                run_queue_wait(postmaster, with_children=True),
                run_queue_wait(),
            )
        finally:
            await close_terminals(terminals)
    n = max(1, len(run.latencies))
    cpu = [(b - a) * TICK_S / n * 1000 for a, b in zip(ticks, ticks2, strict=True)]
    wait = [(b - a) / n * 1000 for a, b in zip(waits, waits2, strict=True)]
    assert GC_CLOCK is not None
    span = end - start
    return OpenWindow(
        run, *cpu, *wait, GC_CLOCK.within(start, end), start, end, wall,
        (psi2[0] - psi[0]) / span, (psi2[1] - psi[1]) / span,
    )  # fmt: skip


def pg_log_lines(log: Path, window: OpenWindow) -> list[str]:
    """The server log's lines stamped within the window (log_line_prefix %m: UTC)."""
    import datetime as dt

    lines = []
    start = window.wall_start
    end = start + (window.end - window.start)
    for line in log.read_text(errors="replace").splitlines():
        try:
            stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        if start - 0.5 <= stamp.timestamp() <= end + 0.5:
            lines.append(f"    pg {stamp.timestamp() - start:+.2f}s: {line[24:][:160]}")
    return lines


def breakdown(window: OpenWindow, share: float) -> str:
    """Where the time of the slowest ``share`` of the window's requests went, beside the
    median request's: generator lag (due -> bytes sent: its timer, then its encoding), the
    round trip (the link and the host, the database call in it), the terminal's decoding."""
    samples = sorted(window.run.samples, key=lambda s: s.done - s.due)
    rows = []
    slow = samples[int(len(samples) * (1 - share)) :]
    middle = samples[len(samples) // 2 - 25 : len(samples) // 2 + 25]
    for name, group in (("median 50", middle), (f"slowest {len(slow)}", slow)):
        parts: dict[str, list[float]] = {}
        for s in group:
            segs = {
                "timer": s.started - s.due,
                "encode": s.sent - s.started,
                "round-trip": s.arrived - s.sent,
                "decode": s.done - s.arrived,
                "total": s.done - s.due,
            }
            for k, v in segs.items():
                parts.setdefault(k, []).append(v * 1000)
        text = ", ".join(f"{k} {statistics.mean(v):.1f}" for k, v in parts.items())
        rows.append(f"    {name}: {text} (ms, means)")
    # When the slowest were due: bunched (a stall) or spread (queueing).
    bins: dict[int, int] = {}
    for s in slow:
        b = int((s.due - window.start) * 10)
        bins[b] = bins.get(b, 0) + 1
    rows.append(
        "    slowest by due time (100 ms bins: count): "
        + ", ".join(f"{b / 10:.1f}s:{c}" for b, c in sorted(bins.items()))
    )
    big = [
        f"gen{g[2]} {g[1] * 1000:.1f}ms@{g[0] - window.start:.2f}s"
        for g in window.gcs
        if g[1] > 0.002
    ]
    rows.append(
        f"    bench GCs in window: {len(window.gcs)}; over 2 ms: {', '.join(big) or 'none'}"
    )
    return "\n".join(rows)


def open_rounds(
    args: argparse.Namespace, url: str, pans: list[str], postmaster: int
) -> dict[str, list[OpenWindow]]:
    """Paired open-loop windows at ``--open-rate``, old and new alternating first; each
    window's terminals on the event loop ``--old-loop`` / ``--new-loop`` names."""
    loops = {"old": args.old_loop, "new": args.new_loop}
    collectors = {"old": args.old_gc, "new": args.new_gc}
    kinds = {"old": Path(args.old), "new": Path(args.new)}
    windows: dict[str, list[OpenWindow]] = {kind: [] for kind in kinds}
    for number in range(args.rounds):
        order = ["old", "new"] if number % 2 == 0 else ["new", "old"]
        pair: dict[str, OpenWindow] = {}
        for kind in order:
            bench_host.QUIET_COLLECTOR = collectors[kind] == "quiet"
            try:
                with asyncio.Runner(loop_factory=loop_factory(loops[kind])) as runner:
                    window = runner.run(one_open_window(kinds[kind], url, pans, args, postmaster))
            except LinkError as exc:
                print(f"round {number + 1} {kind}: failed ({exc}) | {_uptime()}", flush=True)
                break
            pair[kind] = window
            run = window.run
            print(
                f"round {number + 1} {kind}: {run.offered:.0f}/s offered, achieved "
                f"{run.achieved:.0f}/s: p50 {window.p50:.1f} ms, p99 {window.p99:.1f} ms, "
                f"max {window.max:.1f} ms; generator lag p99 {window.lag_p99:.1f} ms; "
                f"CPU ms/withdrawal host {window.host_cpu_ms:.2f} PG {window.pg_cpu_ms:.2f} "
                f"terminals {window.bench_cpu_ms:.2f}; run-queue wait ms/withdrawal host "
                f"{window.host_wait_ms:.2f} PG {window.pg_wait_ms:.2f} terminals "
                f"{window.bench_wait_ms:.2f}; CPU pressure {window.cpu_pressure:.0%}, I/O "
                f"{window.io_pressure:.0%}; {run.waited} waited, {run.shed} shed | {_uptime()}",
                flush=True,
            )
            if args.breakdown:
                print(breakdown(window, args.breakdown), flush=True)
                for line in pg_log_lines(args.pg_log, window):
                    print(line, flush=True)
        if len(pair) == len(kinds):
            for kind, window in pair.items():
                windows[kind].append(window)
    return windows


def open_summary(windows: dict[str, list[OpenWindow]]) -> None:
    old, new = windows["old"], windows["new"]
    if not old:
        print("no complete pair")
        return
    for name, kind in (("old", old), ("new", new)):
        print(
            f"{name}: p50 median {statistics.median(w.p50 for w in kind):.1f} ms, "
            f"p99 median {statistics.median(w.p99 for w in kind):.1f} ms "
            f"({', '.join(f'{w.p99:.0f}' for w in kind)}), "
            f"max median {statistics.median(w.max for w in kind):.1f} ms, "
            f"generator lag p99 median {statistics.median(w.lag_p99 for w in kind):.1f} ms"
        )
    for figure in ("p50", "p99", "max"):
        ratios = [getattr(n, figure) / getattr(o, figure) for n, o in zip(new, old, strict=True)]
        print(
            f"new/old per pair, {figure}: median {statistics.median(ratios):.2f} "
            f"({', '.join(f'{r:.2f}' for r in ratios)})"
        )


@dataclass
class Figures:
    cpu_ms: list[float] = field(default_factory=list)  # host CPU per withdrawal, ms
    rate: list[float] = field(default_factory=list)  # withdrawals/s
    p99_ms: list[float] = field(default_factory=list)
    terminals_ms: list[float] = field(default_factory=list)  # this process's CPU per withdrawal


async def link_only_loop(terminals: Sequence[BenchTerminal], count: int) -> ClosedLoop:
    """Each terminal sends ``count`` 0200s that carry only DE 3 (answered 30, format error,
    after the MAC check: the link's work, no database), one after the other."""

    async def run(terminal: BenchTerminal) -> list[float]:
        latencies = []
        for _ in range(count):
            message = {**terminal.header("0200"), "3": "012000"}
            started = time.perf_counter()
            response = await terminal.exchange(message)
            if response["39"] != "30":
                raise SystemExit(f"link_ab: {terminal.terminal_id} got {response['39']}")
            latencies.append(time.perf_counter() - started)
        return latencies

    started = time.perf_counter()
    results = await asyncio.gather(*(run(t) for t in terminals))
    return ClosedLoop(time.perf_counter() - started, list(results))


async def one_loop(
    root: Path,
    url: str,
    pans: list[str],
    args: argparse.Namespace,
    profile: Path | None,
) -> tuple[float, float, float, float]:
    warmup, count = args.warmup, args.requests
    run = link_only_loop if args.link_only else closed_loop
    async with host_process(root, url, args.link_only) as host:
        terminals = await open_terminals(host.port, pans)
        try:
            if warmup:
                await run(terminals, warmup)
            spy = None
            if profile is not None:
                spy = await asyncio.create_subprocess_exec(
                    _py_spy(), "record", "--gil", "--format", "raw", "--rate", "500",
                    "--nonblocking", "-p", str(host.pid), "-o", str(profile),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await asyncio.sleep(1.0)  # py-spy attaches
            before = process_ticks(host.pid)
            loop = await run(terminals, count)
            used = (process_ticks(host.pid) - before) * TICK_S
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await asyncio.wait_for(spy.wait(), 60)
        finally:
            await close_terminals(terminals)
    latencies = sorted(loop.flat())
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return used / loop.total * 1000, loop.rate, p99 * 1000, loop.client_cpu_per_request * 1000


async def connection_memory(root: Path, url: str, terminal_ids: list[str], warm: int) -> float:
    """KB of host resident memory per signed-on connection: RSS with ``warm`` terminals
    signed on (pools and caches up), then with all of ``terminal_ids`` (as ``make bench``)."""
    host = host_process(root, url)
    host.env.update({"BCRYPT_ROUNDS": "4", "LINK_IDLE_TIMEOUT_SECONDS": "3600"})
    async with host:
        first = await sign_on_all(host.port, terminal_ids[:warm])
        before = host.rss_kb()
        rest = await sign_on_all(host.port, terminal_ids[warm:])
        after = host.rss_kb()
        await close_terminals([*first, *rest])
    return (after - before) / len(rest)


def _py_spy() -> str:
    for candidate in [shutil.which("py-spy"), str(Path(sys.executable).parent / "py-spy")]:
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("link_ab: no py-spy (pip install py-spy)")


def rounds(
    args: argparse.Namespace, url: str, pans: list[str], profile: Path | None
) -> dict[str, Figures]:
    kinds = {"old": Path(args.old), "new": Path(args.new)}
    loops = {"old": args.old_loop, "new": args.new_loop}
    figures = {kind: Figures() for kind in kinds}
    for number in range(args.rounds):
        order = ["old", "new"] if number % 2 == 0 else ["new", "old"]
        pair: dict[str, tuple[float, float, float]] = {}
        for kind in order:
            try:
                with asyncio.Runner(loop_factory=loop_factory(loops[kind])) as runner:
                    result = runner.run(one_loop(kinds[kind], url, pans, args, None))
                pair[kind] = cpu, rate, p99, terminals_cpu = result
            except LinkError as exc:
                # A loaded machine can stall a host past a link timeout: say so, drop the pair.
                print(f"round {number + 1} {kind}: failed ({exc}) | {_uptime()}", flush=True)
                break
            print(
                f"round {number + 1} {kind}: host CPU {cpu:.3f} ms/withdrawal, {rate:.0f}/s, "
                f"p99 {p99:.1f} ms, terminals' CPU {terminals_cpu:.3f} ms/withdrawal "
                f"({loops[kind]}) | {_uptime()}",
                flush=True,
            )
        if len(pair) < len(kinds):
            continue
        for kind, (cpu, rate, p99, terminals_cpu) in pair.items():
            figures[kind].cpu_ms.append(cpu)
            figures[kind].rate.append(rate)
            figures[kind].p99_ms.append(p99)
            figures[kind].terminals_ms.append(terminals_cpu)
    if args.memory:
        ids = prepare_terminals(url, args.memory + 50)
        for kind in kinds:
            per = asyncio.run(connection_memory(kinds[kind], url, ids, 50))
            print(f"{kind}: {per:.1f} KB per signed-on connection ({args.memory})", flush=True)
    if profile is not None:
        for kind in kinds:
            asyncio.run(one_loop(kinds[kind], url, pans, args, profile / f"{kind}.txt"))
            print(f"profile of {kind}: {profile / f'{kind}.txt'}", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the other checkout (the baseline)")
    parser.add_argument("--new", default=str(ROOT), help="the checkout measured against it")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--terminals", type=int, default=32)
    parser.add_argument("--requests", type=int, default=60, help="measured, per terminal")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured, per terminal")
    parser.add_argument("--profile", help="also write py-spy profiles of each kind here")
    parser.add_argument(
        "--memory", type=int, default=0, help="then host memory per connection with N signed on"
    )
    parser.add_argument(
        "--open-rate",
        type=float,
        default=0.0,
        help="paired open-loop windows at this offered rate/s instead of closed-loop rounds",
    )
    for kind in ("old", "new"):
        parser.add_argument(
            f"--{kind}-loop",
            choices=("asyncio", "uvloop"),
            default="asyncio",
            help=f"the event loop of the terminals in the {kind} host's open-loop windows",
        )
        parser.add_argument(
            f"--{kind}-gc",
            choices=("quiet", "asis"),
            default="quiet",
            help=f"this process's collector in the {kind} host's windows: frozen heap "
            "(bench_host.collector_quiet, as make bench) or as it comes",
        )
    parser.add_argument("--open-seconds", type=float, default=4.0, help="each measured window")
    parser.add_argument(
        "--open-warmup", type=float, default=2.0, help="at the same rate on the fresh host first"
    )
    parser.add_argument(
        "--breakdown",
        type=float,
        default=0.0,
        help="print where the time of this share of the slowest requests went (0.02: 2%%)",
    )
    parser.add_argument(
        "--pg-set",
        action="append",
        default=[],
        help="NAME=VALUE: a server setting for the run (ALTER SYSTEM; diagnosis only)",
    )
    parser.add_argument(
        "--link-only",
        action="store_true",
        help="requests answered by the link alone (0200 with DE 3 only: 30, format error)",
    )
    args = parser.parse_args()
    args.old, args.new = str(Path(args.old).resolve()), str(Path(args.new).resolve())
    raise_open_file_limit()  # --memory: the host processes inherit it
    cluster = Cluster()
    cluster.start()
    try:
        cluster.create_database("atm")
        url = cluster.url("atm")
        pans = prepare(url, args.terminals)
        print(f"cores: {os.cpu_count()}; {args.terminals} terminals x {args.requests} withdrawals")
        profile = Path(args.profile) if args.profile else None
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
        if args.open_rate > 0:
            global GC_CLOCK
            GC_CLOCK = GcClock()
            postmaster = int((cluster.base / "data" / "postmaster.pid").read_text().split()[0])
            args.pg_log = cluster.base / "log"
            settings = ["log_checkpoints=on", "log_autovacuum_min_duration=0", *args.pg_set]
            engine = create_engine_for(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                for setting in settings:
                    name, _, value = setting.partition("=")
                    connection.execute(text(f"ALTER SYSTEM SET {name} = '{value}'"))
                connection.execute(text("SELECT pg_reload_conf()"))
                shown = [
                    f"{name}={connection.execute(text(f'SHOW {name}')).scalar()}"
                    for name in ("synchronous_commit", "fsync", "checkpoint_timeout",
                                 "max_wal_size", "wal_sync_method", "autovacuum")
                ]  # fmt: skip
            engine.dispose()
            print(f"server: {', '.join(shown)}", flush=True)
            windows = open_rounds(args, url, pans, postmaster)
            clean = ledger_clean(url)
        else:
            figures = rounds(args, url, pans, profile)
            clean = ledger_clean(url)
    finally:
        cluster.stop()
    if args.open_rate > 0:
        open_summary(windows)
        print(f"ledger check: {'clean' if clean else 'NOT CLEAN'} | {_uptime()}")
        return 0 if clean else 1
    old, new = figures["old"], figures["new"]
    cpu_ratio = [n / o for n, o in zip(new.cpu_ms, old.cpu_ms, strict=True)]
    rate_ratio = [n / o for n, o in zip(new.rate, old.rate, strict=True)]
    for name, kind in (("old", old), ("new", new)):
        print(
            f"{name}: host CPU median {statistics.median(kind.cpu_ms):.3f} ms/withdrawal, "
            f"rate median {statistics.median(kind.rate):.0f}/s, "
            f"p99 median {statistics.median(kind.p99_ms):.1f} ms, terminals' CPU median "
            f"{statistics.median(kind.terminals_ms):.3f} ms/withdrawal"
        )
    print(
        f"new/old per pair: CPU median {statistics.median(cpu_ratio):.3f} "
        f"({', '.join(f'{r:.2f}' for r in cpu_ratio)}); rate median "
        f"{statistics.median(rate_ratio):.3f} ({', '.join(f'{r:.2f}' for r in rate_ratio)})"
    )
    print(f"ledger check: {'clean' if clean else 'NOT CLEAN'} | {_uptime()}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
