"""``atm demo``: a host and one simulated ATM on this machine, running a scripted session."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from atm.commands._common import load_host_config
from atm.demo import SCRIPTS, run_demo
from atm.devices import DEVICE_SETS
from drivers.registry import DISPENSER_MODELS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a scripted ATM session against a fresh embedded host",
        description="Start the host on a fresh embedded SQLite database (migrated and seeded), "
        "connect one simulated ATM over a real TCP socket and run a scripted customer session, "
        "printing every screen, every host-link message (PAN masked, PIN block hidden), the "
        "receipt and the balances. Exit code 0 when the script ran as expected.",
    )
    parser.add_argument(
        "--script", default="withdraw-alice", help="script to run (default: withdraw-alice)"
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
    parser.add_argument("--list-scripts", action="store_true", help="list the scripts and exit")
    parser.add_argument(
        "--database-url", help="use this database instead of a fresh SQLite file (kept)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list_scripts:
        for script in SCRIPTS.values():
            print(f"{script.name:<22} {script.description}")
        return 0
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
    result = asyncio.run(
        run_demo(
            script,
            out=sys.stdout,
            database_url=args.database_url,
            host_config=config,
            devices=args.devices,
            dispenser_model=args.dispenser,
        )
    )
    return 0 if result.ok else 1
