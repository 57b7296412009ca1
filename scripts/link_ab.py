"""Two checkouts of the host side by side on one PostgreSQL (issue 16): host CPU per
authorization and closed-loop authorizations/s, in paired rounds under the same load.

    .venv/bin/python -m scripts.link_ab --old /tmp/linkproto-old [--new DIR] [--rounds 6]
        [--terminals 32] [--requests 60] [--warmup 5] [--profile DIR] [--link-only]
        [--memory N]

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
per signed-on connection with N connected, as ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_host import (
    BenchTerminal,
    ClosedLoop,
    Cluster,
    HostProcess,
    close_terminals,
    closed_loop,
    ledger_clean,
    open_terminals,
    prepare,
    prepare_terminals,
    raise_open_file_limit,
    sign_on_all,
)
from bench.procstat import process_ticks
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


@dataclass
class Figures:
    cpu_ms: list[float] = field(default_factory=list)  # host CPU per withdrawal, ms
    rate: list[float] = field(default_factory=list)  # withdrawals/s
    p99_ms: list[float] = field(default_factory=list)


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
) -> tuple[float, float, float]:
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
    return used / loop.total * 1000, loop.rate, p99 * 1000


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


async def rounds(
    args: argparse.Namespace, url: str, pans: list[str], profile: Path | None
) -> dict[str, Figures]:
    kinds = {"old": Path(args.old), "new": Path(args.new)}
    figures = {kind: Figures() for kind in kinds}
    for number in range(args.rounds):
        order = ["old", "new"] if number % 2 == 0 else ["new", "old"]
        pair: dict[str, tuple[float, float, float]] = {}
        for kind in order:
            try:
                pair[kind] = cpu, rate, p99 = await one_loop(kinds[kind], url, pans, args, None)
            except LinkError as exc:
                # A loaded machine can stall a host past a link timeout: say so, drop the pair.
                print(f"round {number + 1} {kind}: failed ({exc}) | {_uptime()}", flush=True)
                break
            print(
                f"round {number + 1} {kind}: host CPU {cpu:.3f} ms/withdrawal, {rate:.0f}/s, "
                f"p99 {p99:.1f} ms | {_uptime()}",
                flush=True,
            )
        if len(pair) < len(kinds):
            continue
        for kind, (cpu, rate, p99) in pair.items():
            figures[kind].cpu_ms.append(cpu)
            figures[kind].rate.append(rate)
            figures[kind].p99_ms.append(p99)
    if args.memory:
        ids = prepare_terminals(url, args.memory + 50)
        for kind in kinds:
            per = await connection_memory(kinds[kind], url, ids, 50)
            print(f"{kind}: {per:.1f} KB per signed-on connection ({args.memory})", flush=True)
    if profile is not None:
        for kind in kinds:
            await one_loop(kinds[kind], url, pans, args, profile / f"{kind}.txt")
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
        figures = asyncio.run(rounds(args, url, pans, profile))
        clean = ledger_clean(url)
    finally:
        cluster.stop()
    old, new = figures["old"], figures["new"]
    cpu_ratio = [n / o for n, o in zip(new.cpu_ms, old.cpu_ms, strict=True)]
    rate_ratio = [n / o for n, o in zip(new.rate, old.rate, strict=True)]
    for name, kind in (("old", old), ("new", new)):
        print(
            f"{name}: host CPU median {statistics.median(kind.cpu_ms):.3f} ms/withdrawal, "
            f"rate median {statistics.median(kind.rate):.0f}/s, "
            f"p99 median {statistics.median(kind.p99_ms):.1f} ms"
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
