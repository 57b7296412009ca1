"""Deposits on the host (each service test on SQLite and on PostgreSQL): cash (21) and check
(24) deposits credit the ledger balance at once and hold what the policy holds; DE 54 gives
ledger and available balances; withdrawals and transfers spend only the available balance;
the worker releases holds when due by its clock; a reversal takes a deposit back with its
holds; the mini-statement shows a deposit on hold; and a deposit over the real link."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from host.bank.holds import HoldPolicy, business_day, check_holds, hold_schedule
from host.bank.ledger import check_ledger
from host.bank.models import Account, Hold, LinkRequest
from host.bank.statements import StatementStore, StatementWorker
from host.link.reversals import AdviceData, ReversalService
from protocol.messages import AccountType, TransactionType, parse_balances
from protocol.response_codes import ResponseCode as RC
from tests.host.conftest import ALICE, ALICE_CHECKING, CHARLIE, CHARLIE_CHECKING, ServiceRig
from tests.host.link_helpers import TestTerminal, start_host

UTC = dt.UTC
# A Friday noon and the days that follow it.
FRIDAY = dt.datetime(2030, 11, 29, 12, 0, tzinfo=UTC)
MONDAY = dt.datetime(2030, 12, 2, tzinfo=UTC)
TUESDAY = dt.datetime(2030, 12, 3, tzinfo=UTC)


def test_business_days_skip_the_weekend():
    assert business_day(FRIDAY, 1) == MONDAY
    assert business_day(FRIDAY, 2) == TUESDAY
    wednesday = dt.datetime(2030, 11, 27, 23, 59, tzinfo=UTC)
    assert business_day(wednesday, 1) == dt.datetime(2030, 11, 28, tzinfo=UTC)


def test_hold_policy_of_the_original_system():
    policy = HoldPolicy()
    assert hold_schedule("cash", 30000, FRIDAY, policy) == [(10000, MONDAY)]
    assert hold_schedule("cash", 20000, FRIDAY, policy) == []
    assert hold_schedule("check", 15000, FRIDAY, policy) == [(15000, MONDAY)]
    assert hold_schedule("check", 50000, FRIDAY, policy) == [(20000, MONDAY), (30000, TUESDAY)]
    with pytest.raises(ValueError, match="no hold policy"):
        hold_schedule("gold", 100, FRIDAY, policy)


def _deposit(rig: ServiceRig, amount: int, pan: str = ALICE, *, check: bool = False):
    kind = TransactionType.CHECK_DEPOSIT if check else TransactionType.DEPOSIT
    return rig.service.authorize(rig.requests.make(kind, pan, amount))


def _balances(outcome) -> tuple[int, int]:
    by_type = {b.amount_type: b.cents for b in outcome.balances}
    return by_type["01"], by_type["02"]


def _clean(rig: ServiceRig) -> None:
    with rig.service._sessions() as session:
        assert check_ledger(session) == []
        assert check_holds(session) == []


def _worker(rig: ServiceRig) -> StatementWorker:
    return StatementWorker(rig.service._sessions, StatementStore(rig.config), clock=rig.clock)


def test_alice_deposits_300_and_200_is_available_at_once(rig: ServiceRig):
    outcome = _deposit(rig, 30000)
    assert outcome.response_code is RC.APPROVED
    assert _balances(outcome) == (525000 + 30000, 525000 + 20000)
    assert rig.balance_of(ALICE_CHECKING) == 555000
    with rig.service._sessions() as session:
        (hold,) = session.scalars(select(Hold)).all()
        assert (hold.kind, hold.amount_cents, hold.status) == ("cash", 10000, "held")
        assert hold.release_at.replace(tzinfo=UTC) == business_day(rig.clock.now, 1)
    _clean(rig)


def test_withdrawals_spend_only_the_available_balance(rig: ServiceRig):
    assert _deposit(rig, 30000, CHARLIE).response_code is RC.APPROVED  # Charlie had $0
    assert rig.service.authorize(rig.requests.withdrawal(25000, CHARLIE)).response_code is (
        RC.INSUFFICIENT_FUNDS
    )
    outcome = rig.service.authorize(rig.requests.withdrawal(20000, CHARLIE))
    assert outcome.response_code is RC.APPROVED
    assert _balances(outcome) == (10000, 0)
    assert rig.balance_of(CHARLIE_CHECKING) == 10000
    _clean(rig)


def test_transfers_spend_only_the_available_balance(rig: ServiceRig):
    _deposit(rig, 50000, CHARLIE, check=True)
    transfer = rig.requests.make(
        TransactionType.TRANSFER,
        CHARLIE,
        100,
        from_account=AccountType.CHECKING,
        to_account=AccountType.SAVINGS,
    )
    assert rig.service.authorize(transfer).response_code is RC.INSUFFICIENT_FUNDS
    _clean(rig)


def test_the_worker_releases_holds_when_due(rig: ServiceRig):
    rig.clock.now = FRIDAY
    outcome = _deposit(rig, 50000, check=True)
    assert _balances(outcome) == (575000, 525000)  # a check: nothing at once
    worker = _worker(rig)
    rig.clock.now = MONDAY - dt.timedelta(seconds=1)
    assert worker.release_holds() == 0
    rig.clock.now = MONDAY
    assert worker.run_pending() == 0  # the worker's pass releases holds as well
    assert _balances(rig.service.authorize(rig.requests.balance())) == (575000, 545000)
    rig.clock.now = TUESDAY
    assert worker.release_holds() == 1
    assert _balances(rig.service.authorize(rig.requests.balance())) == (575000, 575000)
    _clean(rig)


def test_a_reversed_deposit_takes_its_holds_with_it(rig: ServiceRig):
    request = rig.requests.make(TransactionType.DEPOSIT, ALICE, 30000)
    assert rig.service.authorize(request).response_code is RC.APPROVED
    reversals = ReversalService(rig.service._sessions, rig.clock)
    outcome = reversals.handle(
        AdviceData(
            terminal_id=request.terminal_id,
            stan="900001",
            transmission_time="1128120100",
            original_mti="0200",
            processing_code=f"{TransactionType.DEPOSIT}0000",
            original_stan=request.stan,
            original_time=request.transmission_time,
            amount_cents=30000,
            dispensed_cents=0,
            reason="4018",
        )
    )
    assert (outcome.status, outcome.reversed_cents) == ("applied", 30000)
    assert rig.balance_of(ALICE_CHECKING) == 525000
    balance = rig.service.authorize(rig.requests.balance())
    assert _balances(balance) == (525000, 525000)
    with rig.service._sessions() as session:
        assert [h.status for h in session.scalars(select(Hold))] == ["reversed"]
    _clean(rig)


def test_the_mini_statement_shows_a_deposit_on_hold(rig: ServiceRig):
    rig.clock.now = FRIDAY
    _deposit(rig, 30000)
    statement = rig.service.authorize(rig.requests.balance()).mini_statement
    assert statement[:40] == "20301129C000000030000CASH DEP HOLD 12/02"
    rig.clock.now = MONDAY
    _worker(rig).release_holds()
    statement = rig.service.authorize(rig.requests.balance()).mini_statement
    assert statement[:40] == "20301129C000000030000CASH DEPOSIT       "


@pytest.mark.parametrize("amount", [0, -100])
def test_a_deposit_of_nothing_is_13_and_moves_nothing(rig: ServiceRig, amount: int):
    assert _deposit(rig, amount).response_code is RC.INVALID_AMOUNT
    assert rig.balance_of(ALICE_CHECKING) == 525000
    with rig.service._sessions() as session:
        assert session.scalars(select(Hold)).all() == []


def test_a_repeated_deposit_is_applied_once(rig: ServiceRig):
    request = rig.requests.make(TransactionType.DEPOSIT, ALICE, 30000)
    first = rig.service.authorize(request)
    again = rig.service.authorize(request)
    assert again == first
    assert rig.balance_of(ALICE_CHECKING) == 555000
    _clean(rig)


def test_a_deposit_from_an_unknown_terminal_is_57(rig: ServiceRig):
    request = rig.requests.make(TransactionType.DEPOSIT, ALICE, 30000, terminal_id="NOSUCH01")
    assert rig.service.authorize(request).response_code is RC.NOT_PERMITTED
    assert rig.balance_of(ALICE_CHECKING) == 525000


async def test_a_deposit_over_the_link(host_config):
    host = await start_host(host_config)
    try:
        async with TestTerminal(host.server.port) as terminal:
            await terminal.sign_on()
            request = terminal.withdrawal(30000)
            request["3"] = "212000"  # cash deposit to checking
            response = await terminal.request(request)
            assert response["39"] == "00"
            balances = {b.amount_type: b.cents for b in parse_balances(response["54"])}
            # 92: the part of this deposit on hold ($100 of $300 in notes).
            assert balances == {"01": 555000, "02": 545000, "92": 10000}
            check = terminal.withdrawal(12345)
            check["3"] = "242000"  # check deposit
            response = await terminal.request(check)
            balances = {b.amount_type: b.cents for b in parse_balances(response["54"])}
            assert balances == {"01": 567345, "02": 545000, "92": 12345}
        with host.sessions() as session:
            kinds = session.scalars(select(LinkRequest.processing_code)).all()
            assert sorted(kinds) == ["212000", "242000"]
            account = session.scalar(select(Account).where(Account.number == ALICE_CHECKING))
            assert account is not None and account.balance_cents == 567345
            assert check_ledger(session) == [] and check_holds(session) == []
    finally:
        await host.close()
