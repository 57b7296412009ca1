"""The double-entry ledger: every posting moves money between accounts and sums to zero.

Balances are updated in the same database transaction as the entries, after the accounts'
rows are locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers). So is
each account's use of the day's limits (``DailyUsage``, migration 0015): a ``withdrawal`` or
``transfer`` adds what it takes out of an account to that account's row for the posting's
UTC day; its reversal takes what it gives back off the row of the original's day. The
daily-limit check reads the rows of today onwards (``daily_used``); ``check_ledger``
recomputes them from the entries. ``atm_authorize`` keeps them the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Date, case, cast, event, func, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, Session, SessionTransaction, aliased

from host.bank.models import LIMITED_KINDS, Account, DailyUsage, Entry, Posting, utcnow
from host.errors import HostError

__all__ = [
    "LedgerError",
    "LedgerProblem",
    "check_ledger",
    "daily_usage_from_entries",
    "daily_used",
    "lock_accounts",
    "post",
    "read_one_snapshot",
    "utc_day",
]

_REVERSAL = "-reversal"

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
    _count_daily_usage(session, kind, legs, posting.created_at, reverses)
    return posting


def utc_day(moment: dt.datetime) -> dt.date:
    """The UTC calendar day of ``moment`` (naive: already UTC, as SQLite hands it back)."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(dt.UTC).date()


def _count_daily_usage(
    session: Session,
    kind: str,
    legs: list[tuple[Account, int]],
    at: dt.datetime,
    reverses: Posting | None,
) -> None:
    """A limited kind's money out of each account, added to the account's row of ``at``'s
    day; its reversal's money back to an account, taken off the row of the original's day
    (a reversal with no original counts nowhere, as in the sum it replaces)."""
    if kind in LIMITED_KINDS:
        day = utc_day(at)
        counted = [(account, amount) for account, amount in legs if amount < 0]
    elif kind.endswith(_REVERSAL) and kind.removesuffix(_REVERSAL) in LIMITED_KINDS:
        if reverses is None:
            return
        kind, day = kind.removesuffix(_REVERSAL), utc_day(reverses.created_at)
        counted = [(account, amount) for account, amount in legs if amount > 0]
    else:
        return
    for account, amount in counted:  # money out counts, money given back is taken off
        _add_usage(session, account.id, kind, day, -amount)


def _add_usage(session: Session, account_id: int, kind: str, day: dt.date, cents: int) -> None:
    """One upsert: the row of (account, kind, day) grows by ``cents`` (or starts at it)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(DailyUsage).values(
        account_id=account_id, kind=kind, day=day, used_cents=cents
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DailyUsage.account_id, DailyUsage.kind, DailyUsage.day],
            set_={"used_cents": DailyUsage.used_cents + statement.excluded.used_cents},
        )
    )


def daily_used(account_id: int, kind: str, day: dt.date) -> ColumnElement[int]:
    """What ``account_id`` has used of ``day``'s ``kind`` limit, as a scalar subquery: its
    usage rows of ``day`` and later (a later one exists only if the clock went back; the
    sum over the entries this replaced counted those too)."""
    return (
        select(func.coalesce(func.sum(DailyUsage.used_cents), 0))
        .where(
            DailyUsage.account_id == account_id,
            DailyUsage.kind == kind,
            DailyUsage.day >= day,
        )
        .scalar_subquery()
    )


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
    problems += _check_daily_usage(session)
    return problems


def _check_daily_usage(session: Session) -> list[LedgerProblem]:
    """Each account's use of each day's limits (``DailyUsage``) as the entries say it is: a
    row that drifted (a posting written past ``post``, a counter written by hand) is named
    with both figures. A row of 0 and no row are the same use."""
    expected = daily_usage_from_entries(session)
    kept = {
        (row.account_id, row.kind, _as_date(row.day)): int(row.used_cents)
        for row in session.execute(
            select(DailyUsage.account_id, DailyUsage.kind, DailyUsage.day, DailyUsage.used_cents)
        )
    }
    problems = []
    for key in sorted(expected.keys() | kept.keys()):
        want, have = expected.get(key, 0), kept.get(key, 0)
        if want != have:
            account_id, kind, day = key
            problems.append(
                LedgerProblem(
                    "daily usage",
                    f"account {account_id} {kind} on {day.isoformat()}: counter {have} "
                    f"!= {want} from the entries",
                )
            )
    return problems


def daily_usage_from_entries(session: Session) -> dict[tuple[int, str, dt.date], int]:
    """``DailyUsage`` recomputed from the ledger: per account, limited kind and UTC day, the
    money that kind's postings of the day took out of the account, less what reversals
    gave back to it (on their original's day). Keys of a net 0 are kept."""
    original = aliased(Posting)
    dialect = session.get_bind().dialect.name
    taken = (
        select(
            Entry.account_id.label("account_id"),
            Posting.kind.label("kind"),
            _day(Entry.created_at, dialect).label("day"),
            (-Entry.amount_cents).label("cents"),
        )
        .join(Posting, Entry.posting_id == Posting.id)
        .where(Posting.kind.in_(LIMITED_KINDS), Entry.amount_cents < 0)
    )
    given_back = (
        select(
            Entry.account_id,
            case(
                *((Posting.kind == f"{kind}{_REVERSAL}", literal(kind)) for kind in LIMITED_KINDS)
            ),
            _day(original.created_at, dialect),
            -Entry.amount_cents,
        )
        .join(Posting, Entry.posting_id == Posting.id)
        .join(original, Posting.reverses_id == original.id)
        .where(
            Posting.kind.in_([f"{kind}{_REVERSAL}" for kind in LIMITED_KINDS]),
            Entry.amount_cents > 0,
        )
    )
    both = union_all(taken, given_back).subquery()
    rows = session.execute(
        select(both.c.account_id, both.c.kind, both.c.day, func.sum(both.c.cents)).group_by(
            both.c.account_id, both.c.kind, both.c.day
        )
    ).all()
    return {
        (int(account_id), str(kind), _as_date(day)): int(cents)
        for account_id, kind, day, cents in rows
    }


def _day(column: QueryableAttribute[dt.datetime], dialect: str) -> ColumnElement[dt.date]:
    """The UTC day of a stored time, in SQL (SQLite keeps UTC text: its date part)."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column, type_=Date)


def _as_date(value: object) -> dt.date:
    """A day as the driver returned it (SQLite's ``date()`` gives text)."""
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


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
