"""Cash deposits through the controller, the simulated bill acceptor and a real host over
TCP: Alice deposits $300 and sees $200 available and $100 on hold; the count is journaled
before the host is asked; a host that does not answer gets the notes back and moves no
money; cancel and timeouts give the notes back; rejected notes never count."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from device.screens import Screen
from device.states import State
from drivers.simulated import SimulatedBillAcceptor, SimulatedDepository
from host.bank.holds import check_holds
from host.bank.ledger import check_ledger
from tests.device.conftest import Atm, World

ALICE_CHECKING = "1000-0001-0001"


def acceptor(atm: Atm) -> SimulatedBillAcceptor:
    device = atm.controller.devices.bill_acceptor
    assert isinstance(device, SimulatedBillAcceptor)
    return device


async def start_deposit(atm: Atm) -> None:
    await atm.login()
    atm.keys("F5")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("insert_notes")


def counted(notes: int) -> Callable[[Screen], bool]:
    def shows(screen: Screen) -> bool:
        return f"Counted: {notes} note(s)" in " ".join(screen.lines)

    return shows


async def insert(atm: Atm, *notes: int) -> None:
    for i, cents in enumerate(notes, start=1):
        atm.customer.insert_notes(cents)
        await atm.screen("insert_notes", counted(i))


async def finish(atm: Atm) -> None:
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


def ledger_clean(world: World) -> None:
    with world.host.sessions() as session:
        assert check_ledger(session) == []
        assert check_holds(session) == []


async def test_alice_deposits_300_and_sees_200_available_and_100_on_hold(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 10000, 10000, 5000, 5000)
    atm.keys("ENTER")
    confirm = await atm.screen("confirm_deposit")
    assert confirm.title == "Deposit $300.00?"
    assert confirm.lines == ("2 x $50.00", "2 x $100.00", "Total $300.00")
    atm.keys("F1")
    done = await atm.screen("message", lambda s: "deposited" in " ".join(s.lines))
    assert done.lines == ("$300.00 deposited: $200.00 available now, $100.00 on hold",)
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000 + 30_000
    assert acceptor(atm).stacked_cents() == 30_000
    events = [line.split(" | ")[2] for line in atm.journal() if line.count(" | ") >= 2]
    assert events.index("DEPOSIT_COUNTED") < events.index("TXN_REQUEST")
    (counted,) = atm.events("DEPOSIT_COUNTED")
    assert (counted["amount"], counted["notes"]) == ("30000", "5000x2,10000x2")
    (stacked,) = atm.events("DEPOSIT_STACKED")
    assert stacked["amount"] == "30000"
    (receipt,) = atm.receipts
    text = "\n".join(receipt)
    assert "CASH DEPOSIT" in text and "$300.00" in text and "ON HOLD $100.00" in text
    assert "BALANCE                $5,450.00" in text  # the available balance
    ledger_clean(world)


async def test_a_rejected_note_is_given_back_and_never_counted(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 2000)
    atm.customer.insert_notes(300)  # no such note
    await atm.screen("insert_notes", lambda s: "not accepted" in " ".join(s.lines))
    assert atm.customer.take_notes() == [300]
    atm.keys("ENTER")
    await atm.screen("confirm_deposit")
    atm.keys("F1")
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000 + 2_000
    assert atm.events("NOTE_REJECTED")[0]["reason"] == "denomination"


async def test_returning_the_notes_at_the_count_moves_no_money(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 2000, 2000)
    atm.keys("ENTER")
    await atm.screen("confirm_deposit")
    atm.keys("F8")
    await atm.screen("take_notes")
    assert atm.customer.take_notes() == [2000, 2000]
    await atm.screen("another")
    atm.keys("F8")
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000
    assert atm.events("TXN_REQUEST") == []
    assert atm.events("NOTES_RETURNED")[0]["amount"] == "4000"
    assert atm.events("NOTES_TAKEN")


async def test_deposit_timeout_a_host_that_does_not_answer_gets_the_notes_back(world):
    released = threading.Event()
    settled = threading.Event()
    authorize = world.host.service.authorize
    reversals = world.host.server.reversals
    apply_waiting = reversals.apply_waiting

    def silent_then_late(request):
        if request.mti_class == "0200":
            released.wait(20)
        return authorize(request)

    def apply_then_tell(*args):
        # The reversal that overtook the late deposit is applied (and committed) by whichever
        # call finds the deposit first: the one that returns the cents it credited back. Only
        # then is the ledger settled (the link's drain ends when the advice is acknowledged).
        credited = apply_waiting(*args)
        if credited:
            settled.set()
        return credited

    world.host.service.authorize = silent_then_late
    reversals.apply_waiting = apply_then_tell
    try:
        atm = await world.atm(response_timeout=1.0)
        await start_deposit(atm)
        await insert(atm, 10000, 10000, 10000)
        atm.keys("ENTER")
        await atm.screen("confirm_deposit")
        atm.keys("F1")
        returned = await atm.screen("take_notes")
        assert "cannot be reached" in " ".join(returned.lines)
        assert atm.customer.take_notes() == [10000, 10000, 10000]
        await atm.screen("take_card")
        released.set()  # the host's answer arrives now, too late: the link reverses it
        atm.customer.take_card()
        await atm.state(State.idle)
        assert await atm.controller.link.drain()
        assert await asyncio.to_thread(settled.wait, 20)
    finally:
        released.set()
    assert world.balance(ALICE_CHECKING) == 525_000
    assert acceptor(atm).stacked_cents() == 0
    assert atm.events("TXN_NO_RESPONSE") and atm.events("NOTES_RETURNED")
    assert atm.events("REVERSAL_QUEUED")[0]["by"] == "link"
    ledger_clean(world)


async def test_no_notes_in_time_ends_the_session(world):
    atm = await world.atm(key_timeout=0.3, more_time_seconds=0.3)
    await start_deposit(atm)
    await finish(atm)
    assert atm.events("TIMEOUT")[0]["state"] == "deposit_inserting"
    assert world.balance(ALICE_CHECKING) == 525_000


async def test_returned_notes_not_taken_stop_deposits(world):
    atm = await world.atm(key_timeout=0.3, cash_take_timeout=0.2)
    await start_deposit(atm)
    await insert(atm, 5000)
    # The customer walks away: the count is never confirmed, the notes go back, untaken.
    await atm.screen("take_notes")
    menu_after = await atm.screen("another")
    assert menu_after is not None
    assert atm.events("NOTES_NOT_TAKEN")
    assert atm.controller.deposit_fault == "returned notes not taken"
    assert acceptor(atm).at_entrance == [5000]
    assert world.balance(ALICE_CHECKING) == 525_000


async def start_check(atm: Atm, dollars: str = "500", number: str = "1042") -> None:
    await atm.login()
    atm.keys("F6")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("check_amount")
    atm.customer.type(dollars)
    await atm.screen("check_number")
    atm.customer.type(number)
    await atm.screen("insert_envelope")


async def test_check_deposit_holds_all_of_it_and_takes_the_envelope_first(world):
    atm = await world.atm()
    await start_check(atm)
    atm.customer.insert_envelope()
    done = await atm.screen("message", lambda s: "Check for" in " ".join(s.lines))
    assert done.lines == ("Check for $500.00 deposited; on hold until it clears",)
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000 + 50_000
    events = [line.split(" | ")[2] for line in atm.journal() if line.count(" | ") >= 2]
    assert events.index("ENVELOPE_TAKEN") < events.index("TXN_REQUEST")
    (request,) = atm.events("TXN_REQUEST")
    assert request["proc"] == "242000"
    depository = atm.controller.devices.depository
    assert isinstance(depository, SimulatedDepository) and len(depository.envelopes) == 1
    text = "\n".join(atm.receipts[0])
    assert "CHECK DEPOSIT" in text and "CHECK NO 1042" in text
    assert "BALANCE                $5,250.00" in text  # available: nothing yet
    ledger_clean(world)


async def test_no_envelope_deposits_nothing(world):
    atm = await world.atm()
    atm.customer.depository.inject("no_envelope")
    await start_check(atm)
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000
    assert atm.events("NO_ENVELOPE")[0]["check"] == "1042"
    assert atm.events("TXN_REQUEST") == []


def invariant_holds(world: World, atm: Atm) -> None:
    """DESIGN 7.7: notes in the stacker = deposits credited + suspects (by value)."""
    from device.activities.operator import deposit_totals

    totals = deposit_totals(atm.controller)
    assert acceptor(atm).stacked_cents() == totals["credited"] + totals["suspect"]
    assert world.balance(ALICE_CHECKING) - 525_000 == totals["credited"]


async def test_stacking_fails_after_approval_reverses_and_keeps_the_notes_as_suspect(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 10000, 5000)
    atm.keys("ENTER")
    await atm.screen("confirm_deposit")
    acceptor(atm).inject("stack_jam")
    atm.keys("F1")
    await finish(atm)
    assert await atm.controller.link.drain()
    assert world.balance(ALICE_CHECKING) == 525_000  # credited, then reversed
    (suspect,) = atm.events("DEPOSIT_SUSPECT")
    assert (suspect["amount"], suspect["notes"]) == ("15000", "5000x1,10000x1")
    (reversal,) = atm.events("REVERSAL_QUEUED")
    assert reversal["reason"] == "4007"
    assert acceptor(atm).jammed == [10000, 5000]
    assert atm.controller.deposit_fault == "bill acceptor jam"
    totals = await atm.controller.balancing_report()
    assert "DEPOSITS 0 CREDITED $0.00 CHECKS $0.00 SUSPECT $150.00" in totals
    ledger_clean(world)


async def test_stacker_full_mid_deposit_returns_the_notes_and_reverses(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 2000, 2000)
    atm.keys("ENTER")
    await atm.screen("confirm_deposit")
    acceptor(atm).inject("stacker_full")
    atm.keys("F1")
    await atm.screen("take_notes")
    assert atm.customer.take_notes() == [2000, 2000]
    await finish(atm)
    assert await atm.controller.link.drain()
    assert world.balance(ALICE_CHECKING) == 525_000
    assert atm.events("DEPOSIT_SUSPECT") == []
    assert atm.events("DEPOSIT_STACK_FAULT")[0]["code"] == "stacker_full"
    invariant_holds(world, atm)
    ledger_clean(world)


async def test_the_stacker_holds_what_was_credited_plus_suspects(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 10000, 10000, 5000, 5000)
    atm.keys("ENTER")
    await atm.screen("confirm_deposit")
    atm.keys("F1")
    await finish(atm)
    invariant_holds(world, atm)
    report = await atm.controller.balancing_report()
    assert "DEPOSITS 1 CREDITED $300.00 CHECKS $0.00 SUSPECT $0.00" in report
    assert "STACKER SHOULD HOLD $300.00" in report


async def test_a_note_jam_while_inserting_returns_the_counted_notes(world):
    atm = await world.atm()
    await start_deposit(atm)
    await insert(atm, 2000)
    acceptor(atm).inject("jam")
    atm.customer.insert_notes(5000)
    await atm.screen("take_notes")
    assert atm.customer.take_notes() == [2000]
    menu = await atm.screen("another")
    assert "A note jammed" in " ".join(menu.lines)
    atm.keys("F8")
    await finish(atm)
    assert world.balance(ALICE_CHECKING) == 525_000
    assert atm.events("NOTE_JAM")[0]["held"] == "2000x1"
    assert acceptor(atm).jammed == [5000]
    assert atm.controller.deposit_fault == "bill acceptor jam"
    assert atm.events("TXN_REQUEST") == []
