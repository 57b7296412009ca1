"""Migration 0018: the audit log's ``action`` index goes (both databases) and on PostgreSQL
``entries.posting_id`` is indexed by block range (BRIN; SQLite keeps its btree). Going down
puts both back and up again takes them away, on both databases; at each step a posting's
entries are still found by its posting (what a reversal reads) and the audit log is still
filtered by action. Over the link on PostgreSQL at the newest schema, a withdrawal's
reversal finds its legs and puts the money back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from host.bank.audit import Actor, list_audit, record
from host.bank.ledger import check_ledger, post
from host.bank.models import Account, Entry
from host.config import HostConfig
from host.db import alembic_config, create_engine_for, is_sqlite, migrate, session_factory
from tests.conftest import TEST_ENV
from tests.host.conftest import ALICE_CHECKING
from tests.host.link_helpers import TestTerminal, start_host

OPERATOR = Actor("ops", "admin", "test")


def _indexes(url: str) -> tuple[bool, str | None]:
    """Whether ``ix_audit_log_action`` exists, and the access method of
    ``ix_entries_posting_id`` ("btree" on SQLite when it exists)."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            names = {i["name"] for i in inspect(connection).get_indexes("audit_log")}
            entries = {i["name"] for i in inspect(connection).get_indexes("entries")}
            if is_sqlite(url):
                method = "btree" if "ix_entries_posting_id" in entries else None
            else:
                method = connection.scalar(
                    text(
                        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
                        " WHERE c.relname = 'ix_entries_posting_id'"
                    )
                )
            return "ix_audit_log_action" in names, method
    finally:
        engine.dispose()


def _post_and_read_back(url: str, amount: int) -> None:
    """A withdrawal posted and audited; its legs read back by posting, the audit row found
    by its action's prefix."""
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    try:
        with sessions.begin() as session:
            alice = session.scalars(select(Account).where(Account.number == ALICE_CHECKING)).one()
            cash = session.scalars(select(Account).where(Account.number == "CASH-ATM00001")).one()
            posting = post(session, "withdrawal", [(alice, -amount), (cash, amount)])
            record(session, OPERATOR, "txn.withdrawal", "card", after={"posting": posting.id})
            posting_id = posting.id
        with sessions() as session:
            legs = session.scalars(select(Entry).where(Entry.posting_id == posting_id)).all()
            assert sorted(e.amount_cents for e in legs) == [-amount, amount]
            rows = list_audit(session, action="txn.")
            assert [r.after for r in rows][-1] == {"posting": posting_id}
            assert check_ledger(session) == []
    finally:
        engine.dispose()


def test_the_indexes_go_down_and_up_and_readers_still_find_rows(seeded_url: str) -> None:
    postgres = not is_sqlite(seeded_url)
    assert _indexes(seeded_url) == (False, "brin" if postgres else "btree")
    _post_and_read_back(seeded_url, 1_000)

    command.downgrade(alembic_config(seeded_url), "0018_fewer_index_writes_again-1")
    assert _indexes(seeded_url) == (True, "btree")
    _post_and_read_back(seeded_url, 1_500)

    migrate(seeded_url)
    assert _indexes(seeded_url) == (False, "brin" if postgres else "btree")
    _post_and_read_back(seeded_url, 2_000)


async def test_a_reversal_over_the_link_finds_its_legs_by_the_block_range_index(
    postgres_url: str,
) -> None:
    config = HostConfig.from_env({**TEST_ENV, "DATABASE_URL": postgres_url})
    host = await start_host(config)
    try:
        async with TestTerminal(host.server.port) as terminal:
            await terminal.sign_on()
            original = terminal.withdrawal(10_000)
            assert (await terminal.request(original))["39"] == "00"
            assert host.balance(ALICE_CHECKING) == 515_000
            response = await terminal.request(terminal.reversal(original))
            assert response["t"] == "0430" and response["39"] == "00"
            assert host.balance(ALICE_CHECKING) == 525_000
        with host.sessions() as session:
            assert check_ledger(session) == []
            assert [r.action for r in list_audit(session, action="txn.")] == ["txn.withdrawal"]
            reversals = list_audit(session, action="reversal")
            assert [(r.after or {}).get("reversed_cents") for r in reversals] == [10_000]
    finally:
        await host.close()
