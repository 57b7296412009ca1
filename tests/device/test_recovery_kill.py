"""Kill and restart with real processes: a controller in a child process, on a real host over
TCP, is killed with SIGKILL in the middle of a dispense; a new controller on the same state
directory turns the unfinished dispense into a reversal, and a second restart does not queue it
again. (That the host then restores the balance needs the link's reversal delivery: see
test_reversals_reach_the_host.py.)"""

import pytest

from device.cash import CashCounters
from device.controller import AtmController
from device.journal import read_records
from device.states import State
from tests.device.conftest import Atm, restarted_devices, run_until_dispensing

ALICE_CHECKING = "1000-0001-0001"


@pytest.mark.parametrize(("notes_out", "dispensed", "reason"), [(0, 0, "4017"), (1, 5000, "4004")])
async def test_killed_mid_dispense_is_reversed_once(world, notes_out, dispensed, reason):
    await run_until_dispensing(world, notes_out)
    records = read_records(world.device_config().journal_path)
    events = [r["event"] for r in records]
    assert "DISPENSE_START" in events and "DISPENSE_RESULT" not in events
    # The host approved and posted the withdrawal before the kill.
    assert world.balance(ALICE_CHECKING) == 525_000 - 10_000

    for restart in (1, 2):
        config = world.device_config()
        devices, customer = restarted_devices(world, config)
        atm = Atm(AtmController(config, devices), customer)
        world.atms.append(atm)
        await atm.start()
        queued = atm.events("REVERSAL_QUEUED")
        assert len(queued) == 1, f"restart {restart}: {queued}"
        (record,) = queued
        assert record["amount"] == "10000"
        assert record["dispensed"] == str(dispensed)
        assert record["reason"] == reason
        assert record["recovered"] == "yes"
        await atm.stop()

    # The journal line that rebuilt the reversal holds no full PAN.
    text = world.device_config().journal_path.read_text()
    assert "4000001234567899" not in text
    assert "400000******7899" in text
    request = next(
        r for r in read_records(world.device_config().journal_path) if r["event"] == "TXN_REQUEST"
    )
    for key in ("mti", "proc", "amount", "time", "stan", "currency", "acceptor", "terminal"):
        assert request.get(key), key
    # The counters know the notes that left during the interrupted dispense.
    counters = CashCounters(world.device_config().counters_path)
    assert counters.cassettes[1].dispensed == notes_out


async def test_restart_after_a_clean_session_queues_nothing(world):
    atm = await world.atm()
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F1")
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    await atm.stop()
    again = await world.atm()
    assert again.events("REVERSAL_QUEUED") == []
    assert again.events("RECOVERY_NO_REVERSAL") == []
