"""``atm db upgrade`` and ``atm db seed``; ``display_url``, the only form in which a command
prints or logs a database URL."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, SQLAlchemyError

from atm.commands._common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    database_location,
    load_host_config,
)
from host.db import create_engine_for, migrate, session_factory
from host.seed import seed

__all__ = ["database_error", "display_url", "register"]


def display_url(url: str) -> str:
    """``url`` with its password masked (``***``), for output and logs: the database password
    must not reach a terminal, a CI log or CloudWatch."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def database_error(exc: SQLAlchemyError, url: str) -> str:
    """One line for a failed database operation: the driver's own message (it names the
    server, not the password; scrubbed all the same) after the masked URL."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
    line = f"database at {display_url(url)}: {reason[0]}"
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        line = line.replace(str(password), "***")
    return line


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
        p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = load_host_config({"DATABASE_URL": args.database_url})
    if config is None:
        return EXIT_USAGE
    shown = database_location(config.database_url)
    try:
        migrate(config.database_url)
        if args.db_command == "upgrade":
            print(f"database ({shown}) is at the newest revision")
            return 0
        engine = create_engine_for(config.database_url)
        try:
            with session_factory(engine).begin() as session:
                created = seed(
                    session, pin_pepper=config.pin_pepper, bcrypt_rounds=config.bcrypt_rounds
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
