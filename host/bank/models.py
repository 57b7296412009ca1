"""SQLAlchemy models of the host: customers, accounts, cards, the double-entry ledger, terminals
and the record of link requests (for duplicate detection and audit).

Money is integer cents. A posting groups entries whose amounts sum to zero; an account's
``balance_cents`` is kept equal to the sum of its entries inside the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "LIMITED_KINDS",
    "Account",
    "AuditEntry",
    "BankState",
    "Base",
    "Card",
    "CardAccount",
    "CardSession",
    "Customer",
    "DailyUsage",
    "Entry",
    "Hold",
    "LinkRequest",
    "Posting",
    "StatementJob",
    "Terminal",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # A deactivated customer's cards are declined as blocked (14); host.bank.controls.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    accounts: Mapped[list[Account]] = relationship(back_populates="customer")
    cards: Mapped[list[Card]] = relationship(back_populates="customer")


class Account(Base):
    """A customer account (checking, savings) or an internal one (terminal cash, equity)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(34), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # checking | savings | cash | equity
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3), default="840")
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # open | frozen | closed: a frozen or closed account is declined 78 (host.bank.controls).
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    customer: Mapped[Customer | None] = relationship(back_populates="accounts")


class Card(Base):
    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pan: Mapped[str] = mapped_column(String(19), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    expiry: Mapped[str] = mapped_column(String(4))  # YYMM
    # active | lost | stolen | blocked | replaced (host.bank.controls)
    status: Mapped[str] = mapped_column(String(16), default="active")
    pin_hash: Mapped[str] = mapped_column(String(128))
    # An operator set this PIN (reset): the next request after it is verified gets 77 and the
    # terminal takes the customer to PIN change.
    pin_change_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    failed_pin_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    customer: Mapped[Customer] = relationship(back_populates="cards")
    links: Mapped[list[CardAccount]] = relationship(back_populates="card")


class CardAccount(Base):
    """Which accounts a card can reach, and as which ISO account type (10 savings, 20 checking)."""

    __tablename__ = "card_accounts"
    __table_args__ = (UniqueConstraint("card_id", "account_type"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    account_type: Mapped[str] = mapped_column(String(2))
    card: Mapped[Card] = relationship(back_populates="links")
    account: Mapped[Account] = relationship()


class Terminal(Base):
    __tablename__ = "terminals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(8), unique=True)
    cash_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    cash_account: Mapped[Account] = relationship()
    # Put out of service by an operator: its sign-on and echo are answered 89 (and its card
    # requests too) until it is back in service (host.bank.controls, docs/protocol.md).
    in_service: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # An operator asked for new working keys: the next echo is answered 88 (key change).
    key_change_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What the link last saw of it: sign-on, key scheme and check values, last 0800.
    last_sign_on_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    key_scheme: Mapped[str] = mapped_column(String(1), default="", server_default="")
    tpk_kcv: Mapped[str] = mapped_column(String(6), default="", server_default="")
    tak_kcv: Mapped[str] = mapped_column(String(6), default="", server_default="")
    last_network_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_network_code: Mapped[str] = mapped_column(String(3), default="", server_default="")


class BankState(Base):
    """Bank-wide settings: one row (id 1). Maintenance mode declines every request 90."""

    __tablename__ = "bank_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """The append-only audit trail: every operator action, PIN verification, transaction
    and reversal. Written only by ``host.bank.audit.record``; never updated or deleted (on
    PostgreSQL a trigger refuses both). PANs in it are masked."""

    __tablename__ = "audit_log"
    # On PostgreSQL the time index is a BRIN (block range) index (0016): the log is appended
    # in time order, so a range's summary finds a time window, and a new row costs it nothing
    # until VACUUM summarises its range once full (a btree took an entry and its WAL per row).
    __table_args__ = (
        Index(
            "ix_audit_log_at",
            "at",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 16},
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Posting(Base):
    """One business event in the ledger (withdrawal, reversal, transfer, opening balance)."""

    __tablename__ = "postings"
    # A posting is reversed at most once. On PostgreSQL only reversals are in the index
    # (0016): the other postings, nearly all of them, write no entry to it; SQLite keeps the
    # unique constraint of 0001 (the same rule).
    __table_args__ = (
        Index(
            "uq_postings_reverses_id",
            "reverses_id",
            unique=True,
            postgresql_where=text("reverses_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # opening | withdrawal | withdrawal-reversal | transfer | transfer-reversal
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(200), default="")
    terminal_id: Mapped[str | None] = mapped_column(String(8))
    stan: Mapped[str | None] = mapped_column(String(6))
    rrn: Mapped[str | None] = mapped_column(String(12))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    entries: Mapped[list[Entry]] = relationship(back_populates="posting")


class Entry(Base):
    __tablename__ = "entries"
    # Lookups of an account's entries by time (statements, the mini statement) read this
    # index (0007); it serves every lookup by account, so account_id has no index of its own
    # (0014). A posting's entries (read off the hot path only) are found on PostgreSQL by a
    # block-range index (0018): entries are appended in posting order, and a withdrawal's
    # legs write no btree entry for it; SQLite keeps a btree.
    __table_args__ = (
        Index(
            "ix_entries_account_created_covering",
            "account_id",
            "created_at",
            "posting_id",
            "amount_cents",
        ),
        Index(
            "ix_entries_posting_id",
            "posting_id",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 16, "autosummarize": "on"},
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    posting: Mapped[Posting] = relationship(back_populates="entries")
    account: Mapped[Account] = relationship()


# The posting kinds whose money out of an account counts against a daily limit
# (``DAILY_WITHDRAWAL_LIMIT``, ``DAILY_TRANSFER_LIMIT``); a ``<kind>-reversal`` gives back.
LIMITED_KINDS = ("withdrawal", "transfer")


class DailyUsage(Base):
    """What an account has used of a day's limit for one kind of posting (migration 0015):
    the money its ``kind`` postings of that UTC day took out of it, less what their
    reversals gave back (booked on the original's day, whenever the reversal came). Kept by
    ``host.bank.ledger.post`` (and ``atm_authorize``) in the posting's transaction, under the
    account's row lock, so the daily-limit check reads one row instead of summing the day's
    entries; ``check_ledger`` recomputes it from the entries."""

    __tablename__ = "daily_usage"
    __table_args__ = (PrimaryKeyConstraint("account_id", "kind", "day"),)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))  # one of LIMITED_KINDS
    day: Mapped[dt.date] = mapped_column(Date)  # UTC
    used_cents: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """Part of a deposit not yet available to spend (``host.bank.holds``)."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_status_release_at", "status", "release_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # cash | check
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="held")  # held|released|reversed
    placed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    release_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LinkRequest(Base):
    """Every financial request the host answered: its key, outcome and stored response."""

    __tablename__ = "link_requests"
    __table_args__ = (UniqueConstraint("terminal_id", "stan", "transmission_time", "mti_class"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(8))
    stan: Mapped[str] = mapped_column(String(6))
    transmission_time: Mapped[str] = mapped_column(String(10))
    mti_class: Mapped[str] = mapped_column(String(4))
    processing_code: Mapped[str] = mapped_column(String(6))
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    response_code: Mapped[str] = mapped_column(String(2))
    rrn: Mapped[str] = mapped_column(String(12))
    auth_code: Mapped[str] = mapped_column(String(6), default="")
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # What the request said (PAN, processing code, amount, destination), hashed: a repeat
    # must match it, else the key (terminal, STAN, DE 7) was reused for another request (94).
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    # The rest of the stored outcome (balances, mini-statement) so a repeat gets it back.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CardSession(Base):
    """A card session: the PIN was verified once for this card at this terminal. ``pin_token``
    is an HMAC (under SECRET_KEY) of the encrypted PIN block, so a later request of the same
    session with the same block skips bcrypt. Shared by every host process through the
    database; idle longer than SESSION_TIMEOUT_SECONDS it no longer counts."""

    __tablename__ = "card_sessions"
    __table_args__ = (UniqueConstraint("card_id", "terminal_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    terminal_id: Mapped[str] = mapped_column(String(8))
    pin_token: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Not indexed (0014): every request in a session updates it, and unindexed that update
    # is HOT (no index entries); only the ops page counts open sessions by it.
    last_used_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StatementJob(Base):
    """A statement to produce: queued by the CLI or the ops API, claimed by a worker."""

    __tablename__ = "statement_jobs"
    __table_args__ = (Index("ix_statement_jobs_status_id", "status", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    period_from: Mapped[dt.date] = mapped_column(Date)
    period_to: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    location: Mapped[str] = mapped_column(String(500), default="")  # file path or s3://bucket/key
    error: Mapped[str] = mapped_column(String(500), default="")
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The lease (host/bank/statements.py): a running job belongs to ``worker`` until
    # ``lease_until``; after that another worker may take it over. A queued job that failed
    # once is not retried before ``lease_until``. ``attempts`` counts the claims.
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker: Mapped[str] = mapped_column(String(64), default="", server_default="")
    account: Mapped[Account] = relationship()
