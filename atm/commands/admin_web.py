"""The ``atm admin`` subcommands of the web half: ``create-operator``, ``export`` and
``import`` (bank snapshots). ``atm/commands/admin.py`` lists them in its table of
subcommands; each ``add_*`` adds its parser to the ``atm admin`` subparsers.

Passwords never come from an argument (it would sit in the shell history and in ``ps``):
``ATM_OPERATOR_PASSWORD`` or a prompt (typed twice, not echoed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from atm.commands._common import EXIT_FAILED, EXIT_USAGE, CommandFailed, open_host_database
from atm.commands._common import load_host_config as _load_config
from host.admin.operators import ROLES, create_operator
from host.admin.snapshot import (
    POLICIES,
    SnapshotError,
    export_bank,
    import_bank,
    read_snapshot,
    write_snapshot,
)
from host.config import HostConfig
from host.db import session_factory
from host.errors import BadRequest

__all__ = ["PASSWORD_VARIABLE", "add_create_operator", "add_export", "add_import"]

# The name of the variable, not a password (ruff S105 and bandit B105 flag the literal).
PASSWORD_VARIABLE = "ATM_OPERATOR_PASSWORD"  # noqa: S105  # nosec B105
# Called after an import, inside its transaction, to audit it (set by atm/commands/admin.py).
ImportAudit = Callable[[Session, dict[str, Any], str], None]


def _config(args: argparse.Namespace) -> HostConfig:
    config = _load_config({"DATABASE_URL": args.database_url})
    if config is None:
        raise CommandFailed("admin: the configuration has problems (above)", EXIT_USAGE)
    return config


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def add_create_operator(sub: Any) -> None:
    p = sub.add_parser(
        "create-operator",
        help="create an operator of the admin panel",
        description="Create an operator who can log in at /admin/ on the ops port. The "
        f"password comes from {PASSWORD_VARIABLE} or a prompt (typed twice), never from an "
        "argument; 12 to 72 bytes.",
    )
    p.add_argument("name", help="the login name (letters, digits, . _ - @)")
    p.add_argument("--role", required=True, choices=ROLES, help="viewer, operator or admin")
    p.add_argument("--database-url", help="override DATABASE_URL")
    p.set_defaults(func=run_create_operator)


def _password() -> str:
    from_env = os.environ.get(PASSWORD_VARIABLE)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CommandFailed(
            f"admin create-operator: no terminal to ask for the password: set {PASSWORD_VARIABLE}",
            EXIT_USAGE,
        )
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CommandFailed("admin create-operator: the two passwords differ", EXIT_USAGE)
    return first


def run_create_operator(args: argparse.Namespace) -> int:
    config = _config(args)
    password = _password()
    engine = open_host_database(config, "admin create-operator")
    try:
        with session_factory(engine).begin() as session:
            view = create_operator(
                session, args.name, args.role, password, rounds=config.bcrypt_rounds, now=_now()
            )
    except BadRequest as exc:
        raise CommandFailed(f"admin create-operator: {exc}", EXIT_USAGE) from exc
    finally:
        engine.dispose()
    print(f"operator {view.name} created ({view.role})")
    return 0


def add_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a bank snapshot (JSON) to a file or s3://BUCKET/KEY",
        description="Export customers, accounts (with balances) and cards as JSON. PIN "
        "hashes only with --pin-hashes. DEST is a file path, s3://BUCKET/KEY (boto3, the s3 "
        "extra; AWS credentials from the environment) or - for standard output.",
    )
    p.add_argument("dest", help="file, s3://BUCKET/KEY or -")
    p.add_argument("--pin-hashes", action="store_true", help="include the cards' PIN hashes")
    p.add_argument("--database-url", help="override DATABASE_URL")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = open_host_database(config, "admin export")
    try:
        with session_factory(engine)() as session:
            document = export_bank(session, now=_now(), with_pin_hashes=args.pin_hashes)
    finally:
        engine.dispose()
    if args.dest == "-":
        json.dump(document, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    try:
        where = write_snapshot(document, args.dest)
    except SnapshotError as exc:
        raise CommandFailed(f"admin export: {exc}", EXIT_FAILED) from exc
    customers = document["customers"]
    accounts = sum(len(c["accounts"]) for c in customers)
    cards = sum(len(c["cards"]) for c in customers)
    hashes = "with" if args.pin_hashes else "without"
    print(
        f"exported {len(customers)} customers, {accounts} accounts, {cards} cards "
        f"({hashes} PIN hashes) to {where}"
    )
    return 0


def add_import(sub: Any, audit: ImportAudit | None = None) -> None:
    p = sub.add_parser(
        "import",
        help="load a bank snapshot from a file or s3://BUCKET/KEY",
        description="Import a snapshot written by `atm admin export`, all or nothing. "
        "--on-conflict skip leaves existing customers' accounts and cards alone; replace makes "
        "them match the snapshot. Balances change through the ledger (posted against the "
        "bank's equity account), so `atm host check-ledger` stays clean.",
    )
    p.add_argument("source", help="file or s3://BUCKET/KEY")
    p.add_argument("--on-conflict", choices=POLICIES, required=True, dest="policy")
    p.add_argument("--database-url", help="override DATABASE_URL")
    p.set_defaults(func=run_import, audit=audit)


def run_import(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        document = read_snapshot(args.source)
    except SnapshotError as exc:
        raise CommandFailed(f"admin import: {exc}", EXIT_USAGE) from exc
    engine = open_host_database(config, "admin import")
    try:
        with session_factory(engine).begin() as session:
            report = import_bank(session, document, policy=args.policy)
            if args.audit is not None:
                args.audit(session, report.as_dict(), args.source)
    except BadRequest as exc:
        raise CommandFailed(f"admin import: {args.source}: {exc}", EXIT_USAGE) from exc
    finally:
        engine.dispose()
    print(
        f"imported {args.source} ({args.policy}): {len(report.created)} created, "
        f"{len(report.replaced)} replaced, {len(report.skipped)} skipped, "
        f"balances moved {report.moved_cents} cents"
    )
    for line in report.created:
        print(f"created {line}")
    for line in report.replaced:
        print(f"replaced {line}")
    return 0
