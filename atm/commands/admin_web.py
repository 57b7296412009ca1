"""The ``atm admin`` subcommands of the web half: ``create-operator``, ``operators`` and
``operator`` (the admin panel's operators: list, role, deactivate, reactivate, password
reset), ``export`` and ``import`` (bank snapshots). ``atm/commands/admin.py`` lists
them in its ``SUBCOMMANDS`` table; each is an arguments function and a run function.

An operator's password never comes from an argument (it would sit in the shell history and
in ``ps``): ``ATM_OPERATOR_PASSWORD`` or a prompt, typed twice without echo. Each change
writes an audit row as the CLI's actor (``--actor``), in the same transaction. The command
line is also the way back in when no admin can log in (a forgotten password): it may act on
any operator, as whoever runs it can reach the database anyway.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from host.admin.operators import (
    ROLES,
    OperatorView,
    audited_change,
    create_operator,
    list_operators,
    operator_state,
    reset_password,
    set_operator_active,
    set_operator_role,
)
from host.admin.snapshot import (
    POLICIES,
    SnapshotError,
    export_bank,
    import_bank,
    read_snapshot,
    write_snapshot,
)
from host.bank.audit import record
from host.errors import BadRequest

if TYPE_CHECKING:  # admin.py imports this module for its table
    from atm.commands.admin import AdminContext

__all__ = [
    "PASSWORD_VARIABLE",
    "create_operator_arguments",
    "export_arguments",
    "import_arguments",
    "operator_arguments",
    "run_create_operator",
    "run_export",
    "run_import",
    "run_operator",
    "run_operators",
]

# The name of the variable, not a password (ruff S105 and bandit B105 flag the literal).
PASSWORD_VARIABLE = "ATM_OPERATOR_PASSWORD"  # noqa: S105  # nosec B105


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_operator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the login name (letters, digits, . _ - @)")
    parser.add_argument("--role", required=True, choices=ROLES, help="viewer, operator or admin")


def _password() -> str:
    from_env = os.environ.get(PASSWORD_VARIABLE)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise BadRequest(f"no password: set {PASSWORD_VARIABLE} or run on a terminal to be asked")
    first = getpass.getpass("password: ")
    if getpass.getpass("password again: ") != first:
        raise BadRequest("the two passwords differ")
    return first


def run_create_operator(ctx: AdminContext, args: argparse.Namespace) -> int:
    password = _password()
    with ctx.sessions.begin() as session:
        view = create_operator(
            session, args.name, args.role, password, rounds=ctx.config.bcrypt_rounds, now=_now()
        )
        record(session, ctx.actor, "operator.create", f"operator {view.name}", None,
               operator_state(view))  # fmt: skip
    print(f"operator {view.name} created ({view.role})", file=ctx.out)
    return 0


def _describe(view: OperatorView) -> str:
    state = [view.role, "active" if view.active else "deactivated"]
    if view.password_change_required:
        state.append("password change due")
    if view.locked_until is not None and view.locked_until > _now():
        state.append(f"locked until {view.locked_until:%Y-%m-%d %H:%M:%S} UTC")
    return f"{view.name}  {', '.join(state)}"


def run_operators(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions() as session:
        for view in list_operators(session):
            print(_describe(view), file=ctx.out)
    return 0


def operator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the operator's login name")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--role", choices=ROLES, help="give the operator this role")
    what.add_argument("--deactivate", action="store_true", help="stop them (sessions end)")
    what.add_argument("--reactivate", action="store_true", help="let them log in again")
    what.add_argument(
        "--reset-password",
        action="store_true",
        help=f"set a password (from {PASSWORD_VARIABLE} or a prompt) they change at next login",
    )


def run_operator(ctx: AdminContext, args: argparse.Namespace) -> int:
    change: Callable[[Session, str], OperatorView]
    if args.role:
        action, change = "operator.set_role", functools.partial(set_operator_role, role=args.role)
    elif args.reset_password:
        action = "operator.reset_password"
        change = functools.partial(
            reset_password, password=_password(), rounds=ctx.config.bcrypt_rounds
        )
    else:
        active = bool(args.reactivate)
        action = "operator.reactivate" if active else "operator.deactivate"
        change = functools.partial(set_operator_active, active=active)
    with ctx.sessions.begin() as session:
        view = audited_change(session, ctx.actor, action, args.name, change)
    print(_describe(view), file=ctx.out)
    return 0


def export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", help="a file, s3://BUCKET/KEY (the s3 extra) or - for stdout")
    parser.add_argument("--pin-hashes", action="store_true", help="include the cards' PIN hashes")


def run_export(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions.begin() as session:
        document = export_bank(session, now=_now(), with_pin_hashes=args.pin_hashes)
        if args.dest == "-":
            where = "standard output"
            json.dump(document, ctx.out, indent=2, sort_keys=True)
            ctx.out.write("\n")
        else:
            try:
                where = write_snapshot(document, args.dest)
            except SnapshotError as exc:
                raise BadRequest(str(exc)) from exc
        customers = document["customers"]
        counts = {
            "customers": len(customers),
            "accounts": sum(len(c["accounts"]) for c in customers),
            "cards": sum(len(c["cards"]) for c in customers),
            "pin_hashes": args.pin_hashes,
            "to": where[:200],
        }
        # Audited once it is written: an export with PIN hashes is worth knowing about.
        record(session, ctx.actor, "bank.export", "bank", None, counts)
    if args.dest != "-":
        hashes = "with" if args.pin_hashes else "without"
        print(
            f"exported {counts['customers']} customers, {counts['accounts']} accounts, "
            f"{counts['cards']} cards ({hashes} PIN hashes) to {where}",
            file=ctx.out,
        )
    return 0


def import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a file or s3://BUCKET/KEY written by `atm admin export`")
    parser.add_argument(
        "--on-conflict",
        choices=POLICIES,
        required=True,
        dest="policy",
        help="skip: leave existing accounts and cards alone; replace: make them match",
    )


def run_import(ctx: AdminContext, args: argparse.Namespace) -> int:
    try:
        document = read_snapshot(args.source)
    except SnapshotError as exc:
        raise BadRequest(str(exc)) from exc
    with ctx.sessions.begin() as session:
        try:
            report = import_bank(session, document, policy=args.policy)
        except BadRequest as exc:
            raise BadRequest(f"{args.source}: {exc}") from exc
        record(session, ctx.actor, "bank.import", "bank", None, report.summary(args.source))
    print(
        f"imported {args.source} ({args.policy}): {len(report.created)} created, "
        f"{len(report.replaced)} replaced, {len(report.skipped)} skipped, "
        f"balances moved {report.moved_cents} cents",
        file=ctx.out,
    )
    for line in report.created:
        print(f"created {line}", file=ctx.out)
    for line in report.replaced:
        print(f"replaced {line}", file=ctx.out)
    return 0
