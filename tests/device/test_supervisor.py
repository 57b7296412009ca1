"""Supervisor mode: enter and leave, counters, balancing, replenish, journal view."""

import asyncio

from device.screens import Screen
from device.states import State
from tests.device.conftest import Atm

WITHDRAW_100 = ("F1", "F1", "F4")


async def withdraw_100(atm: Atm, take: bool = True) -> None:
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F4")
    await atm.screen("take_cash")
    if take:
        atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


async def supervisor_screen(atm: Atm, key: str, title: str = "Supervisor") -> Screen:
    atm.keys(key)
    return await atm.screen("supervisor", lambda s: s.title == title)


async def test_balancing_report_after_a_withdrawal_and_a_retract(world):
    atm = await world.atm(cash_take_timeout=0.2)
    await withdraw_100(atm)
    await withdraw_100(atm, take=False)  # retracted
    atm.controller.enter_supervisor()
    first = await atm.screen("supervisor")
    assert "Cassette 1 $50.00 x 196 ok" in first.lines
    report = await supervisor_screen(atm, "F5", "Balancing")
    # loaded - dispensed - rejected - retracted = remaining, and the dispenser agrees
    assert "C1 200-2-0-2=196 count 196" in report.lines
    assert report.lines[-1] == "BALANCED"
    printed = atm.customer.printer.receipts[-1]
    assert printed[0] == "BALANCING" and "C0 500-0-0-0=500 count 500" in printed
    (balancing,) = atm.events("BALANCING")
    assert balancing["result"] == "BALANCED"


async def test_balancing_shows_a_difference(world):
    atm = await world.atm()
    await withdraw_100(atm)
    atm.customer.dispenser.cassettes[1].count -= 1  # a note went missing
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    report = await supervisor_screen(atm, "F5", "Balancing")
    assert report.lines[-1] == "DIFFERENCE C1 -1"


async def test_print_and_reset_counters_then_replenish(world):
    atm = await world.atm()
    await withdraw_100(atm)
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    printed = await supervisor_screen(atm, "F2")
    assert printed.lines[0] == "Counters printed"
    counters = atm.customer.printer.receipts[-1]
    assert counters[0] == "COUNTERS"
    assert "C1 $50.00 L200 D2 RJ0 RT0" in counters
    assert "DISPENSED TOTAL $100.00" in counters
    await supervisor_screen(atm, "F3")
    c1 = atm.controller.counters.cassettes[1]
    assert (c1.loaded, c1.dispensed, c1.remaining) == (198, 0, 198)
    atm.customer.dispenser.cassettes[1].count = 400  # the operator loads a fuller cassette
    screen = await supervisor_screen(atm, "F1")
    assert screen.lines[0] == "Cassettes replenished"
    assert atm.controller.counters.cassettes[1].loaded == 400
    assert atm.events("REPLENISH")[0]["counts"] == "0:500,1:400"
    atm.keys("F8")
    await atm.state(State.idle)


async def test_journal_view_and_leave(world):
    atm = await world.atm()
    await withdraw_100(atm)
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    view = await supervisor_screen(atm, "F4", "Journal (latest)")
    assert any("SESSION_END" in line for line in view.lines)
    assert all("4000001234567899" not in line for line in view.lines)
    atm.keys("F8")
    await atm.state(State.out_of_service)
    await atm.state(State.idle)
    names = [r["event"] for r in atm.controller.journal_records()]
    assert names[-1] == "SIGNED_ON" and "SUPERVISOR_EXIT" in names


async def test_supervisor_times_out(world):
    atm = await world.atm(supervisor_timeout=0.2)
    atm.controller.enter_supervisor()
    await atm.state(State.supervisor)
    await atm.state(State.idle)


async def test_supervisor_not_entered_during_a_customer_session(world):
    atm = await world.atm()
    await atm.login()
    atm.controller.enter_supervisor()  # ignored: a customer is at the ATM
    atm.keys("F8")
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    assert atm.events("SUPERVISOR_ENTER") == []


async def test_damaged_counters_file_means_fault_until_the_supervisor_replenishes(world):
    config = world.device_config()
    config.counters_path.parent.mkdir(parents=True, exist_ok=True)
    config.counters_path.write_text("{damaged")
    atm = await world.atm(start=False)
    atm.task = asyncio.create_task(atm.controller.run())
    await atm.state(State.fault)
    screen = await atm.screen("fault")
    assert "recovery failed" in screen.lines[1]
    assert "damaged" in atm.events("RECOVERY_FAILED")[0]["error"]
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    await supervisor_screen(atm, "F1")  # replenish: counters start again from the dispenser
    atm.keys("F8")
    await atm.state(State.idle)
    assert atm.controller.counters.cassettes[1].loaded == 200
