"""Migration 0016 (PostgreSQL; a no-op on SQLite): ``postings.reverses_id`` unique among
reversals only (a partial unique index; other postings write no entry to it) and
``audit_log.at`` indexed by block range (BRIN). A posting is still reversed at most once, on
both databases, before and after going down and up again."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from host.bank.ledger import post
from host.bank.models import Account
from host.db import alembic_config, create_engine_for, is_sqlite, migrate, session_factory
from tests.host.conftest import ALICE_CHECKING


def _indexes(url: str) -> tuple[bool | None, str | None]:
    """On PostgreSQL: is ``uq_postings_reverses_id`` a partial index, and the access method
    of ``ix_audit_log_at``."""
    if is_sqlite(url):
        return None, None
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            method = connection.scalar(
                text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
                    " WHERE c.relname = 'ix_audit_log_at'"
                )
            )
            partial = connection.scalar(
                text(
                    "SELECT indpred IS NOT NULL FROM pg_index"
                    " WHERE indexrelid = 'uq_postings_reverses_id'::regclass"
                )
            )
            return bool(partial), str(method)
    finally:
        engine.dispose()


def _reverse_twice(url: str, amount: int) -> None:
    """A withdrawal reversed once; a second reversal of it is refused by the database."""
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    try:
        with sessions.begin() as session:
            alice = session.scalars(select(Account).where(Account.number == ALICE_CHECKING)).one()
            cash = session.scalars(select(Account).where(Account.number == "CASH-ATM00001")).one()
            original = post(session, "withdrawal", [(alice, -amount), (cash, amount)])
            post(
                session,
                "withdrawal-reversal",
                [(alice, amount), (cash, -amount)],
                reverses=original,
            )
            original_id = original.id
        with pytest.raises(IntegrityError), sessions.begin() as session:
            alice = session.scalars(select(Account).where(Account.number == ALICE_CHECKING)).one()
            cash = session.scalars(select(Account).where(Account.number == "CASH-ATM00001")).one()
            again = session.get(type(original), original_id)
            post(session, "withdrawal-reversal", [(alice, amount), (cash, -amount)], reverses=again)
    finally:
        engine.dispose()


def test_the_indexes_go_down_and_up_and_a_reversal_stays_unique(seeded_url: str) -> None:
    postgres = not is_sqlite(seeded_url)
    assert _indexes(seeded_url) == ((True, "brin") if postgres else (None, None))
    _reverse_twice(seeded_url, 1_000)

    command.downgrade(alembic_config(seeded_url), "0016_fewer_index_writes-1")
    assert _indexes(seeded_url) == ((False, "btree") if postgres else (None, None))
    _reverse_twice(seeded_url, 1_500)

    migrate(seeded_url)
    assert _indexes(seeded_url) == ((True, "brin") if postgres else (None, None))
    _reverse_twice(seeded_url, 2_000)
