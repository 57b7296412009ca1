"""``atm demo``: a host and one simulated ATM on this machine, running a scripted session."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from atm.commands._common import load_host_config
from atm.demo import SCRIPTS, run_demo
from atm.devices import DEVICE_SETS, KINDS
from atm.steps import add_link_log_option, open_link_log
from atm.trace import add_trace_option, enable_trace
from drivers.registry import DISPENSER_MODELS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a scripted ATM session against a fresh embedded host",
        description="Start the host on a fresh embedded SQLite database (migrated and seeded), "
        "connect one simulated ATM over a real TCP socket and run a scripted customer session, "
        "printing every screen, every host-link message (PAN masked, PIN block hidden), the "
        "receipt and the balances. Exit code 0 when the script ran as expected. Without "
        "--script, in an interactive terminal, the console opens on that host instead (see "
        "`atm console --help`).",
    )
    parser.add_argument(
        "--script",
        help="script to run; without it an interactive terminal opens the console (`atm "
        "console` on this fresh host) and anything else runs withdraw-alice",
    )
    parser.add_argument(
        "--devices",
        choices=sorted(DEVICE_SETS),
        default="sim",
        help="sim: in-process simulated devices (default); serial: the four device "
        "simulators on pseudo-terminals, driven through the real serial drivers",
    )
    parser.add_argument(
        "--dispenser",
        type=str.lower,
        choices=DISPENSER_MODELS,
        help="run the dispenser as this Puloon model's simulator on a pseudo-terminal, driven "
        "through its serial driver (lcdm-2000 or lcdm-4000; other devices as --devices says)",
    )
    parser.add_argument(
        "--web",
        type=int,
        metavar="PORT",
        help="serve the ATM's front panel in a browser at http://127.0.0.1:PORT (a fresh "
        "embedded host and simulated devices) until Ctrl-C, instead of a scripted session",
    )
    parser.add_argument("--list-scripts", action="store_true", help="list the scripts and exit")
    add_link_log_option(parser)
    add_trace_option(parser)
    parser.add_argument(
        "--database-url", help="use this database instead of a fresh SQLite file (kept)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list_scripts:
        for script in SCRIPTS.values():
            print(f"{script.name:<22} {script.description}")
        return 0
    if args.web is not None:
        return _web(args)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.script is None and interactive:
        return _console(args)
    if args.script is None:
        args.script = "withdraw-alice"
    if args.script not in SCRIPTS:
        print(
            f"atm demo: unknown script {args.script!r}; known: {', '.join(SCRIPTS)}",
            file=sys.stderr,
        )
        return 2
    script = SCRIPTS[args.script]
    config = load_host_config()
    if config is None:
        return 2
    if args.trace:
        enable_trace()
    with open_link_log(args.link_log, "demo") as link_say:
        result = asyncio.run(
            run_demo(
                script,
                out=sys.stdout,
                database_url=args.database_url,
                host_config=config,
                devices=args.devices,
                dispenser_model=args.dispenser,
                link_say=link_say,
            )
        )
    return 0 if result.ok else 1


def _bench_options(args: argparse.Namespace) -> Any:
    from atm.frontpanel import BenchOptions

    urls = dict.fromkeys(KINDS, DEVICE_SETS[args.devices])
    if args.dispenser is not None:
        urls["dispenser"] = f"pty?model={args.dispenser}"
    return BenchOptions(urls=urls, database_url=args.database_url)


def _console(args: argparse.Namespace) -> int:
    """The demo without a script, in a terminal: the console on a fresh embedded host."""
    from atm.commands.console import run_console

    config = load_host_config()
    if config is None:
        return 2
    return asyncio.run(run_console(_bench_options(args), config))


def _web(args: argparse.Namespace) -> int:
    """``atm demo --web PORT``: the web front panel on a fresh embedded host."""
    from atm.commands.console import run_web, web_port

    if args.script is not None:
        print("atm demo: --web serves the front panel; it takes no --script", file=sys.stderr)
        return 2
    port = web_port(args.web, "atm demo")
    config = load_host_config()
    if port is None or config is None:
        return 2
    return asyncio.run(run_web(_bench_options(args), config, port))
