"""The mini-statement of a balance inquiry (DE 62, the contract in the team notes): up to five
40-character entries, newest first: date ``YYYYMMDD``, sign ``C``/``D``, 12-digit amount in
cents, 19-character description (space padded, ASCII upper case). A deposit with part of it
still on hold says so, with the day the last of it becomes available: ``CASH DEP HOLD 12/01``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from host.bank.models import Entry, Hold, Posting

__all__ = [
    "ENTRY_LENGTH",
    "StatementLine",
    "format_entry",
    "format_mini_statement",
    "label",
    "mini_statement",
    "mini_statement_lines",
]

ENTRY_LENGTH = 40
ENTRIES = 5

_LABELS = {
    "withdrawal": "ATM WITHDRAWAL",
    "withdrawal-reversal": "ATM REVERSAL",
    "transfer-reversal": "TRANSFER REVERSAL",
    "deposit": "CASH DEPOSIT",
    "deposit-reversal": "CASH DEP REVERSAL",
    "check-deposit": "CHECK DEPOSIT",
    "check-deposit-reversal": "CHECK DEP REVERSAL",
    "opening": "OPENING BALANCE",
}


def label(kind: str, amount_cents: int, description: str) -> str:
    """A short text for an entry: by posting kind, else the posting's description."""
    if kind == "transfer":
        return "TRANSFER IN" if amount_cents > 0 else "TRANSFER OUT"
    text = _LABELS.get(kind, description or kind)
    return "".join(c if " " <= c <= "~" else "?" for c in text.upper())


def format_entry(date: str, amount_cents: int, text: str) -> str:
    sign = "C" if amount_cents >= 0 else "D"
    entry = f"{date}{sign}{abs(amount_cents):012d}{text[:19]:<19}"
    assert len(entry) == ENTRY_LENGTH
    return entry


@dataclass(frozen=True)
class StatementLine:
    """One entry of the mini-statement as read from the ledger: the ORM path reads it with
    ``mini_statement_lines``, the PostgreSQL hot path gets it from ``atm_authorize``."""

    amount_cents: int
    created_at: dt.datetime
    kind: str
    description: str
    # The last release of this entry's deposit holds still held (None: nothing held).
    held_until: dt.datetime | None


def mini_statement(session: Session, account_id: int) -> str:
    return format_mini_statement(mini_statement_lines(session, account_id))


def mini_statement_lines(session: Session, account_id: int) -> list[StatementLine]:
    """The account's newest entries, newest first, with their holds' last release."""
    rows = session.execute(
        select(Entry.amount_cents, Entry.created_at, Posting.kind, Posting.description, Posting.id)
        .join(Posting, Entry.posting_id == Posting.id)
        .where(Entry.account_id == account_id)
        .order_by(Entry.created_at.desc(), Entry.id.desc())
        .limit(ENTRIES)
    ).all()
    held_until = dict(
        session.execute(
            select(Hold.posting_id, func.max(Hold.release_at))
            .where(
                Hold.account_id == account_id,
                Hold.status == "held",
                Hold.posting_id.in_([row[4] for row in rows]),
            )
            .group_by(Hold.posting_id)
        ).all()
    )
    return [
        StatementLine(amount, created_at, kind, description, held_until.get(posting_id))
        for amount, created_at, kind, description, posting_id in rows
    ]


def format_mini_statement(lines: Iterable[StatementLine]) -> str:
    """DE 62: the 40-character entries, in the order given."""
    entries = []
    for line in lines:
        text = label(line.kind, line.amount_cents, line.description)
        if line.held_until is not None:
            short = "CASH DEP" if line.kind == "deposit" else "CHECK DEP"
            text = f"{short} HOLD {line.held_until:%m/%d}"
        entries.append(format_entry(f"{line.created_at:%Y%m%d}", line.amount_cents, text))
    return "".join(entries)
