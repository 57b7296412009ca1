"""Each fault through the simulated drivers and a real host over TCP (SQLite), checked by what
a person would notice: screens, journal lines, receipts, dispenser counters, host balances.

Where the fault ends in a reversal, these tests check the device's side (the reversal queued
once, with the right amount and reason, journaled); the host applying it needs the link's
reversal delivery and is checked in test_reversals_reach_the_host.py.
"""

import asyncio

from atm.demo import HoldingRelay
from device.states import State
from tests.device.conftest import Atm

ALICE_CHECKING = "1000-0001-0001"
BOB_CHECKING = "1000-0002-0001"


async def withdraw(atm: Atm, amount_key: str = "F4") -> None:
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys(amount_key)


def reversal(atm: Atm) -> dict[str, str]:
    (record,) = atm.events("REVERSAL_QUEUED")
    return record


async def test_dispenser_jam_before_any_note(world):
    atm = await world.atm()
    atm.customer.dispenser.inject("jam")
    await atm.login()
    await withdraw(atm)
    notice = await atm.screen("message")
    assert "Unable to dispense cash" in notice.lines[0]
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    record = reversal(atm)
    assert (record["amount"], record["dispensed"], record["reason"]) == ("10000", "0", "4017")
    assert atm.customer.dispenser.taken_total == {}
    assert [c.count for c in atm.customer.dispenser.cassettes] == [500, 200]
    (receipt,) = atm.receipts
    assert "NO CASH DISPENSED - REVERSED" in receipt
    # Cash service stays off until the supervisor has looked at the dispenser.
    await atm.login()
    menu = atm.all_screens[-1]
    assert "F1" not in menu.soft_keys and "Cash withdrawal unavailable" in menu.lines
    atm.keys("F8")
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    atm.keys("F8")
    await atm.state(State.idle)
    await atm.login()
    assert "F1" in atm.all_screens[-1].soft_keys


async def test_partial_dispense(world):
    atm = await world.atm()
    atm.customer.dispenser.inject("partial")
    await atm.login()
    await withdraw(atm)  # $100 = 2 x $50; the dispenser jams after one
    screen = await atm.screen("take_cash")
    assert screen.lines[0] == "Only $50.00 could be dispensed"
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    record = reversal(atm)
    assert (record["dispensed"], record["reason"]) == ("5000", "4004")
    assert atm.customer.dispenser.taken_total == {1: 1}
    assert atm.controller.counters.cassettes[1].dispensed == 1
    (receipt,) = atm.receipts
    assert "DISPENSED $50.00 ONLY" in receipt


async def test_cassette_empty_hides_withdrawal_and_journals_the_level(world):
    atm = await world.atm()
    atm.customer.dispenser.inject("cassette_empty")
    await atm.login()
    menu = atm.all_screens[-1]
    assert "F1" not in menu.soft_keys
    atm.keys("F1")  # not offered: ignored
    atm.keys("F8")
    await atm.screen("take_card")
    levels = atm.events("CASSETTE_LEVEL")
    assert {(r["cassette"], r["level"]) for r in levels} == {("0", "empty"), ("1", "empty")}
    assert atm.events("TXN_REQUEST") == []


async def test_near_empty_threshold_and_amount_the_cassettes_cannot_make(world):
    atm = await world.atm(near_empty_notes=300, empty_notes=198)
    await atm.login()
    # The $50 cassette (200 notes) is near empty and holds a reserve of 198: two usable.
    assert {(r["cassette"], r["level"]) for r in atm.events("CASSETTE_LEVEL")} == {
        ("1", "near_empty")
    }
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.customer.type("30")  # $20 and $50 notes cannot make $30
    refused = await atm.screen("select_amount", lambda s: len(s.lines) == 2)
    assert refused.lines[0] == "$30.00 cannot be dispensed; choose another amount"
    atm.customer.type("150")  # needs 3 x $50 or 5 x $20 + 1 x $50 -> uses the $20s
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    (refusal,) = atm.events("AMOUNT_REFUSED")
    assert refusal["amount"] == "3000"
    (request,) = atm.events("TXN_REQUEST")  # the refused amount never reached the host
    assert request["amount"] == "15000"
    (start,) = atm.events("DISPENSE_START")
    assert start["notes"] == "0:5,1:1"  # only two $50 notes above the reserve
    assert world.balance(ALICE_CHECKING) == 525_000 - 15_000


