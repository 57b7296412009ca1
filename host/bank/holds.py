"""Deposit holds: how much of a deposit is available at once and when the rest is.

The original system's funds availability (``HoldPolicy``):

* cash: up to $200 available at once; the rest on the next business day;
* checks: nothing at once; up to $200 on the next business day; the rest after two.

Business days are Monday to Friday, counted in UTC; a hold is released at the start (00:00
UTC) of its business day, by the worker (``release_due``), not by a query's arithmetic: until
the worker has run, the money stays held. An account's available balance is its ledger
balance less its holds still ``held``. A reversed deposit's holds become ``reversed``.
Holds never make money: they only restrict what part of a posted balance can be spent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from host.bank.ledger import LedgerProblem, read_one_snapshot
from host.bank.models import Account, Entry, Hold, Posting

__all__ = [
    "DEPOSIT_KINDS",
    "HoldPolicy",
    "available_cents",
    "business_day",
    "cancel_holds",
    "check_holds",
    "held_cents",
    "hold_schedule",
    "place_holds",
    "release_due",
]

# Posting kind -> hold kind.
DEPOSIT_KINDS = {"deposit": "cash", "check-deposit": "check"}


@dataclass(frozen=True)
class HoldPolicy:
    cash_available_at_once_cents: int = 20000
    check_next_day_cents: int = 20000

    def __post_init__(self) -> None:
        if self.cash_available_at_once_cents < 0 or self.check_next_day_cents < 0:
            raise ValueError("hold policy amounts are cents >= 0")


def business_day(moment: dt.datetime, days: int) -> dt.datetime:
    """The start (00:00 UTC) of the ``days``-th business day after ``moment``'s day."""
    day = moment.astimezone(dt.UTC).date()
    while days > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def hold_schedule(
    kind: str, amount_cents: int, now: dt.datetime, policy: HoldPolicy
) -> list[tuple[int, dt.datetime]]:
    """(cents, release time) of the holds a deposit of ``kind`` (cash, check) gets."""
    if kind == "cash":
        held = amount_cents - min(amount_cents, policy.cash_available_at_once_cents)
        return [(held, business_day(now, 1))] if held > 0 else []
    if kind == "check":
        first = min(amount_cents, policy.check_next_day_cents)
        rest = amount_cents - first
        holds = [(first, business_day(now, 1))] if first > 0 else []
        return holds + ([(rest, business_day(now, 2))] if rest > 0 else [])
    raise ValueError(f"no hold policy for {kind!r} deposits")


def place_holds(
    session: Session,
    account: Account,
    posting: Posting,
    kind: str,
    amount_cents: int,
    now: dt.datetime,
    policy: HoldPolicy,
) -> list[Hold]:
    holds = [
        Hold(
            account_id=account.id,
            posting_id=posting.id,
            kind=kind,
            amount_cents=cents,
            status="held",
            placed_at=now,
            release_at=release_at,
        )
        for cents, release_at in hold_schedule(kind, amount_cents, now, policy)
    ]
    session.add_all(holds)
    session.flush()
    return holds


def held_cents(session: Session, account_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Hold.amount_cents), 0)).where(
            Hold.account_id == account_id, Hold.status == "held"
        )
    )
    return int(total or 0)


def available_cents(session: Session, account: Account) -> int:
    return account.balance_cents - held_cents(session, account.id)


def release_due(session: Session, now: dt.datetime) -> int:
    """Release every hold whose time has come; returns how many were released."""
    result = session.execute(
        update(Hold)
        .where(Hold.status == "held", Hold.release_at <= now)
        .values(status="released", released_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_holds(session: Session, posting_id: int, now: dt.datetime) -> None:
    """The deposit ``posting_id`` was reversed: its holds no longer hold anything."""
    session.execute(
        update(Hold)
        .where(Hold.posting_id == posting_id, Hold.status == "held")
        .values(status="reversed", released_at=now)
    )


def check_holds(session: Session) -> list[LedgerProblem]:
    """Holds never make money: each belongs to a deposit posting on the same account, and a
    deposit's holds add up to no more than it credited; a reversed deposit holds nothing.
    Read from one snapshot, like ``check_ledger``."""
    read_one_snapshot(session)
    problems: list[LedgerProblem] = []
    rows = session.execute(
        select(Hold.posting_id, Hold.account_id, Posting.kind, func.sum(Hold.amount_cents))
        .join(Posting, Hold.posting_id == Posting.id)
        .where(Hold.status != "reversed")
        .group_by(Hold.posting_id, Hold.account_id, Posting.kind)
    ).all()
    for posting_id, account_id, kind, held in rows:
        if kind not in DEPOSIT_KINDS:
            problems.append(LedgerProblem("hold", f"posting {posting_id} ({kind}) has holds"))
            continue
        credited = session.scalar(
            select(func.coalesce(func.sum(Entry.amount_cents), 0)).where(
                Entry.posting_id == posting_id, Entry.account_id == account_id
            )
        )
        if int(held) > int(credited or 0):
            problems.append(
                LedgerProblem("hold", f"posting {posting_id} holds {held} but credited {credited}")
            )
    reversed_but_held = session.execute(
        select(Hold.id, Hold.posting_id)
        .join(Posting, Posting.reverses_id == Hold.posting_id)
        .where(Hold.status == "held")
    ).all()
    for hold_id, posting_id in reversed_but_held:
        problems.append(
            LedgerProblem("hold", f"hold {hold_id} still held on reversed deposit {posting_id}")
        )
    negative = session.execute(select(Hold.id).where(Hold.amount_cents <= 0)).all()
    for (hold_id,) in negative:
        problems.append(LedgerProblem("hold", f"hold {hold_id} is not a positive amount"))
    return problems
