"""``atm host``: run the authorization host (ISO-8583 link, ops API, statement worker);
``atm host check-ledger`` verifies the ledger; ``atm host worker`` runs only the statement
worker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from atm.commands._common import load_host_config
from atm.database import database_error, display_url
from host.app import Host
from host.bank.holds import check_holds
from host.bank.ledger import check_ledger
from host.bank.statements import StatementStore, StatementWorker
from host.config import HostConfig
from host.db import create_engine_for, session_factory


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "host",
        help="run the authorization host (ISO-8583 over TCP, ops API, statement worker)",
        description="Run the authorization host: the ISO-8583 link on LINK_PORT, the ops API "
        "on OPS_PORT and a statement worker. Configuration comes from the environment (see "
        ".env.example); the options below override it. Subcommands: check-ledger, worker.",
    )
    _common_options(parser)
    parser.add_argument("--listen", help="address to listen on (LINK_HOST)")
    parser.add_argument("--port", help="ISO link port (LINK_PORT, default 8583; 0 = any free)")
    parser.add_argument("--ops-port", help="ops API port (OPS_PORT, default 8080; 0 = any free)")
    parser.add_argument("--no-ops", action="store_true", help="do not serve the ops API")
    parser.add_argument(
        "--no-worker", action="store_true", help="do not run a statement worker in this process"
    )
    parser.add_argument(
        "--migrate", action="store_true", help="apply migrations and seed before serving"
    )
    parser.set_defaults(func=_serve_command)
    sub = parser.add_subparsers(dest="host_command", metavar="ACTION")
    check = sub.add_parser(
        "check-ledger",
        help="verify the ledger's invariants; exit 1 and list the offending rows if broken",
        description="Check DESIGN invariants 1 and 3: all entries sum to zero, every posting "
        "balances, every balance equals the sum of its entries, every reversal points at one "
        "original and gives back no more than it took. Exit 0 when clean, 1 with one line per "
        "problem.",
    )
    _common_options(check, sub=True)
    check.set_defaults(func=_check_ledger)
    worker = sub.add_parser(
        "worker",
        help="run only the statement worker (claims queued jobs, writes PDFs)",
        description="Claim statement jobs from the database queue and write their PDFs to "
        "STATEMENT_OUTPUT_DIR or STATEMENT_S3_BUCKET. Several workers may run at once.",
    )
    _common_options(worker, sub=True)
    worker.add_argument(
        "--once", action="store_true", help="work through the queue once, then exit"
    )
    worker.set_defaults(func=_worker)


def _common_options(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # SUPPRESS on the subcommands, so `atm host --database-url X check-ledger` keeps X.
    parser.add_argument(
        "--database-url",
        help="override DATABASE_URL",
        default=argparse.SUPPRESS if sub else None,
    )


def _config(args: argparse.Namespace, **extra: str | None) -> HostConfig | None:
    config = load_host_config({"DATABASE_URL": args.database_url, **extra})
    if config is not None:
        logging.getLogger().setLevel(config.log_level)
    return config


def _serve_command(args: argparse.Namespace) -> int:
    config = _config(args, LINK_HOST=args.listen, LINK_PORT=args.port, OPS_PORT=args.ops_port)
    if config is None:
        return 2
    return asyncio.run(_serve(config, args))


async def _serve(config: HostConfig, args: argparse.Namespace) -> int:
    host = Host(config)
    if args.migrate:
        try:
            await asyncio.to_thread(host.upgrade_and_seed)
        except SQLAlchemyError as exc:
            print(
                f"atm: host --migrate: {database_error(exc, config.database_url)}", file=sys.stderr
            )
            await host.close()
            return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        port = await host.start()
        shown = display_url(config.database_url)  # never the password: this reaches CloudWatch
        print(f"host listening on {config.link_host}:{port} (database {shown})", flush=True)
        if not args.no_ops:
            ops_port = await host.start_ops()
            print(f"ops API listening on {config.ops_host}:{ops_port}", flush=True)
        if not args.no_worker:
            host.start_worker()
        await stop.wait()
    finally:
        await host.close()
    return 0


def _check_ledger(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 2
    engine = create_engine_for(config.database_url)
    try:
        with session_factory(engine)() as session:
            problems = check_ledger(session) + check_holds(session)
    finally:
        engine.dispose()
    if not problems:
        print("ledger ok: entries sum to zero, postings balance, balances match their entries")
        return 0
    for problem in problems:
        print(f"{problem.what}: {problem.detail}")
    print(f"ledger check failed: {len(problems)} problem(s)", file=sys.stderr)
    return 1


def _worker(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 2
    engine = create_engine_for(config.database_url)
    worker = StatementWorker(session_factory(engine), StatementStore(config))
    try:
        if args.once:
            print(f"{worker.run_pending()} statement(s) produced")
            return 0
        stop = threading.Event()

        def _stop(*_: object) -> None:
            stop.set()
            worker.wake.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _stop)
        print("statement worker running", flush=True)
        worker.serve(stop)
        return 0
    finally:
        engine.dispose()
