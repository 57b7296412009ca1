"""``atm db upgrade`` and ``atm db seed``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from atm.commands._common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    database_location,
    load_host_config,
)
from atm.database import database_error
from host.bank.seed import seed
from host.db import create_engine_for, migrate, session_factory
from host.environment import Environment

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "db",
        help="migrate or seed the host database",
        description="Database maintenance for the host (DATABASE_URL, embedded SQLite by default).",
    )
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("upgrade", "apply the Alembic migrations up to the newest (alembic upgrade head)"),
        (
            "seed",
            "load the seed customers, accounts, cards and terminals (idempotent; "
            "also migrates first)",
        ),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--database-url", help="override DATABASE_URL")
        if name == "seed":
            p.add_argument(
                "--terminals",
                type=int,
                default=10,
                help="register terminals ATM00001..N (at least the ten seed ones; for atm fleet)",
            )
            p.add_argument(
                "--allow-production",
                action="store_true",
                help="seed even with ENVIRONMENT=production (the seed cards have known PINs)",
            )
        p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = load_host_config({"DATABASE_URL": args.database_url})
    if config is None:
        return EXIT_USAGE
    if (
        args.db_command == "seed"
        and config.environment is Environment.PRODUCTION
        and not args.allow_production
    ):
        print(
            "atm: db seed: refused in production: the seed cards have published PINs "
            "(pass --allow-production to seed all the same)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    shown = database_location(config.database_url)
    try:
        migrate(config.database_url)
        if args.db_command == "upgrade":
            print(f"database ({shown}) is at the newest revision")
            return 0
        engine = create_engine_for(
            config.database_url, prepared_statements=config.database_prepared_statements
        )
        try:
            with session_factory(engine).begin() as session:
                created = seed(
                    session,
                    pin_pepper=config.pin_pepper,
                    bcrypt_rounds=config.bcrypt_rounds,
                    terminals=args.terminals,
                )
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        print(
            f"atm: db {args.db_command}: {database_error(exc, config.database_url)}",
            file=sys.stderr,
        )
        unreachable = isinstance(exc, OperationalError | InterfaceError)
        return EXIT_UNAVAILABLE if unreachable else EXIT_FAILED
    for line in created:
        print(f"created {line}")
    print(f"seed complete: {len(created)} record(s) created")
    return 0
