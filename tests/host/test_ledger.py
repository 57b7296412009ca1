"""The ledger's invariants and ``atm host check-ledger`` (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError

from atm.cli import main
from host.bank.ledger import LedgerError, check_ledger, post
from host.bank.models import Account, Entry, Posting
from host.config import HostConfig
from host.db import create_engine_for, session_factory


@pytest.fixture
def sessions(seeded_config: HostConfig):
    engine = create_engine_for(seeded_config.database_url)
    yield session_factory(engine)
    engine.dispose()


def _accounts(session, *numbers: str) -> list[Account]:
    return [session.scalars(select(Account).where(Account.number == n)).one() for n in numbers]


def test_seeded_ledger_is_clean_and_the_command_says_so(seeded_config, sessions, capsys):
    with sessions() as session:
        assert check_ledger(session) == []
    assert main(["host", "check-ledger", "--database-url", seeded_config.database_url]) == 0
    assert "ledger ok" in capsys.readouterr().out


def test_a_posting_must_balance_and_have_no_zero_leg(sessions):
    with sessions.begin() as session:
        alice, bob = _accounts(session, "1000-0001-0001", "1000-0002-0001")
        with pytest.raises(LedgerError):
            post(session, "transfer", [(alice, -100), (bob, 99)])
        with pytest.raises(LedgerError):
            post(session, "transfer", [(alice, 0), (bob, 0)])
        with pytest.raises(LedgerError):
            post(session, "transfer", [(alice, 0)])


def test_an_original_is_reversed_at_most_once(sessions):
    with sessions.begin() as session:
        alice, cash = _accounts(session, "1000-0001-0001", "CASH-ATM00001")
        original = post(session, "withdrawal", [(alice, -2_000), (cash, 2_000)])
        post(session, "withdrawal-reversal", [(alice, 2_000), (cash, -2_000)], reverses=original)
    with pytest.raises(IntegrityError), sessions.begin() as session:
        alice, cash = _accounts(session, "1000-0001-0001", "CASH-ATM00001")
        original = session.get(Posting, original.id)
        post(session, "withdrawal-reversal", [(alice, 2_000), (cash, -2_000)], reverses=original)
    with sessions() as session:
        assert check_ledger(session) == []


def test_check_ledger_finds_each_broken_invariant(seeded_config, sessions, capsys):
    with sessions.begin() as session:
        alice, cash = _accounts(session, "1000-0001-0001", "CASH-ATM00001")
        original = post(session, "withdrawal", [(alice, -2_000), (cash, 2_000)])
        # A reversal that gives back more than was taken.
        post(session, "withdrawal-reversal", [(alice, 3_000), (cash, -3_000)], reverses=original)
        # A balance tampered with behind the ledger's back, and an entry nobody balanced.
        session.execute(
            update(Account).where(Account.number == "1000-0002-0001").values(balance_cents=1)
        )
        session.add(Entry(posting_id=original.id, account_id=alice.id, amount_cents=5))
        # A reversal pointing at nothing.
        stray = Posting(kind="withdrawal-reversal", description="")
        session.add(stray)
    with sessions() as session:
        problems = check_ledger(session)
    whats = {p.what for p in problems}
    assert {"ledger total", "posting", "balance", "reversal"} <= whats
    details = "\n".join(p.detail for p in problems)
    assert "1000-0002-0001 balance 1 != sum of entries 85075" in details
    assert "points at no original" in details
    assert f"more than or the same way as original {original.id}" in details
    capsys.readouterr()
    assert main(["host", "check-ledger", "--database-url", seeded_config.database_url]) == 1
    captured = capsys.readouterr()
    assert "balance: account 1000-0002-0001" in captured.out
    assert "ledger check failed" in captured.err


def test_check_ledger_finds_holds_that_would_make_money(seeded_config, sessions, capsys):
    """Issue 20 item 6: holds belong to a deposit on the same account, never add up to more
    than it credited, are positive, and a reversed deposit holds nothing."""
    import datetime as dt

    from host.bank.holds import check_holds
    from host.bank.models import Hold

    later = dt.datetime(2030, 12, 2, tzinfo=dt.UTC)
    with sessions.begin() as session:
        alice, bob, cash = _accounts(session, "1000-0001-0001", "1000-0002-0001", "CASH-ATM00001")
        deposit = post(session, "deposit", [(alice, 30_000), (cash, -30_000)])
        reversed_ = post(session, "deposit", [(alice, 5_000), (cash, -5_000)])
        post(session, "deposit-reversal", [(alice, -5_000), (cash, 5_000)], reverses=reversed_)
        withdrawal = post(session, "withdrawal", [(alice, -2_000), (cash, 2_000)])

        def hold(posting: Posting, account: Account, cents: int) -> Hold:
            h = Hold(
                account_id=account.id,
                posting_id=posting.id,
                kind="cash",
                amount_cents=cents,
                status="held",
                release_at=later,
            )
            session.add(h)
            return h

        hold(deposit, alice, 40_000)  # more than the deposit credited
        hold(deposit, bob, 100)  # on another account than the deposit's
        hold(withdrawal, alice, 1_000)  # on something that is not a deposit
        stale = hold(reversed_, alice, 5_000)  # the deposit was reversed
        session.flush()
        negative = hold(deposit, alice, -1)
        session.flush()
        stale_id, negative_id = stale.id, negative.id
    with sessions() as session:
        assert check_ledger(session) == []  # the entries themselves are fine
        details = "\n".join(p.detail for p in check_holds(session))
    assert f"posting {deposit.id} holds 39999 but credited 30000" in details
    assert f"posting {deposit.id} holds 100 but credited 0" in details
    assert f"posting {withdrawal.id} (withdrawal) has holds" in details
    assert f"hold {stale_id} still held on reversed deposit {reversed_.id}" in details
    assert f"hold {negative_id} is not a positive amount" in details
    capsys.readouterr()
    assert main(["host", "check-ledger", "--database-url", seeded_config.database_url]) == 1
    assert "hold: " in capsys.readouterr().out


def test_a_check_of_a_live_host_reads_one_snapshot(rig, sessions):
    """A withdrawal committed while check-ledger runs (after it summed the entries per
    account, before it reads the balances) is seen whole or not at all: no false alarm on a
    busy host."""
    engine = sessions.kw["bind"]
    during: list[str] = []

    def withdraw_between_reads(conn, cursor, statement, *args) -> None:
        if not during and "GROUP BY entries.account_id" in statement:
            during.append(rig.service.authorize(rig.requests.withdrawal(2_000)).response_code)

    before = rig.balance_of("1000-0001-0001")
    event.listen(engine, "after_cursor_execute", withdraw_between_reads)
    try:
        with sessions() as session:
            assert check_ledger(session) == []
    finally:
        event.remove(engine, "after_cursor_execute", withdraw_between_reads)
    assert during == ["00"]
    assert rig.balance_of("1000-0001-0001") == before - 2_000
    with sessions() as session:
        assert check_ledger(session) == []
