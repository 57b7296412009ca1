"""Row locks on PostgreSQL: a second transaction waits for the first, and reads the balance
the first committed (no lost update even for objects loaded before the lock)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from host.bank.ledger import lock_accounts, post
from host.bank.models import Account
from host.db import create_engine_for, session_factory
from tests.host.conftest import ALICE_CHECKING


def test_a_balance_loaded_before_the_lock_is_refreshed_under_it(postgres_url):
    engine = create_engine_for(postgres_url)
    sessions = session_factory(engine)
    try:
        first = sessions()
        second = sessions()
        first.begin()
        second.begin()
        a1, c1 = (
            first.scalars(select(Account).where(Account.number == n)).one()
            for n in (ALICE_CHECKING, "CASH-ATM00001")
        )
        # The second transaction reads the account before anyone locks it (stale soon).
        a2, c2 = (
            second.scalars(select(Account).where(Account.number == n)).one()
            for n in (ALICE_CHECKING, "CASH-ATM00001")
        )
        assert a2.balance_cents == 525_000
        lock_accounts(first, [a1.id, c1.id])
        post(first, "withdrawal", [(a1, -10_000), (c1, 10_000)])
        locked = threading.Event()

        def second_posting() -> None:
            post(second, "withdrawal", [(a2, -5_000), (c2, 5_000)])
            locked.set()

        worker = threading.Thread(target=second_posting)
        worker.start()
        assert not locked.wait(0.5)  # blocked on the row lock (a timeout is the point here)
        first.commit()
        worker.join(30)
        assert locked.is_set()
        second.commit()
        with sessions() as check:
            balance = check.scalars(
                select(Account.balance_cents).where(Account.number == ALICE_CHECKING)
            ).one()
        assert balance == 525_000 - 10_000 - 5_000
        first.close()
        second.close()
    finally:
        engine.dispose()


def test_the_same_request_twice_at_once_is_applied_once(postgres_url):
    """Two workers get the same withdrawal at the same moment (a repeat sent while the
    original is in flight): both answers are the original's, the money moves once."""

    from host.bank.services import AuthorizationService
    from host.config import HostConfig
    from tests.host.conftest import TEST_TPK, Clock, Requests

    config = HostConfig.from_env({"DATABASE_URL": postgres_url})
    engine = create_engine_for(postgres_url)
    service = AuthorizationService(session_factory(engine), config, Clock())
    request = Requests(TEST_TPK).withdrawal(10_000)
    start = threading.Barrier(2)
    outcomes = []

    def authorize() -> None:
        start.wait()
        outcomes.append(service.authorize(request))

    threads = [threading.Thread(target=authorize) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert len(outcomes) == 2 and outcomes[0] == outcomes[1]
        assert outcomes[0].response_code == "00"
        with session_factory(engine)() as session:
            balance = session.scalars(
                select(Account.balance_cents).where(Account.number == ALICE_CHECKING)
            ).one()
        assert balance == 515_000
    finally:
        service.close()
        engine.dispose()


def test_bcrypt_runs_in_a_pool_sized_to_the_cores():
    import os

    from host.bank.pins import PinVerifier

    verifier = PinVerifier(pepper="p", secret_key="k")
    try:
        assert verifier._pool._max_workers == (os.cpu_count() or 1)
    finally:
        verifier.close()
