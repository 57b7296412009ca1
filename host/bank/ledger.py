"""The double-entry ledger: every posting moves money between accounts and sums to zero.

Balances are updated in the same database transaction as the entries, after the accounts'
rows are locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction, aliased

from host.bank.models import Account, Entry, Posting, utcnow
from host.errors import HostError

__all__ = [
    "LedgerError",
    "LedgerProblem",
    "check_ledger",
    "lock_accounts",
    "post",
    "read_one_snapshot",
]

_LOCKED = "host.bank.ledger.locked_accounts"


class LedgerError(HostError):
    """A posting that would break the ledger's rules."""


def lock_accounts(session: Session, account_ids: list[int]) -> dict[int, Account]:
    """Lock the rows in id order (so two postings never deadlock) and return them with the
    values read under the lock: ``populate_existing`` refreshes objects this session loaded
    earlier, which would otherwise keep a balance read before the lock (a lost update).
    Rows this transaction already locked are not read again (nobody else can change them)."""
    locked: dict[int, Account] = session.info.setdefault(_LOCKED, {})
    wanted = sorted(set(account_ids) - locked.keys())
    if wanted:
        rows = session.scalars(
            select(Account)
            .where(Account.id.in_(wanted))
            .order_by(Account.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        locked.update({row.id: row for row in rows})
    return {account_id: locked[account_id] for account_id in account_ids if account_id in locked}


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: SessionTransaction) -> None:
    # Row locks end with the outermost transaction, and a savepoint rolled back may release
    # some: forget the record then (at worst a row is locked again, which is cheap).
    if transaction.parent is None or transaction.nested:
        session.info.pop(_LOCKED, None)


def post(
    session: Session,
    kind: str,
    legs: list[tuple[Account, int]],
    *,
    description: str = "",
    terminal_id: str | None = None,
    stan: str | None = None,
    rrn: str | None = None,
    reverses: Posting | None = None,
    at: dt.datetime | None = None,
) -> Posting:
    """Write one posting with its entries and update the balances. Amounts must sum to zero."""
    if sum(amount for _, amount in legs) != 0:
        raise LedgerError(f"posting {kind} does not balance: {[a for _, a in legs]}")
    if any(amount == 0 for _, amount in legs):
        raise LedgerError("a ledger entry of zero is not allowed")
    if len(legs) < 2:
        raise LedgerError("a posting moves money between at least two accounts")
    # Lock (or re-lock: cheap inside one transaction) and refresh the accounts, so a balance
    # is never updated from a value read before another transaction's commit.
    lock_accounts(session, [account.id for account, _ in legs])
    posting = Posting(
        kind=kind,
        description=description,
        terminal_id=terminal_id,
        stan=stan,
        rrn=rrn,
        reverses_id=reverses.id if reverses is not None else None,
        created_at=at or utcnow(),
    )
    session.add(posting)
    session.flush()
    for account, amount in legs:
        session.add(
            Entry(
                posting_id=posting.id,
                account_id=account.id,
                amount_cents=amount,
                created_at=posting.created_at,
            )
        )
        account.balance_cents += amount
    session.flush()
    return posting


@dataclass(frozen=True)
class LedgerProblem:
    what: str
    detail: str


def read_one_snapshot(session: Session) -> None:
    """Make the rest of ``session``'s reads see one snapshot, when it has not begun yet.

    PostgreSQL's default READ COMMITTED takes a new snapshot per statement: the transaction
    runs REPEATABLE READ instead. SQLite's driver starts no transaction for a SELECT, so each
    statement would read the newest commit: an explicit BEGIN makes them one read transaction
    (a snapshot in WAL mode). A session already in a transaction is left as it is."""
    if session.in_transaction():
        return
    if session.get_bind().dialect.name == "sqlite":
        connection = session.connection()
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            connection.exec_driver_sql("BEGIN")
        return
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def check_ledger(session: Session) -> list[LedgerProblem]:
    """DESIGN invariants 1 and 3: entries sum to zero overall and per posting, each posting
    has at least two entries, each balance equals the sum of its entries; each reversal points
    at one original of the matching kind (at most once: ``postings.reverses_id`` is unique)
    and moves money back, never more than the original did on any account.

    Every read comes from one snapshot of the database (``read_one_snapshot``), so a check of
    a live host never sees a posting's entries without its balances or the other way round."""
    read_one_snapshot(session)
    problems: list[LedgerProblem] = []
    total = session.scalar(select(func.coalesce(func.sum(Entry.amount_cents), 0)))
    if total != 0:
        problems.append(LedgerProblem("ledger total", f"sum of all entries is {total}, not 0"))
    unbalanced = session.execute(
        select(Entry.posting_id, func.sum(Entry.amount_cents))
        .group_by(Entry.posting_id)
        .having(func.sum(Entry.amount_cents) != 0)
    ).all()
    for posting_id, amount in unbalanced:
        problems.append(LedgerProblem("posting", f"posting {posting_id} sums to {amount}"))
    sums = dict(
        session.execute(
            select(Entry.account_id, func.sum(Entry.amount_cents)).group_by(Entry.account_id)
        ).all()
    )
    for account in session.scalars(select(Account)).all():
        expected = sums.get(account.id, 0)
        if account.balance_cents != expected:
            problems.append(
                LedgerProblem(
                    "balance",
                    f"account {account.number} balance {account.balance_cents} "
                    f"!= sum of entries {expected}",
                )
            )
    original = aliased(Posting)
    reversals = session.execute(
        select(Posting.id, Posting.kind, Posting.reverses_id, original.kind).join(
            original, Posting.reverses_id == original.id
        )
    ).all()
    totals = _posting_account_totals(session)
    for posting_id, kind, original_id, original_kind in reversals:
        if original_kind.endswith("-reversal"):
            problems.append(
                LedgerProblem("reversal", f"posting {posting_id} reverses reversal {original_id}")
            )
        if kind != f"{original_kind}-reversal":
            problems.append(
                LedgerProblem(
                    "reversal",
                    f"posting {posting_id} ({kind}) reverses a {original_kind} ({original_id})",
                )
            )
        back, taken = totals.get(posting_id, {}), totals.get(original_id or 0, {})
        for account_id, amount in back.items():
            before = taken.get(account_id, 0)
            if amount * before > 0 or abs(amount) > abs(before):
                problems.append(
                    LedgerProblem(
                        "reversal",
                        f"posting {posting_id} moves {amount} on account {account_id}, "
                        f"more than or the same way as original {original_id} ({before})",
                    )
                )
    for kind, posting_id in session.execute(
        select(Posting.kind, Posting.id).where(
            Posting.kind.like("%-reversal"), Posting.reverses_id.is_(None)
        )
    ).all():
        problems.append(LedgerProblem("reversal", f"{kind} {posting_id} points at no original"))
    for posting_id, count in session.execute(
        select(Entry.posting_id, func.count()).group_by(Entry.posting_id).having(func.count() < 2)
    ).all():
        problems.append(LedgerProblem("posting", f"posting {posting_id} has {count} entry"))
    return problems


def _posting_account_totals(session: Session) -> dict[int, dict[int, int]]:
    totals: dict[int, dict[int, int]] = {}
    rows = session.execute(
        select(Entry.posting_id, Entry.account_id, func.sum(Entry.amount_cents)).group_by(
            Entry.posting_id, Entry.account_id
        )
    ).all()
    for posting_id, account_id, amount in rows:
        totals.setdefault(posting_id, {})[account_id] = int(amount)
    return totals
