"""``atm admin ...``: the bank operations of ``host.bank.controls`` from the command line.

Subcommands are a table (``SUBCOMMANDS``): each has a name, a help line, a function adding
its arguments and a function running it on an open database session. Add one by appending a
``Subcommand``. Every change is audited with the actor ``--actor`` (default: the login name),
role admin, source "cli". A PIN (``issue-card``, ``reset-pin``) is read from the environment
variable ``ATM_ADMIN_PIN`` or prompted for twice without echo; never from an argument.
Bad input or a refused operation: one line on stderr, exit 2 (unknown record too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy.orm import Session, sessionmaker

from atm.commands import admin_web
from atm.commands._common import EXIT_USAGE, load_host_config, open_host_database
from host.bank import controls
from host.bank.audit import Actor, list_audit, write_csv
from host.config import HostConfig
from host.db import session_factory
from host.errors import HostError

__all__ = ["PIN_ENV", "SUBCOMMANDS", "AdminContext", "Subcommand", "register"]

PIN_ENV = "ATM_ADMIN_PIN"


@dataclass
class AdminContext:
    """What a subcommand runs with."""

    sessions: sessionmaker[Session]
    config: HostConfig
    actor: Actor
    out: TextIO


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[AdminContext, argparse.Namespace], int]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _when(value: str | None) -> str:
    return value if value else "-"


def _time(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _read_pin() -> str:
    pin = os.environ.get(PIN_ENV)
    if pin is not None:
        return pin
    if not sys.stdin.isatty():
        raise HostError(f"no PIN: set {PIN_ENV} or run on a terminal to be asked")
    first = getpass.getpass("new PIN: ")
    if getpass.getpass("new PIN again: ") != first:
        raise HostError("the two PINs differ")
    return first


def _setting(ctx: AdminContext) -> controls.PinSetting:
    return controls.PinSetting(ctx.config.pin_pepper, ctx.config.bcrypt_rounds)


# -- reading --------------------------------------------------------------------------------
def _customers(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions() as session:
        for c in controls.list_customers(session):
            state = "active" if c.active else "deactivated"
            accounts = ",".join(c.accounts) or "-"
            print(f"{c.id:>5}  {c.name:<30} {state:<11} {accounts}", file=ctx.out)
    return 0


def _customer_filter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customer", type=int, help="only this customer's (id)")


def _accounts(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions() as session:
        for a in controls.list_accounts(session, customer_id=args.customer):
            print(
                f"{a.number:<16} {a.kind:<9} {a.status:<7} balance {a.balance_cents:>12} "
                f"available {a.available_cents:>12}  {a.customer}",
                file=ctx.out,
            )
    return 0


def _cards(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions() as session:
        for c in controls.list_cards(session, customer_id=args.customer):
            flags = " pin-change-required" if c.pin_change_required else ""
            accounts = ",".join(number for _, number in c.accounts)
            print(
                f"{c.masked_pan:<19} {c.status:<8} exp {c.expiry} {c.customer:<20} "
                f"{accounts}{flags}",
                file=ctx.out,
            )
    return 0


def _terminals(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions() as session:
        maintenance = controls.maintenance_mode(session)
        for t in controls.list_terminals(session):
            service = "in-service" if t.in_service else "OUT-OF-SERVICE"
            due = " key-change-due" if t.key_change_due else ""
            print(
                f"{t.terminal_id} {service:<14} scheme {_when(t.key_scheme)} "
                f"TPK KCV {_when(t.tpk_kcv)} TAK KCV {_when(t.tak_kcv)} "
                f"signed on {_time(t.last_sign_on_at)} last {_time(t.last_message_at)} "
                f"{_when(t.last_message)}{due}",
                file=ctx.out,
            )
    if maintenance:
        print("the bank is in maintenance mode: every request is declined 90", file=ctx.out)
    return 0


# -- changing -------------------------------------------------------------------------------
def _change(
    ctx: AdminContext, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:  # one transaction per operation: all of it, audit row included, or nothing
    with ctx.sessions.begin() as session:
        return fn(session, ctx.actor, *args, **kwargs)


def _customer_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customer", type=int, metavar="CUSTOMER_ID")


def _account(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("account", metavar="ACCOUNT", help="account number, e.g. 1000-0001-0001")


def _pan(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pan", metavar="PAN", help="the card number")


def _name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")


def _rename_arguments(parser: argparse.ArgumentParser) -> None:
    _customer_id(parser)
    parser.add_argument("--name", required=True)


def _open_account_arguments(parser: argparse.ArgumentParser) -> None:
    _customer_id(parser)
    parser.add_argument("--kind", choices=controls.ACCOUNT_KINDS, required=True)


def _issue_card_arguments(parser: argparse.ArgumentParser) -> None:
    _customer_id(parser)
    parser.add_argument("--account", action="append", required=True, help="an account it reaches")


def _create_customer(ctx: AdminContext, args: argparse.Namespace) -> int:
    view = _change(ctx, controls.create_customer, args.name)
    print(f"customer {view.id} created: {view.name}", file=ctx.out)
    return 0


def _update_customer(ctx: AdminContext, args: argparse.Namespace) -> int:
    view = _change(ctx, controls.update_customer, args.customer, name=args.name)
    print(f"customer {view.id} renamed: {view.name}", file=ctx.out)
    return 0


def _customer_state(fn: Callable[..., controls.CustomerView], word: str) -> Callable[..., int]:
    def run(ctx: AdminContext, args: argparse.Namespace) -> int:
        view = _change(ctx, fn, args.customer)
        print(f"customer {view.id} {word}", file=ctx.out)
        return 0

    return run


def _open_account(ctx: AdminContext, args: argparse.Namespace) -> int:
    view = _change(ctx, controls.open_account, args.customer, args.kind)
    print(f"account {view.number} ({view.kind}) opened", file=ctx.out)
    return 0


def _account_state(fn: Callable[..., controls.AccountView]) -> Callable[..., int]:
    def run(ctx: AdminContext, args: argparse.Namespace) -> int:
        view = _change(ctx, fn, args.account)
        print(f"account {view.number} {view.status}", file=ctx.out)
        return 0

    return run


def _issue_card(ctx: AdminContext, args: argparse.Namespace) -> int:
    pin = _read_pin()
    pan = _change(ctx, controls.issue_card, args.customer, args.account, pin, _setting(ctx))
    # The one place the full number is shown: the operator needs it for the card itself.
    print(f"card {pan} issued (the PIN must be changed at first use)", file=ctx.out)
    return 0


def _block_card(ctx: AdminContext, args: argparse.Namespace) -> int:
    view = _change(ctx, controls.block_card, args.pan)
    print(f"card {view.masked_pan} blocked", file=ctx.out)
    return 0


def _report_card_arguments(parser: argparse.ArgumentParser) -> None:
    _pan(parser)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--lost", action="store_true", help="captured at next use (41)")
    how.add_argument("--stolen", action="store_true", help="captured at next use (43)")


def _report_card(ctx: AdminContext, args: argparse.Namespace) -> int:
    fn = controls.report_card_stolen if args.stolen else controls.report_card_lost
    view = _change(ctx, fn, args.pan)
    print(f"card {view.masked_pan} reported {view.status}", file=ctx.out)
    return 0


def _replace_card(ctx: AdminContext, args: argparse.Namespace) -> int:
    new = _change(ctx, controls.replace_card, args.pan)
    print(f"card {new} issued to replace it", file=ctx.out)
    return 0


def _reset_pin(ctx: AdminContext, args: argparse.Namespace) -> int:
    pin = _read_pin()
    view = _change(ctx, controls.reset_pin, args.pan, pin, _setting(ctx))
    print(f"PIN of card {view.masked_pan} reset; to be changed at the next use", file=ctx.out)
    return 0


def _terminal_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("terminal", metavar="TID", help="terminal ID, e.g. ATM00001")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--out-of-service", action="store_true", help="stop it (89)")
    what.add_argument("--in-service", action="store_true", help="let it serve again")
    what.add_argument("--key-change", action="store_true", help="force new working keys")


def _terminal(ctx: AdminContext, args: argparse.Namespace) -> int:
    if args.out_of_service:
        fn: Callable[..., controls.TerminalView] = controls.terminal_out_of_service
    elif args.in_service:
        fn = controls.terminal_in_service
    else:
        fn = controls.force_key_change
    view = _change(ctx, fn, args.terminal)
    state = "in service" if view.in_service else "out of service"
    due = ", key change due" if view.key_change_due else ""
    print(f"terminal {view.terminal_id} {state}{due}", file=ctx.out)
    return 0


def _maintenance_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=("on", "off", "status"))


def _maintenance(ctx: AdminContext, args: argparse.Namespace) -> int:
    if args.mode == "status":
        with ctx.sessions() as session:
            on = controls.maintenance_mode(session)
    else:
        on = _change(ctx, controls.set_maintenance, args.mode == "on")
    print(f"maintenance mode {'on' if on else 'off'}", file=ctx.out)
    return 0


def _moment(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_moment, help="from this UTC time (ISO 8601)")
    parser.add_argument("--until", type=_moment, help="before this UTC time (ISO 8601)")
    parser.add_argument("--action", help="actions starting with this, e.g. pin. or card.")
    parser.add_argument(
        "--by", dest="audit_actor", help="only this actor (operator or terminal ID)"
    )
    parser.add_argument("--subject", help="subjects containing this, e.g. 7899")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many rows")
    parser.add_argument("--csv", metavar="FILE", help="write CSV to FILE (- for stdout)")


def _audit(ctx: AdminContext, args: argparse.Namespace) -> int:
    with ctx.sessions() as session:
        rows = list_audit(
            session,
            since=args.since,
            until=args.until,
            action=args.action,
            actor=args.audit_actor,
            subject=args.subject,
            limit=args.limit,
        )
    if args.csv == "-":
        write_csv(rows, ctx.out)
    elif args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as file:
            count = write_csv(rows, file)
        print(f"{count} audit rows written to {args.csv}", file=ctx.out)
    else:
        for r in rows:
            change = f"{r.before or ''} -> {r.after or ''}" if r.before or r.after else ""
            print(
                f"{_time(r.at)} {r.actor}({r.role}, {r.source}) {r.action} {r.subject} {change}",
                file=ctx.out,
            )
    return 0


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("customers", "list customers", _no_arguments, _customers),
    Subcommand("accounts", "list customer accounts", _customer_filter, _accounts),
    Subcommand("cards", "list cards (PANs masked)", _customer_filter, _cards),
    Subcommand(
        "terminals", "list terminals: service, keys, last messages", _no_arguments, _terminals
    ),
    Subcommand(
        "create-customer",
        "create a customer",
        _name_argument,
        _create_customer,
    ),
    Subcommand(
        "update-customer",
        "rename a customer",
        _rename_arguments,
        _update_customer,
    ),
    Subcommand(
        "deactivate-customer",
        "decline the customer's cards (14) until reactivated",
        _customer_id,
        _customer_state(controls.deactivate_customer, "deactivated"),
    ),
    Subcommand(
        "reactivate-customer",
        "let a deactivated customer's cards work again",
        _customer_id,
        _customer_state(controls.reactivate_customer, "reactivated"),
    ),
    Subcommand(
        "open-account",
        "open an account (zero balance) for a customer",
        _open_account_arguments,
        _open_account,
    ),
    Subcommand(
        "close-account",
        "close an account (zero balance, no holds)",
        _account,
        _account_state(controls.close_account),
    ),
    Subcommand(
        "freeze-account",
        "decline every request on an account (78)",
        _account,
        _account_state(controls.freeze_account),
    ),
    Subcommand(
        "unfreeze-account",
        "let a frozen account work again",
        _account,
        _account_state(controls.unfreeze_account),
    ),
    Subcommand(
        "issue-card",
        f"issue a card (PIN from {PIN_ENV} or a prompt; changed at first use)",
        _issue_card_arguments,
        _issue_card,
    ),
    Subcommand("block-card", "decline a card (14), not captured", _pan, _block_card),
    Subcommand(
        "report-card",
        "report a card lost or stolen (captured)",
        _report_card_arguments,
        _report_card,
    ),
    Subcommand("replace-card", "issue a new card instead of this one", _pan, _replace_card),
    Subcommand(
        "reset-pin",
        f"set a PIN (from {PIN_ENV} or a prompt) to be changed at the next use",
        _pan,
        _reset_pin,
    ),
    Subcommand(
        "terminal",
        "put a terminal out of service or back, or force a key change",
        _terminal_arguments,
        _terminal,
    ),
    Subcommand(
        "maintenance",
        "bank-wide maintenance mode (every request declined 90)",
        _maintenance_arguments,
        _maintenance,
    ),
    Subcommand("audit", "show or export the audit trail", _audit_arguments, _audit),
    # The web half (atm/commands/admin_web.py): panel operators and bank snapshots.
    Subcommand(
        "create-operator",
        f"create an admin panel operator (password from {admin_web.PASSWORD_VARIABLE} or a prompt)",
        admin_web.create_operator_arguments,
        admin_web.run_create_operator,
    ),
    Subcommand(
        "operators",
        "list admin panel operators: role, state, password change due, lockout",
        _no_arguments,
        admin_web.run_operators,
    ),
    Subcommand(
        "operator",
        "change an operator: --role, --deactivate, --reactivate or --reset-password",
        admin_web.operator_arguments,
        admin_web.run_operator,
    ),
    Subcommand(
        "export",
        "write a bank snapshot (JSON; PIN hashes only with --pin-hashes) to a file or S3",
        admin_web.export_arguments,
        admin_web.run_export,
    ),
    Subcommand(
        "import",
        "load a bank snapshot through the ledger (--on-conflict skip|replace)",
        admin_web.import_arguments,
        admin_web.run_import,
    ),
]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "admin",
        help="bank operations: customers, accounts, cards, terminals, audit",
        description="Bank operations on the host database (DATABASE_URL); an ATM feels each "
        "change on its next message. Every change writes an audit row.",
    )
    parser.add_argument("--database-url", help="override DATABASE_URL")
    parser.add_argument(
        "--actor",
        default=os.environ.get("USER") or os.environ.get("LOGNAME") or "operator",
        help="who is acting, for the audit trail (default: the login name)",
    )
    sub = parser.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    for command in SUBCOMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        p.set_defaults(func=_run, admin_run=command.run)


def _run(args: argparse.Namespace) -> int:
    config = load_host_config({"DATABASE_URL": args.database_url})
    if config is None:
        return EXIT_USAGE
    engine = open_host_database(config, "admin")
    try:
        actor = Actor(args.actor[:64], "admin", "cli")
        ctx = AdminContext(session_factory(engine), config, actor, sys.stdout)
        return int(args.admin_run(ctx, args))
    except HostError as exc:
        print(f"atm admin {args.admin_command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
