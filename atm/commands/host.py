"""``atm host``: run the authorization host (ISO-8583 link, ops API, statement worker);
``atm host check-ledger`` verifies the ledger; ``atm host worker`` runs only the statement
worker."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from atm.commands._common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandFailed,
    database_location,
    load_host_config,
    open_host_database,
)
from atm.commands._host_serve import (
    ServeOptions,
    add_serve_options,
    announce,
    listen_error,
    run_loop,
    start_ops,
)
from atm.commands._signals import stop_on_signals
from atm.commands.host_workers import serve_workers
from atm.database import database_error
from host.app import Host
from host.bank.holds import check_holds
from host.bank.ledger import check_ledger
from host.bank.seed import seed
from host.bank.statements import StatementStore, StatementWorker
from host.config import Environment, HostConfig
from host.db import create_engine_for, migrate, session_factory
from host.link.server import StepHook


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "host",
        help="run the authorization host (ISO-8583 over TCP, ops API, statement worker)",
        description="Run the authorization host: the ISO-8583 link on LINK_PORT, the ops API "
        "on OPS_PORT and a statement worker. Configuration comes from the environment (see "
        ".env.example); the options below override it. Subcommands: check-ledger, worker.",
    )
    _common_options(parser)
    add_serve_options(parser)
    parser.set_defaults(func=serve)
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


def serve(args: argparse.Namespace, steps: StepHook | None = None) -> int:
    """``atm host``. ``steps``: a test harness's hook into the link server
    (``atm.scenario.hostcrash``), for one host process (``--workers 1``)."""
    config = _config(
        args,
        LINK_HOST=args.listen,
        LINK_PORT=args.port,
        OPS_PORT=args.ops_port,
        OPS_TLS_CERT=args.ops_cert,
        OPS_TLS_KEY=args.ops_key,
    )
    if config is None:
        return EXIT_USAGE
    if (args.migrate or args.seed) and config.environment is Environment.PRODUCTION:
        raise CommandFailed(
            "host: --migrate and --seed are off in production: migrate with `atm db upgrade` "
            "(the migration task) before starting the host",
            EXIT_USAGE,
        )
    options = ServeOptions.from_args(args)
    created = _prepare_database(config, options)
    if options.seed:
        print(f"seed: {len(created)} record(s) created", flush=True)
    if options.workers > 1:
        if steps is not None:  # the hook lives in this process; the workers are others
            raise CommandFailed("host: the link's step hook needs --workers 1", EXIT_USAGE)
        return run_loop(serve_workers(config, options), options.loop)
    return run_loop(_serve(config, options, steps), options.loop)


def _prepare_database(config: HostConfig, options: ServeOptions) -> list[str]:
    """Migrate and seed when asked; then make sure the database can serve this code."""
    created: list[str] = []
    if options.migrate or options.seed:
        try:
            migrate(config.database_url)
            if options.seed:
                engine = create_engine_for(
                    config.database_url, prepared_statements=config.database_prepared_statements
                )
                try:
                    with session_factory(engine).begin() as session:
                        created = seed(
                            session,
                            pin_pepper=config.pin_pepper,
                            bcrypt_rounds=config.bcrypt_rounds,
                        )
                finally:
                    engine.dispose()
        except SQLAlchemyError as exc:
            raise CommandFailed(
                f"host --migrate: {database_error(exc, config.database_url)}", EXIT_UNAVAILABLE
            ) from exc
    open_host_database(config, "host").dispose()
    return created


async def _serve(config: HostConfig, options: ServeOptions, steps: StepHook | None) -> int:
    """One host process: the link, the ops API and the statement worker (unless told not)."""
    host = Host(config, steps=steps)
    stop = stop_on_signals()
    try:
        # The ops API first: the link server logs its (TLS or plaintext) start, so a port in
        # use on either side stays the only line.
        ops_port = await start_ops(host, config, options)
        try:
            port = await host.start(reuse_port=options.reuse_port)
        except OSError as exc:
            raise listen_error(
                exc, config.link_host, config.link_port, "--port / LINK_PORT"
            ) from None
        announce(config, port, ops_port)
        if options.statement_worker:
            host.start_worker()
        await stop.wait()
    finally:
        await host.close()
    return 0


def _check_ledger(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    engine = open_host_database(config, "host check-ledger")
    print(f"database: {database_location(config.database_url)}", file=sys.stderr)
    try:
        with session_factory(engine)() as session:
            problems = check_ledger(session) + check_holds(session)
    except SQLAlchemyError as exc:
        raise CommandFailed(
            f"host check-ledger: {database_error(exc, config.database_url)}", EXIT_UNAVAILABLE
        ) from exc
    finally:
        engine.dispose()
    if not problems:
        print("ledger ok: entries sum to zero, postings balance, balances match their entries")
        return 0
    for problem in problems:
        print(f"{problem.what}: {problem.detail}")
    print(f"ledger check failed: {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_FAILED


def _worker(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    engine = open_host_database(config, "host worker")
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