async def test_cash_not_taken_is_retracted_and_reversed(world):
    atm = await world.atm(cash_take_timeout=0.2)
    await atm.login()
    await withdraw(atm)
    await atm.screen("take_cash")
    await atm.state(State.printing)
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    record = reversal(atm)
    assert (record["dispensed"], record["reason"]) == ("0", "4018")
    (retracted,) = atm.events("CASH_RETRACTED")
    assert retracted["notes"] == "2"
    assert atm.customer.dispenser.retracted == 2
    assert atm.customer.dispenser.taken_total == {}
    counters = atm.controller.counters.cassettes[1]
    assert (counters.dispensed, counters.retracted, counters.remaining) == (0, 2, 198)
    (receipt,) = atm.receipts
    assert "CASH RETRACTED - REVERSED" in receipt


async def test_card_not_taken_is_captured(world):
    atm = await world.atm(card_take_timeout=0.2)
    await atm.login()
    atm.keys("F8")  # cancel at the menu
    await atm.screen("take_card")
    await atm.state(State.capturing_card)
    retained = await atm.screen("card_retained")
    assert "Card not taken in time" in retained.lines[0]
    await atm.state(State.idle)
    assert atm.customer.card_reader.captured == ["card"]
    assert atm.events("CARD_CAPTURED")


async def test_card_jam_puts_the_atm_out_of_service_until_the_supervisor(world):
    atm = await world.atm()
    atm.customer.card_reader.inject("card_jam")
    await atm.screen("welcome")
    atm.customer.card_reader.insert("4000001234567899=30121010000000000000")
    await atm.state(State.fault)
    screen = await atm.screen("fault")
    assert "card jam" in screen.lines[1]
    atm.customer.card_reader.clear()
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    atm.keys("F8")
    await atm.state(State.idle)
    names = [line.split(" | ")[2] for line in atm.journal()]
    assert (
        names.index("CARD_JAM") < names.index("SUPERVISOR_ENTER") < names.index("SUPERVISOR_EXIT")
    )


async def test_unreadable_card_is_returned(world):
    atm = await world.atm()
    atm.customer.card_reader.inject("unreadable")
    await atm.screen("welcome")
    atm.customer.card_reader.insert("4000001234567899=30121010000000000000")
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "Your card cannot be read"
    atm.customer.take_card()
    await atm.state(State.idle)
    assert atm.events("CARD_UNREADABLE") and atm.events("CARD_RETURNED")


