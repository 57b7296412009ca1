"""Customer flows through a real host: account choice, another transaction, cancel at every
step, and what the device sends for transfers and PIN changes (the host's answers to those
need the host's transfer/PIN-change support: test_transfer_pin_change_statement.py)."""

import pytest

from device.events import LinkMessage
from device.states import State
from protocol.messages import Message
from tests.device.conftest import Atm

ALICE_CHECKING, ALICE_SAVINGS = "1000-0001-0001", "1000-0001-0002"


def sent(atm: Atm) -> list[Message]:
    messages: list[Message] = []
    atm.controller.events.subscribe(
        lambda e: (
            messages.append(e.message)
            if isinstance(e, LinkMessage) and e.direction == "send"
            else None
        )
    )
    return messages


async def finish(atm: Atm) -> None:
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


async def test_withdrawal_from_savings_with_a_typed_amount(world):
    atm = await world.atm()
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F2")
    await atm.screen("select_amount")
    atm.customer.type("140")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)
    assert world.balance(ALICE_SAVINGS) == 1_250_000 - 14_000
    assert world.balance(ALICE_CHECKING) == 525_000
    (start,) = atm.events("DISPENSE_START")
    assert start["notes"] == "0:2,1:2"
    (receipt,) = atm.receipts
    text = "\n".join(receipt)
    assert "ACCOUNT                  Savings" in text and "$140.00" in text
    assert "400000******7899" in text and "STAN" in text and "TERMINAL" in text


async def test_balance_then_another_transaction_then_withdrawal(world):
    atm = await world.atm()
    await atm.login()
    atm.keys("F2")
    await atm.screen("select_account")
    atm.keys("F1")
    balance = await atm.screen("balance")
    assert balance.lines[:2] == ("Checking available balance:", "$5,250.00")
    atm.keys("F8")
    await atm.screen("another")
    atm.keys("F4")
    await atm.screen("main_menu")
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F2")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000 - 4_000
    assert len(atm.events("SESSION_START")) == 1
    assert [r["code"] for r in atm.events("TXN_RESPONSE")] == ["00", "00"]


async def test_balance_receipt_on_request(world):
    atm = await world.atm()
    await atm.login()
    atm.keys("F2")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("balance")
    atm.keys("F4")
    await atm.screen("another")
    atm.keys("F8")
    await finish(atm)
    (receipt,) = atm.receipts
    assert "BALANCE INQUIRY" in receipt
    assert any("$5,250.00" in line for line in receipt)


STEPS = {
    "enter_pin": [],
    "main_menu": ["PIN"],
    "select_account": ["PIN", "F1"],
    "select_amount": ["PIN", "F1", "F1"],
    "select_to_account": ["PIN", "F3", "F1"],
    "transfer_amount": ["PIN", "F3", "F1", "F2"],
    "new_pin": ["PIN", "F4"],
}


@pytest.mark.parametrize("where", list(STEPS))
async def test_cancel_at_any_step_returns_the_card(world, where):
    atm = await world.atm()
    await atm.screen("welcome")
    atm.customer.card_reader.insert("4000001234567899=30121010000000000000")
    for key in STEPS[where]:
        if key == "PIN":
            atm.customer.type("1234")
        else:
            atm.keys(key)
    await atm.screen(where)
    atm.keys("CANCEL")
    await finish(atm)
    assert atm.events("CANCELLED") and atm.events("CARD_RETURNED")
    assert atm.events("TXN_REQUEST") == []
    assert world.balance(ALICE_CHECKING) == 525_000


async def test_transfer_request_carries_both_accounts(world):
    atm = await world.atm()
    messages = sent(atm)
    await atm.login()
    atm.keys("F3")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_to_account")
    atm.keys("F1")  # the same account: refused on the spot
    await atm.screen("message")
    await atm.screen("select_to_account")
    atm.keys("F2")
    await atm.screen("transfer_amount")
    atm.customer.type("250")
    await atm.state(State.authorizing)
    await atm.screen("another")
    atm.keys("F8")
    await finish(atm)
    request = messages[-1]
    assert (request["t"], request["3"], request["4"]) == ("0200", "402010", "000000025000")


async def test_pin_change_sends_both_blocks_after_a_matching_confirmation(world):
    atm = await world.atm()
    messages = sent(atm)
    await atm.login("charlie", "9012")
    atm.keys("F4")
    await atm.screen("new_pin")
    atm.customer.type("4826")
    await atm.screen("confirm_pin")
    atm.customer.type("4862")  # does not match
    retry = await atm.screen("new_pin", lambda s: not s.input_value)
    assert retry.lines[0] == "The two PINs do not match. Try again"
    atm.customer.type("4826")
    await atm.screen("confirm_pin")
    atm.customer.type("4826")
    await atm.state(State.authorizing)
    await atm.screen("another")
    atm.keys("F8")
    await finish(atm)
    request = messages[-1]
    assert request["3"] == "700000"
    assert len(request["48"]) == 16 and len(request["52"]) == 16
    assert request["48"] != request["52"]  # new PIN block, current PIN block
    assert atm.events("NEW_PIN_MISMATCH")
    # Neither PIN nor block reaches the journal.
    journal = "\n".join(atm.journal())
    assert request["48"] not in journal and request["52"] not in journal


async def test_journal_counters_dispenser_and_host_tell_the_same_story(world):
    """DESIGN §7 (2, 5): cash debited by the host == notes that left and were taken, by value,
    per the journal, the controller's counters and the dispenser (no reversal involved)."""
    atm = await world.atm()
    for who, pin, key in (("alice", "1234", "F4"), ("bob", "5678", "F2"), ("alice", "1234", "F1")):
        await atm.login(who, pin)
        atm.keys("F1")
        await atm.screen("select_account")
        atm.keys("F1")
        await atm.screen("select_amount")
        atm.keys(key)
        await atm.screen("take_cash")
        atm.customer.take_cash()
        await finish(atm)
    debited = (525_000 - world.balance(ALICE_CHECKING)) + (85_075 - world.balance("1000-0002-0001"))
    journal_taken = sum(int(r["amount"]) for r in atm.events("CASH_TAKEN"))
    counters = atm.controller.counters.cassettes
    counted = sum(c.denomination_cents * c.dispensed for c in counters.values())
    cassettes = atm.customer.dispenser.cassettes
    taken = sum(
        cassettes[i].denomination_cents * n for i, n in atm.customer.dispenser.taken_total.items()
    )
    assert debited == journal_taken == counted == taken == 10_000 + 4_000 + 2_000
    assert all(c.remaining == cassettes[i].count for i, c in counters.items())
