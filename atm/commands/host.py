"""``atm host``: run the authorization host (ISO-8583 link, ops API, statement worker);
``atm host check-ledger`` verifies the ledger; ``atm host worker`` runs only the statement
worker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import socket
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
from atm.database import database_error
from host.app import Host
from host.bank.holds import check_holds
from host.bank.ledger import check_ledger
from host.bank.seed import seed
from host.bank.statements import StatementStore, StatementWorker
from host.config import Environment, HostConfig
from host.db import create_engine_for, migrate, session_factory


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
        "--ops-cert",
        metavar="FILE",
        help="serve the ops API over HTTPS with this certificate (OPS_TLS_CERT; production "
        "requires HTTPS unless OPS_ALLOW_PLAINTEXT=true). The link's certificate will do",
    )
    parser.add_argument("--ops-key", metavar="FILE", help="its private key (OPS_TLS_KEY)")
    parser.add_argument(
        "--no-worker", action="store_true", help="do not run a statement worker in this process"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N host processes sharing the link port (SO_REUSEPORT) under a supervisor "
        "that restarts them and serves the one ops API (PostgreSQL; default 1)",
    )
    # A worker of `--workers N` binds the supervisor's port with SO_REUSEPORT.
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply the migrations before serving (off in production). Without it the host "
        "refuses a database that is missing, not migrated or behind, and says what to run",
    )
    parser.add_argument(
        "--seed",
        action="store_true",
        help="migrate, then load the seed data (idempotent) before serving (off in production)",
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
    if not 1 <= args.workers <= 64:
        raise CommandFailed("host: --workers takes 1 to 64 processes", EXIT_USAGE)
    if args.workers > 1:
        return asyncio.run(_serve_workers(config, args))
    return asyncio.run(_serve(config, args))


async def _serve_workers(config: HostConfig, args: argparse.Namespace) -> int:
    from atm.commands.host_workers import serve_workers

    created = await asyncio.to_thread(_prepare_database, config, args)
    if args.seed:
        print(f"seed: {len(created)} record(s) created", flush=True)
    return await serve_workers(config, args, args.workers)


def _prepare_database(config: HostConfig, args: argparse.Namespace) -> list[str]:
    """Migrate and seed when asked; then make sure the database can serve this code."""
    created: list[str] = []
    if args.migrate or args.seed:
        try:
            migrate(config.database_url)
            if args.seed:
                engine = create_engine_for(config.database_url)
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


def _listen_error(exc: OSError, address: str, port: int, setting: str) -> CommandFailed:
    where = f"{address}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return CommandFailed(
            f"host: cannot listen on {where}: the port is in use (another `atm host`?); "
            f"stop it or choose another port ({setting})",
            EXIT_UNAVAILABLE,
        )
    if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL):
        return CommandFailed(
            f"host: cannot listen on {where}: {address!r} is not an address of this machine "
            "(--listen / LINK_HOST, OPS_HOST: e.g. 127.0.0.1 or 0.0.0.0)",
            EXIT_USAGE,
        )
    return CommandFailed(f"host: cannot listen on {where}: {exc.strerror or exc}", EXIT_UNAVAILABLE)


async def _serve(config: HostConfig, args: argparse.Namespace) -> int:
    created = await asyncio.to_thread(_prepare_database, config, args)
    if args.seed:
        print(f"seed: {len(created)} record(s) created", flush=True)
    host = Host(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        # The ops API first: the link server logs its (TLS or plaintext) start, so a port in
        # use on either side stays the only line.
        ops_port = None
        if not args.no_ops:
            try:
                ops_port = await host.start_ops()
            except OSError as exc:
                raise _listen_error(
                    exc, config.ops_host, config.ops_port, "--ops-port / OPS_PORT, or --no-ops"
                ) from None
        try:
            port = await host.start(reuse_port=args.reuse_port)
        except OSError as exc:
            raise _listen_error(
                exc, config.link_host, config.link_port, "--port / LINK_PORT"
            ) from None
        # Printed once both listen, so a failure is the only line. The database's resolved
        # location (an absolute path; never the password: this line reaches CloudWatch),
        # so a host started from another folder says which database it uses.
        shown = database_location(config.database_url)
        print(f"host listening on {config.link_host}:{port} (database {shown})", flush=True)
        if ops_port is not None:
            https = " (HTTPS)" if config.ops_tls is not None else ""
            print(f"ops API{https} listening on {config.ops_host}:{ops_port}", flush=True)
        if not args.no_worker:
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