async def test_printer_out_of_paper(world):
    atm = await world.atm()
    atm.customer.printer.inject("paper_out")
    await atm.login()
    atm.keys("F2")
    await atm.screen("select_account")
    atm.keys("F1")
    balance = await atm.screen("balance")
    assert "F4" not in balance.soft_keys and "Receipts unavailable" in balance.lines
    atm.keys("F4")  # not offered: ignored
    atm.keys("F8")
    await atm.screen("another")
    atm.keys("F4")
    await atm.screen("main_menu")
    await withdraw(atm, "F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    assert atm.receipts == [] and atm.customer.printer.receipts == []
    assert atm.events("RECEIPT_SKIPPED")
    assert world.balance(ALICE_CHECKING) == 525_000 - 2_000


async def test_pin_pad_timeout_ends_the_session(world):
    atm = await world.atm(key_timeout=0.2, more_time_seconds=0)
    await atm.screen("welcome")
    atm.customer.card_reader.insert("4000001234567899=30121010000000000000")
    await atm.screen("enter_pin")
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "No PIN entered in time"
    atm.customer.take_card()
    await atm.state(State.idle)
    (timeout,) = atm.events("TIMEOUT")
    assert timeout["state"] == "pin_entry"


async def test_no_key_at_the_menu_ends_the_session(world):
    atm = await world.atm(key_timeout=0.2, more_time_seconds=0)
    await atm.login()
    await atm.state(State.returning_card)
    atm.customer.take_card()
    await atm.state(State.idle)
    (timeout,) = atm.events("TIMEOUT")
    assert timeout["state"] == "main_menu"


async def test_host_timeout(world):
    relay = HoldingRelay("127.0.0.1", world.port)
    relay_port = await relay.start()
    try:
        atm = await world.atm(port=relay_port, response_timeout=0.2)
        await atm.login()
        atm.keys("F1")
        await atm.screen("select_account")
        atm.keys("F1")
        await atm.screen("select_amount")
        relay.holding = True
        atm.keys("F1")
        screen = await atm.screen("take_card")
        assert screen.lines[0] == "The bank cannot be reached. Please try later"
        relay.holding = False
        atm.customer.take_card()
        await atm.state(State.idle)
    finally:
        await atm.stop()
        await relay.close()
    assert atm.events("TXN_NO_RESPONSE")
    assert atm.customer.dispenser.taken_total == {}
    assert [c.count for c in atm.customer.dispenser.cassettes] == [500, 200]
    assert world.balance(ALICE_CHECKING) == 525_000  # the request never reached the host


async def test_host_down_and_back_by_itself(world):
    atm = await world.atm(idle_echo_interval=0.1)
    await world.host.server.close()
    await atm.state(State.out_of_service)
    assert atm.events("LINK_DOWN")
    await asyncio.wait_for(world.host.server.start("127.0.0.1", world.port), 5)
    await atm.state(State.idle)
    await atm.login()
    await withdraw(atm, "F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    assert world.balance(ALICE_CHECKING) == 525_000 - 2_000


async def test_host_down_during_a_session_goes_out_of_service(world):
    atm = await world.atm()
    await atm.login()
    atm.keys("F2")
    await atm.screen("select_account")
    await world.host.server.close()
    atm.keys("F1")
    screen = await atm.screen("take_card")
    assert "cannot be reached" in screen.lines[0]
    atm.customer.take_card()
    await atm.state(State.out_of_service)
    await world.host.server.start("127.0.0.1", world.port)
    await atm.state(State.idle)


async def wrong_pin_three_times(atm: Atm) -> None:
    await atm.login("bob", "1111")
    atm.keys("F2")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("pin_retry")
    atm.customer.type("2222")
    await atm.state(State.authorizing)
    await atm.screen("pin_retry")
    atm.customer.type("3333")


async def test_wrong_pin_three_times_returns_the_card(world):
    atm = await world.atm()
    await wrong_pin_three_times(atm)
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "PIN tries exceeded"
    atm.customer.take_card()
    await atm.state(State.idle)
    codes = [r["code"] for r in atm.events("TXN_RESPONSE")]
    assert codes == ["55", "55", "75"]
    assert atm.customer.card_reader.captured == []


async def test_wrong_pin_three_times_card_kept_when_configured(world):
    atm = await world.atm(retain_card_on_pin_tries_exceeded=True)
    await wrong_pin_three_times(atm)
    await atm.screen("card_retained")
    await atm.state(State.idle)
    assert atm.customer.card_reader.captured == ["card"]


async def test_expired_card_is_declined_and_returned(world):
    atm = await world.atm()
    await atm.login("expired", "9012")
    atm.keys("F2")
    await atm.screen("select_account")
    atm.keys("F1")
    screen = await atm.screen("take_card")
    assert screen.lines[0] == "Expired card"
    atm.customer.take_card()
    await atm.state(State.idle)
    assert atm.customer.card_reader.captured == []


async def test_stolen_card_is_captured(world):
    atm = await world.atm()
    await atm.login("stolen", "9012")
    await withdraw(atm, "F1")
    screen = await atm.screen("card_retained")
    assert screen.lines[0] == "Stolen card, card retained"
    await atm.state(State.idle)
    assert atm.customer.card_reader.captured == ["card"]
    assert atm.customer.dispenser.taken_total == {}
