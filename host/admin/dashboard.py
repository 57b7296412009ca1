"""The dashboard's figures, read in one database session: customers, accounts, balances,
requests and declines per hour by response code, terminals, cash dispensed per terminal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from host.bank.models import Account, BankState, Customer, Entry, LinkRequest, Posting, Terminal

__all__ = ["CUSTOMER_ACCOUNT_KINDS", "dashboard"]

CUSTOMER_ACCOUNT_KINDS = ("checking", "savings")
# Requests a customer made (balance inquiries and financial requests), not advices.
CUSTOMER_REQUESTS = ("0100", "0200")


def _hour(session: Session, column: Any) -> Any:
    """The hour a timestamp falls in, as text ``YYYY-MM-DDTHH``, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), literal_column("'YYYY-MM-DD\"T\"HH24'"))
    return func.strftime("%Y-%m-%dT%H", column)


def _terminal_states(session: Session) -> dict[str, str]:
    """Terminal id -> in_service | out_of_service (as operators set it: host.bank.controls)."""
    return {
        tid: "in_service" if in_service else "out_of_service"
        for tid, in_service in session.execute(select(Terminal.terminal_id, Terminal.in_service))
    }


def dashboard(session: Session, *, now: dt.datetime, hours: int = 24) -> dict[str, Any]:
    since = now - dt.timedelta(hours=hours)
    customer_accounts = Account.kind.in_(CUSTOMER_ACCOUNT_KINDS)
    by_kind = dict(
        session.execute(
            select(Account.kind, func.count()).where(customer_accounts).group_by(Account.kind)
        ).all()
    )
    total = session.scalar(
        select(func.coalesce(func.sum(Account.balance_cents), 0)).where(customer_accounts)
    )
    hour = _hour(session, LinkRequest.created_at)
    per_hour: dict[str, dict[str, int]] = {}
    for bucket, code, count in session.execute(
        select(hour, LinkRequest.response_code, func.count())
        .where(LinkRequest.created_at >= since, LinkRequest.mti_class.in_(CUSTOMER_REQUESTS))
        .group_by(hour, LinkRequest.response_code)
        .order_by(hour)
    ).all():
        per_hour.setdefault(str(bucket), {})[code] = int(count)
    hourly = [
        {
            "hour": bucket,
            "transactions": sum(codes.values()),
            "declines": sum(n for code, n in codes.items() if code != "00"),
            "by_code": dict(sorted(codes.items())),
        }
        for bucket, codes in sorted(per_hour.items())
    ]
    # Cash that left each terminal: withdrawals credit its cash account, their reversals
    # debit it back.
    dispensed = dict(
        session.execute(
            select(Terminal.terminal_id, func.coalesce(func.sum(Entry.amount_cents), 0))
            .join(Entry, Entry.account_id == Terminal.cash_account_id)
            .join(Posting, Posting.id == Entry.posting_id)
            .where(Posting.kind.in_(("withdrawal", "withdrawal-reversal")))
            .group_by(Terminal.terminal_id)
        ).all()
    )
    states = _terminal_states(session)
    maintenance = session.scalar(select(BankState.maintenance).where(BankState.id == 1))
    return {
        "maintenance": bool(maintenance),
        "at": now.isoformat(),
        "customers": session.scalar(select(func.count()).select_from(Customer)) or 0,
        "accounts": {"total": sum(by_kind.values()), "by_kind": by_kind},
        "total_balance_cents": int(total or 0),
        "hours": hours,
        "hourly": hourly,
        "transactions": sum(h["transactions"] for h in hourly),
        "declines": sum(h["declines"] for h in hourly),
        "terminals": {
            "in_service": sum(1 for s in states.values() if s == "in_service"),
            "out_of_service": sum(1 for s in states.values() if s != "in_service"),
        },
        "cash_dispensed": [
            {"terminal": tid, "cents": int(dispensed.get(tid, 0))} for tid in sorted(states)
        ],
    }
