"""The day's use of the limits is a counter per account, kind and UTC day (migration 0015),
kept by every posting and reversal (each test on SQLite and on PostgreSQL, ORM path):
what a customer can still withdraw or transfer today, what a partial or a late reversal
gives back, and ``check_ledger`` naming a counter that no longer agrees with the entries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from host.bank.ledger import check_ledger
from host.bank.models import Account, DailyUsage
from host.bank.services import CardRequest
from host.link.reversals import ReversalService
from protocol.messages import AccountType, TransactionType
from protocol.response_codes import ResponseCode as RC
from tests.host.conftest import ALICE_CHECKING, ServiceRig, reversal_advice


def _usage(rig: ServiceRig) -> dict[tuple[str, str, dt.date], int]:
    """Every counter: (account number, kind, day) -> cents."""
    with rig.service._sessions() as session:
        rows = session.execute(
            select(Account.number, DailyUsage.kind, DailyUsage.day, DailyUsage.used_cents).join(
                Account, Account.id == DailyUsage.account_id
            )
        ).all()
    return {(number, kind, day): cents for number, kind, day, cents in rows}


def _reverse(rig: ServiceRig, original: CardRequest, stan: str, dispensed: int = 0) -> str:
    advice = reversal_advice(original, stan, "1128130000", dispensed_cents=dispensed)
    return ReversalService(rig.service._sessions, rig.clock).handle(advice).status


def _code(rig: ServiceRig, amount: int) -> RC:
    return rig.service.authorize(rig.requests.withdrawal(amount)).response_code


def test_withdrawals_and_a_partial_reversal_keep_the_days_use(rig: ServiceRig):
    today = rig.clock.now.date()
    first = rig.requests.withdrawal(30_000)
    assert rig.service.authorize(first).response_code is RC.APPROVED
    assert _code(rig, 15_000) is RC.APPROVED
    assert _usage(rig) == {(ALICE_CHECKING, "withdrawal", today): 45_000}
    assert _code(rig, 6_000) is RC.EXCEEDS_WITHDRAWAL_LIMIT  # 45000 + 6000 > 50000
    # 10000 of the first were dispensed: 20000 go back to the account and to the limit.
    assert _reverse(rig, first, "900001", dispensed=10_000) == "applied"
    assert _usage(rig) == {(ALICE_CHECKING, "withdrawal", today): 25_000}
    assert _code(rig, 25_000) is RC.APPROVED
    assert _code(rig, 1) is RC.EXCEEDS_WITHDRAWAL_LIMIT
    # A repeat of the advice gives back nothing twice.
    assert _reverse(rig, first, "900001", dispensed=10_000) == "applied"
    assert _usage(rig) == {(ALICE_CHECKING, "withdrawal", today): 50_000}
    with rig.service._sessions() as session:
        assert check_ledger(session) == []


def test_a_late_reversal_gives_back_to_its_originals_day(rig: ServiceRig):
    yesterday = rig.clock.now.date()
    first = rig.requests.withdrawal(40_000)
    assert rig.service.authorize(first).response_code is RC.APPROVED
    rig.clock.advance(24 * 3600)
    assert _code(rig, 45_000) is RC.APPROVED
    # Yesterday's withdrawal reversed today: yesterday's use goes down, today's stays full.
    assert _reverse(rig, first, "900002") == "applied"
    assert _usage(rig) == {
        (ALICE_CHECKING, "withdrawal", yesterday): 0,
        (ALICE_CHECKING, "withdrawal", yesterday + dt.timedelta(days=1)): 45_000,
    }
    assert _code(rig, 10_000) is RC.EXCEEDS_WITHDRAWAL_LIMIT
    assert _code(rig, 5_000) is RC.APPROVED
    with rig.service._sessions() as session:
        assert check_ledger(session) == []


def test_a_transfer_counts_for_its_sender_and_its_reversal_gives_back(rig: ServiceRig):
    today = rig.clock.now.date()
    transfer = rig.requests.make(
        TransactionType.TRANSFER,
        amount=200_000,
        from_account=AccountType.CHECKING,
        to_account=AccountType.SAVINGS,
    )
    assert rig.service.authorize(transfer).response_code is RC.APPROVED
    assert _code(rig, 50_000) is RC.APPROVED  # the withdrawal limit is another counter
    assert _usage(rig) == {
        (ALICE_CHECKING, "transfer", today): 200_000,
        (ALICE_CHECKING, "withdrawal", today): 50_000,
    }
    assert _reverse(rig, transfer, "900003") == "applied"
    assert _usage(rig)[(ALICE_CHECKING, "transfer", today)] == 0
    with rig.service._sessions() as session:
        assert check_ledger(session) == []


def test_check_ledger_names_a_counter_that_drifted(rig: ServiceRig):
    today = rig.clock.now.date()
    assert _code(rig, 20_000) is RC.APPROVED
    with rig.service._sessions.begin() as session:
        session.execute(update(DailyUsage).values(used_cents=DailyUsage.used_cents - 5_000))
    with rig.service._sessions() as session:
        account_id = session.scalars(
            select(Account.id).where(Account.number == ALICE_CHECKING)
        ).one()
        problems = check_ledger(session)
    assert [(p.what, p.detail) for p in problems] == [
        (
            "daily usage",
            f"account {account_id} withdrawal on {today.isoformat()}: counter 15000 "
            "!= 20000 from the entries",
        )
    ]
