"""The authorization service on a real database (each test runs on SQLite and on PostgreSQL):
every check of DESIGN section 4 with its response code, in its order; duplicates; card
sessions; transfers; PIN change; the mini-statement; daily limits given back by reversals."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select, update

from host.bank.ledger import check_ledger, post
from host.bank.models import Account, Card, CardSession, LinkRequest, Posting
from host.bank.pins import PinRuleError, check_pin_rules
from protocol.messages import AccountType, TransactionType
from protocol.response_codes import ResponseCode as RC
from tests.host.conftest import (
    ALICE,
    ALICE_CHECKING,
    ALICE_SAVINGS,
    BOB,
    BOB_CHECKING,
    CHARLIE,
    EXPIRED,
    STOLEN,
    ServiceRig,
)


def _ledger_clean(rig: ServiceRig) -> None:
    with rig.service._sessions() as session:
        assert check_ledger(session) == []


def _set_card(rig: ServiceRig, pan: str, **values: object) -> None:
    with rig.service._sessions.begin() as session:
        session.execute(update(Card).where(Card.pan == pan).values(**values))


# -- happy paths -------------------------------------------------------------------------
def test_balance_inquiry_returns_balances_and_mini_statement(rig: ServiceRig):
    outcome = rig.service.authorize(rig.requests.balance())
    assert outcome.response_code is RC.APPROVED
    assert [b.cents for b in outcome.balances] == [525_000, 525_000]
    assert outcome.balances[0].account_type is AccountType.CHECKING
    # The opening balance is the only entry so far.
    assert len(outcome.mini_statement) == 40
    assert outcome.mini_statement[8:21] == "C000000525000"
    assert outcome.mini_statement[21:].rstrip() == "OPENING BALANCE"


def test_withdrawal_moves_money_to_the_terminal_cash_account(rig: ServiceRig):
    outcome = rig.service.authorize(rig.requests.withdrawal(10_000))
    assert outcome.response_code is RC.APPROVED
    assert outcome.auth_code and outcome.rrn
    assert rig.balance_of(ALICE_CHECKING) == 515_000
    assert rig.balance_of("CASH-ATM00001") == 10_000
    assert outcome.balances[1].cents == 515_000
    _ledger_clean(rig)


def test_mini_statement_has_the_last_five_entries_newest_first(rig: ServiceRig):
    for amount in (1_000, 2_000, 3_000, 4_000, 5_000, 6_000):
        assert rig.service.authorize(rig.requests.withdrawal(amount)).response_code is RC.APPROVED
        rig.clock.advance(60)
    text = rig.service.authorize(rig.requests.balance()).mini_statement
    entries = [text[i : i + 40] for i in range(0, len(text), 40)]
    assert len(entries) == 5 and all(len(e) == 40 for e in entries)
    assert [int(e[9:21]) for e in entries] == [6_000, 5_000, 4_000, 3_000, 2_000]
    assert all(e[8] == "D" and e[:8] == f"{rig.clock.now:%Y%m%d}" for e in entries)
    assert entries[0][21:] == "ATM WITHDRAWAL     "


# -- each check and its code ---------------------------------------------------------------
def test_unknown_card_is_14(rig: ServiceRig):
    request = rig.requests.balance(pan="4000000000000002", pin="1234")
    assert rig.service.authorize(request).response_code is RC.INVALID_CARD


def test_expired_card_is_54(rig: ServiceRig):
    assert rig.service.authorize(rig.requests.balance(pan=EXPIRED)).response_code is RC.EXPIRED_CARD


def test_track_expiry_differing_from_the_card_is_14_unless_it_is_past(rig: ServiceRig):
    """A future expiry that is not the record's is not this card's track (14), not "expired"."""
    request = dataclasses.replace(rig.requests.balance(), expiry="2901")
    assert rig.service.authorize(request).response_code is RC.INVALID_CARD
    request = dataclasses.replace(rig.requests.balance(), expiry="2001")
    assert rig.service.authorize(request).response_code is RC.EXPIRED_CARD


def test_stolen_card_is_43_with_capture(rig: ServiceRig):
    outcome = rig.service.authorize(rig.requests.withdrawal(2_000, pan=STOLEN))
    assert outcome.response_code is RC.STOLEN_CARD and outcome.capture_card


def test_lost_card_is_41_with_capture(rig: ServiceRig):
    _set_card(rig, BOB, status="lost")
    outcome = rig.service.authorize(rig.requests.balance(pan=BOB))
    assert outcome.response_code is RC.LOST_CARD and outcome.capture_card


def test_wrong_pin_is_55_and_three_lock_the_card_75_until_it_expires(rig: ServiceRig):
    wrong = [rig.requests.balance(pin="0000") for _ in range(3)]
    codes = [rig.service.authorize(r).response_code for r in wrong]
    assert codes == [RC.INCORRECT_PIN, RC.INCORRECT_PIN, RC.PIN_TRIES_EXCEEDED]
    # Locked: even the right PIN gets 75, and no bcrypt runs for it.
    runs = rig.pins.bcrypt_runs
    assert rig.service.authorize(rig.requests.balance()).response_code is RC.PIN_TRIES_EXCEEDED
    assert rig.pins.bcrypt_runs == runs
    rig.clock.advance(rig.config.lockout_duration_seconds + 1)
    assert rig.service.authorize(rig.requests.balance()).response_code is RC.APPROVED


def test_a_good_pin_resets_the_failure_count(rig: ServiceRig):
    for pin in ("0000", "0000", "1234", "0000", "0000"):
        rig.service.authorize(rig.requests.balance(pin=pin))
    with rig.service._sessions() as session:
        card = session.scalar(select(Card).where(Card.pan == ALICE))
        assert card is not None
        assert card.failed_pin_attempts == 2 and card.locked_until is None


def test_missing_pin_block_is_a_format_error(rig: ServiceRig):
    request = dataclasses.replace(rig.requests.balance(), pin_block=None)
    assert rig.service.authorize(request).response_code is RC.FORMAT_ERROR


def test_missing_pin_key_is_55_and_approves_nothing(rig: ServiceRig):
    """The host has no fallback PIN key: without the terminal's working key a request is
    declined as incorrect PIN, even with a live PIN session of the same card and block, and
    without running bcrypt or counting a failed attempt."""
    assert rig.service.authorize(rig.requests.balance()).response_code is RC.APPROVED
    runs = rig.pins.bcrypt_runs
    keyless = [
        rig.requests.balance(without_pin_key=True),
        rig.requests.withdrawal(2_000, without_pin_key=True),
        rig.requests.make(TransactionType.PIN_CHANGE, new_pin="4826", without_pin_key=True),
    ]
    assert [rig.service.authorize(r).response_code for r in keyless] == [RC.INCORRECT_PIN] * 3
    assert rig.pins.bcrypt_runs == runs
    assert rig.balance_of(ALICE_CHECKING) == 525_000
    with rig.service._sessions() as session:
        card = session.scalar(select(Card).where(Card.pan == ALICE))
        assert card is not None and card.failed_pin_attempts == 0
    assert rig.service.authorize(rig.requests.balance()).response_code is RC.APPROVED


def test_account_not_linked_to_the_card_is_57(rig: ServiceRig):
    request = rig.requests.balance(pan=BOB, from_account=AccountType.SAVINGS)
    assert rig.service.authorize(request).response_code is RC.NOT_PERMITTED


@pytest.mark.parametrize("amount", [0, -5, 10**9 + 1])
def test_invalid_amount_is_13(rig: ServiceRig, amount: int):
    assert rig.service.authorize(rig.requests.withdrawal(amount)).response_code is RC.INVALID_AMOUNT


def test_daily_withdrawal_limit_is_61(rig: ServiceRig):
    assert rig.service.authorize(rig.requests.withdrawal(40_000)).response_code is RC.APPROVED
    assert (
        rig.service.authorize(rig.requests.withdrawal(20_000)).response_code
        is RC.EXCEEDS_WITHDRAWAL_LIMIT
    )
    assert rig.service.authorize(rig.requests.withdrawal(10_000)).response_code is RC.APPROVED
    # A new calendar day (UTC) brings a new limit.
    rig.clock.advance(24 * 3600)
    assert rig.service.authorize(rig.requests.withdrawal(40_000)).response_code is RC.APPROVED


def test_a_reversal_gives_the_daily_limit_back(rig: ServiceRig):
    first = rig.requests.withdrawal(50_000)
    assert rig.service.authorize(first).response_code is RC.APPROVED
    assert (
        rig.service.authorize(rig.requests.withdrawal(1_000)).response_code
        is RC.EXCEEDS_WITHDRAWAL_LIMIT
    )
    # Reverse 30000 of it (a partial reversal, as the link layer posts it).
    with rig.service._sessions.begin() as session:
        record = session.scalars(select(LinkRequest).where(LinkRequest.stan == first.stan)).one()
        original = session.get(Posting, record.posting_id)
        assert original is not None
        customer = session.scalars(select(Account).where(Account.number == ALICE_CHECKING)).one()
        cash = session.scalars(select(Account).where(Account.number == "CASH-ATM00001")).one()
        post(
            session,
            "withdrawal-reversal",
            [(customer, 30_000), (cash, -30_000)],
            reverses=original,
            terminal_id="ATM00001",
            stan=first.stan,
            at=rig.clock.now,
        )
    assert rig.service.authorize(rig.requests.withdrawal(30_000)).response_code is RC.APPROVED
    assert rig.balance_of(ALICE_CHECKING) == 525_000 - 50_000 + 30_000 - 30_000
    _ledger_clean(rig)


def test_insufficient_funds_is_51(rig: ServiceRig):
    outcome = rig.service.authorize(rig.requests.withdrawal(2_000, pan=CHARLIE))
    assert outcome.response_code is RC.INSUFFICIENT_FUNDS
    assert rig.balance_of("1000-0003-0001") == 0


def test_a_deposit_is_no_longer_refused(rig: ServiceRig):
    # Deposits used to be answered 12 (unsupported); tests/host/test_deposits.py covers them.
    request = rig.requests.make(TransactionType.DEPOSIT, amount=1_000)
    assert rig.service.authorize(request).response_code is RC.APPROVED


# -- the order of the checks -----------------------------------------------------------------
def test_order_expired_before_lockout(rig: ServiceRig):
    _set_card(rig, EXPIRED, locked_until=rig.clock.now.replace(year=2027))
    assert rig.service.authorize(rig.requests.balance(pan=EXPIRED)).response_code is RC.EXPIRED_CARD


def test_order_stolen_before_pin(rig: ServiceRig):
    outcome = rig.service.authorize(rig.requests.balance(pan=STOLEN, pin="0000"))
    assert outcome.response_code is RC.STOLEN_CARD


def test_order_pin_before_account_and_amount(rig: ServiceRig):
    request = rig.requests.withdrawal(0, pin="0000", from_account=AccountType.SAVINGS, pan=BOB)
    assert rig.service.authorize(request).response_code is RC.INCORRECT_PIN


def test_order_account_before_amount(rig: ServiceRig):
    request = rig.requests.withdrawal(0, pan=BOB, from_account=AccountType.SAVINGS)
    assert rig.service.authorize(request).response_code is RC.NOT_PERMITTED


def test_order_limit_before_funds(rig: ServiceRig):
    # Charlie has no money and asks more than the daily limit: the limit answers first.
    outcome = rig.service.authorize(rig.requests.withdrawal(60_000, pan=CHARLIE))
    assert outcome.response_code is RC.EXCEEDS_WITHDRAWAL_LIMIT


# -- duplicates --------------------------------------------------------------------------------
def test_a_repeat_gets_the_stored_outcome_and_is_applied_once(rig: ServiceRig):
    request = rig.requests.withdrawal(10_000)
    first = rig.service.authorize(request)
    again = rig.service.authorize(request)
    assert again == first
    assert rig.balance_of(ALICE_CHECKING) == 515_000
    with rig.service._sessions() as session:
        assert session.scalar(select(func.count()).select_from(Posting)) == 4 + 1  # 4 openings


def test_a_repeated_balance_inquiry_returns_the_same_balances_and_statement(rig: ServiceRig):
    request = rig.requests.balance()
    first = rig.service.authorize(request)
    rig.service.authorize(rig.requests.withdrawal(1_000))
    assert rig.service.authorize(request) == first


def test_same_key_different_request_is_94(rig: ServiceRig):
    request = rig.requests.withdrawal(10_000)
    rig.service.authorize(request)
    other = dataclasses.replace(request, amount_cents=20_000)
    assert rig.service.authorize(other).response_code is RC.DUPLICATE
    assert rig.balance_of(ALICE_CHECKING) == 515_000


def test_same_stan_at_another_time_is_a_new_request(rig: ServiceRig):
    request = rig.requests.withdrawal(10_000)
    rig.service.authorize(request)
    later = dataclasses.replace(request, transmission_time="1128120500")
    assert rig.service.authorize(later).response_code is RC.APPROVED
    assert rig.balance_of(ALICE_CHECKING) == 505_000


def test_a_declined_request_repeated_stays_declined(rig: ServiceRig):
    request = rig.requests.balance(pin="0000")
    assert rig.service.authorize(request).response_code is RC.INCORRECT_PIN
    assert rig.service.authorize(request).response_code is RC.INCORRECT_PIN
    with rig.service._sessions() as session:
        card = session.scalars(select(Card).where(Card.pan == ALICE)).one()
        assert card.failed_pin_attempts == 1  # the repeat was not counted again


# -- card sessions -------------------------------------------------------------------------------
def test_pin_is_verified_once_per_card_session(rig: ServiceRig):
    for _ in range(3):
        assert rig.service.authorize(rig.requests.balance()).response_code is RC.APPROVED
    assert rig.pins.bcrypt_runs == 1
    # Another terminal is another session.
    assert rig.service.authorize(rig.requests.balance(terminal_id="ATM00002")).response_code == "00"
    assert rig.pins.bcrypt_runs == 2
    with rig.service._sessions() as session:
        assert session.scalar(select(func.count()).select_from(CardSession)) == 2


def test_a_session_expires_after_the_idle_timeout(rig: ServiceRig):
    rig.service.authorize(rig.requests.balance())
    rig.clock.advance(rig.config.session_timeout_seconds - 1)
    rig.service.authorize(rig.requests.balance())
    assert rig.pins.bcrypt_runs == 1  # used again in time: the idle time restarts
    rig.clock.advance(rig.config.session_timeout_seconds + 1)
    rig.service.authorize(rig.requests.balance())
    assert rig.pins.bcrypt_runs == 2


def test_a_different_pin_block_in_a_session_is_verified_and_a_wrong_one_ends_it(rig: ServiceRig):
    rig.service.authorize(rig.requests.balance())
    assert rig.service.authorize(rig.requests.balance(pin="0000")).response_code is RC.INCORRECT_PIN
    with rig.service._sessions() as session:
        assert session.scalar(select(func.count()).select_from(CardSession)) == 0


# -- transfers -------------------------------------------------------------------------------------
def test_transfer_between_the_cards_own_accounts(rig: ServiceRig):
    request = rig.requests.make(
        TransactionType.TRANSFER,
        amount=25_000,
        from_account=AccountType.CHECKING,
        to_account=AccountType.SAVINGS,
    )
    outcome = rig.service.authorize(request)
    assert outcome.response_code is RC.APPROVED
    assert rig.balance_of(ALICE_CHECKING) == 500_000
    assert rig.balance_of(ALICE_SAVINGS) == 1_275_000
    assert outcome.balances[0].cents == 500_000
    _ledger_clean(rig)


def test_transfer_to_another_customers_account_by_number(rig: ServiceRig):
    request = rig.requests.make(
        TransactionType.TRANSFER, amount=10_025, to_account_number=BOB_CHECKING
    )
    assert rig.service.authorize(request).response_code is RC.APPROVED
    assert rig.balance_of(BOB_CHECKING) == 85_075 + 10_025
    assert rig.balance_of(ALICE_CHECKING) == 525_000 - 10_025
    _ledger_clean(rig)


@pytest.mark.parametrize("number", ["9999-9999-9999", "CASH-ATM00001", "EQUITY-OPENING"])
def test_transfer_to_an_unknown_or_internal_account_is_57(rig: ServiceRig, number: str):
    request = rig.requests.make(TransactionType.TRANSFER, amount=1_000, to_account_number=number)
    assert rig.service.authorize(request).response_code is RC.NOT_PERMITTED


def test_transfer_to_the_same_account_is_12(rig: ServiceRig):
    request = rig.requests.make(
        TransactionType.TRANSFER, amount=1_000, to_account_number=ALICE_CHECKING
    )
    assert rig.service.authorize(request).response_code is RC.INVALID_TRANSACTION


def test_transfer_limit_is_61_and_funds_51(rig: ServiceRig):
    big = rig.requests.make(
        TransactionType.TRANSFER,
        amount=250_001,
        from_account=AccountType.SAVINGS,
        to_account=AccountType.CHECKING,
    )
    assert rig.service.authorize(big).response_code is RC.EXCEEDS_WITHDRAWAL_LIMIT
    poor = rig.requests.make(
        TransactionType.TRANSFER, CHARLIE, 5_000, to_account_number=BOB_CHECKING
    )
    assert rig.service.authorize(poor).response_code is RC.INSUFFICIENT_FUNDS


# -- PIN change ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pin", ["123", "1234567", "12a4", "1111", "999999", "1234", "6543", "012345"]
)
def test_pin_rules_refuse(pin: str):
    with pytest.raises(PinRuleError):
        check_pin_rules(pin)


@pytest.mark.parametrize("pin", ["1357", "2468", "1122", "90210", "123457"])
def test_pin_rules_accept(pin: str):
    check_pin_rules(pin)


def test_pin_change_replaces_the_pin(rig: ServiceRig):
    change = rig.requests.make(TransactionType.PIN_CHANGE, new_pin="4826")
    assert rig.service.authorize(change).response_code is RC.APPROVED
    # The session goes on under the new PIN's block.
    assert rig.service.authorize(rig.requests.balance(pin="4826")).response_code is RC.APPROVED
    other = rig.requests.balance(pin="1234", terminal_id="ATM00002")
    assert rig.service.authorize(other).response_code is RC.INCORRECT_PIN
    fresh = rig.requests.balance(pin="4826", terminal_id="ATM00003")
    assert rig.service.authorize(fresh).response_code is RC.APPROVED


def test_pin_change_to_a_weak_pin_is_12_and_keeps_the_old_pin(rig: ServiceRig):
    change = rig.requests.make(TransactionType.PIN_CHANGE, new_pin="1111")
    assert rig.service.authorize(change).response_code is RC.INVALID_TRANSACTION
    request = rig.requests.balance(terminal_id="ATM00002")
    assert rig.service.authorize(request).response_code is RC.APPROVED


def test_pin_change_needs_the_current_pin(rig: ServiceRig):
    change = rig.requests.make(TransactionType.PIN_CHANGE, pin="0000", new_pin="4826")
    assert rig.service.authorize(change).response_code is RC.INCORRECT_PIN
