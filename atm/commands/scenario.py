"""``atm scenario``: run scenario files (``docs/scenarios.md``) against a fresh host, check
files without running them, and run random sessions (``fuzz``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atm.scenario import ScenarioError, load_paths
from atm.scenario.fuzz import fuzz
from atm.scenario.runner import scenario_host_config
from atm.scenario.suite import Outcome, print_table, run_suite, write_junit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scenario",
        help="run scripted fault-injection scenarios (YAML files) and check the invariants",
        description="Scenarios describe an ATM session with its faults and expected outcome "
        "(docs/scenarios.md). Each runs against a fresh host on embedded SQLite over a real "
        "TCP link with simulated devices; afterwards the expectations and the money "
        "invariants (ledger, accounts, cash, reversals, counters, secrets) are checked.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("run", help="run scenario files or directories; exit 1 if any fails")
    run.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")
    run.add_argument(
        "--database-url",
        help="use this database (e.g. PostgreSQL) instead of a fresh SQLite file per "
        "scenario; scenarios then share it and run one at a time",
    )
    run.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    run.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N", help="run N scenarios at once"
    )
    run.add_argument(
        "-k", dest="select", metavar="TEXT", help="only scenarios whose name contains TEXT"
    )
    run.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a scenario may take (default 30)"
    )
    run.add_argument("-v", "--narrate", action="store_true", help="print each scenario's narration")
    run.set_defaults(func=_run)
    fuzz = verbs.add_parser(
        "fuzz",
        help="random sessions on K terminals against one host; invariants checked at the end",
        description="Seeded random customers (cards, PINs, withdrawals, inquiries, transfers, "
        "cash and cards left behind) with device and link faults injected between sessions. "
        "On failure prints the seed and writes scenario files that replay each terminal's "
        "sessions, and a shrunk one (fewest sessions that still fail).",
    )
    fuzz.add_argument("--seed", type=int, required=True)
    fuzz.add_argument("--sessions", type=int, default=100, metavar="M")
    fuzz.add_argument("--terminals", type=int, default=4, metavar="K", help="1..10 (default 4)")
    fuzz.add_argument(
        "--kills",
        type=int,
        default=0,
        metavar="N",
        help="then N sessions on ATMs of their own (the terminals after the K) whose process "
        "is SIGKILLed at a random step of a withdrawal or transfer and restarted (default 0)",
    )
    fuzz.add_argument(
        "--replay-dir", type=Path, default=Path("."), help="where replay files go on failure"
    )
    fuzz.set_defaults(func=_fuzz)
    check = verbs.add_parser("check", help="load scenario files and report errors, run nothing")
    check.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")
    check.set_defaults(func=_check)


def _load(paths: list[Path], select: str | None = None) -> list[Any] | None:
    try:
        scenarios = load_paths(paths)
    except ScenarioError as exc:
        print(f"atm scenario: {exc}", file=sys.stderr)
        return None
    if select:
        scenarios = [s for s in scenarios if select in s.name]
    return scenarios


def _check(args: argparse.Namespace) -> int:
    scenarios = _load(args.paths)
    if scenarios is None:
        return 2
    for scenario in scenarios:
        print(f"{scenario.name:<28} {len(scenario.steps):3d} steps  {scenario.path}")
    return 0


@contextlib.contextmanager
def _quiet_unless_verbose(args: argparse.Namespace) -> Iterator[None]:
    """The scenarios' own log lines (link lost, reversal queued, a device fault's traceback)
    are their narration, not problems of this command: keep them off the log handlers while
    it runs, unless ``atm -v`` (the table and the failures' narration say what went wrong)."""
    handlers = [] if getattr(args, "verbose", False) else logging.getLogger().handlers
    levels = [(handler, handler.level) for handler in handlers]
    for handler, level in levels:
        handler.setLevel(max(level, logging.CRITICAL))
    try:
        yield
    finally:
        for handler, level in levels:
            handler.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    with _quiet_unless_verbose(args):
        return _run_quietly(args)


def _run_quietly(args: argparse.Namespace) -> int:
    scenarios = _load(args.paths, args.select)
    if scenarios is None:
        return 2
    if not scenarios:
        print("atm scenario: no scenario matches", file=sys.stderr)
        return 2
    jobs = max(1, min(args.jobs, len(scenarios), os.cpu_count() or 1)) if args.jobs > 0 else 1
    if args.database_url and jobs > 1:
        print("atm scenario: one shared database: running one scenario at a time", file=sys.stderr)
        jobs = 1

    def progress(outcome: Outcome) -> None:
        if args.narrate:
            print("\n".join(outcome.output), flush=True)
        else:
            print(f"{'.' if outcome.ok else 'F'}", end="", flush=True)

    started = time.monotonic()
    outcomes = run_suite(
        scenarios,
        jobs=jobs,
        database_url=args.database_url,
        timeout=args.timeout,
        progress=progress,
    )
    seconds = time.monotonic() - started
    print()
    print_table(outcomes, seconds, jobs, sys.stdout)
    if args.junit:
        write_junit(outcomes, seconds, args.junit)
        print(f"JUnit XML written to {args.junit}")
    return 0 if all(o.ok for o in outcomes) else 1


def _fuzz(args: argparse.Namespace) -> int:
    with _quiet_unless_verbose(args):
        return _fuzz_quietly(args)


def _fuzz_quietly(args: argparse.Namespace) -> int:
    if not 1 <= args.terminals <= 10:
        print("atm scenario fuzz: --terminals must be 1..10 (seeded terminals)", file=sys.stderr)
        return 2
    if args.kills < 0 or args.terminals + args.kills > 10:
        print(
            "atm scenario fuzz: --kills needs terminals of its own: --terminals + --kills "
            "at most 10 (seeded terminals)",
            file=sys.stderr,
        )
        return 2
    if args.sessions < 1:
        print("atm scenario fuzz: --sessions must be at least 1", file=sys.stderr)
        return 2
    report = asyncio.run(
        fuzz(
            args.seed,
            args.sessions,
            args.terminals,
            kills=args.kills,
            host_config=scenario_host_config(dict(os.environ)),
            replay_dir=args.replay_dir,
            say=print,
        )
    )
    if report.ok:
        print(
            f"fuzz seed {report.seed}: {report.sessions} sessions on {report.terminals} "
            f"terminal(s)"
            + (f" and {report.kills} killed ATM process(es)" if report.kills else "")
            + f", invariants hold ({report.seconds:.1f} s)"
        )
        return 0
    print(f"fuzz seed {report.seed} FAILED ({report.seconds:.1f} s):")
    for problem in report.problems:
        print(f"   {problem}")
    for path in report.replays:
        print(f"   replay: atm scenario run {path}")
    if report.shrunk is not None:
        print(f"   shrunk: atm scenario run {report.shrunk}")
    return 1
