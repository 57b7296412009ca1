"""CashDispenser contract, run on the simulated backend and on the LCDM-2000 and LCDM-4000
serial drivers talking to their simulators over a pseudo-terminal (the LCDM-4000 with two of
its four positions loaded)."""

import pytest

from drivers.errors import DeviceTimeout, DispenserFault
from drivers.interfaces import CassetteState


async def test_status_reports_cassettes(dispenser):
    status = await dispenser.device.status()
    assert [(c.index, c.denomination_cents, c.count, c.state) for c in status] == [
        (0, 2000, 100, CassetteState.OK),
        (1, 5000, 50, CassetteState.OK),
    ]


async def test_dispense_take_and_counters(dispenser):
    result = await dispenser.device.dispense({0: 2, 1: 1})
    assert dict(result.dispensed) == {0: 2, 1: 1}
    dispenser.customer.take_cash()
    assert await dispenser.device.wait_taken(2.0) is True
    counts = [c.count for c in await dispenser.device.status()]
    assert counts == [98, 49]


async def test_more_than_one_command_worth_of_notes(dispenser):
    result = await dispenser.device.dispense({0: 75})
    assert dict(result.dispensed) == {0: 75}
    assert (await dispenser.device.status())[0].count == 25


async def test_not_taken_then_retract(dispenser):
    await dispenser.device.dispense({0: 3})
    assert await dispenser.device.wait_taken(0.05) is False
    assert await dispenser.device.retract() == 3


async def test_jam_before_any_note(dispenser):
    dispenser.customer.inject("jam")
    with pytest.raises(DispenserFault) as info:
        await dispenser.device.dispense({0: 2, 1: 1})
    assert info.value.code == "jam"
    assert sum(info.value.dispensed.values()) == 0


async def test_partial_dispense_reports_what_left(dispenser):
    dispenser.customer.inject("partial")
    with pytest.raises(DispenserFault) as info:
        await dispenser.device.dispense({0: 4})
    assert info.value.code == "jam"
    assert info.value.dispensed == {0: 2}


async def test_cassette_empty(dispenser):
    dispenser.customer.inject("cassette_empty")
    assert CassetteState.EMPTY in {c.state for c in await dispenser.device.status()}
    with pytest.raises(DispenserFault) as info:
        await dispenser.device.dispense({0: 1})
    assert info.value.code == "empty"
    assert sum(info.value.dispensed.values()) == 0


async def test_cassette_missing(dispenser):
    dispenser.customer.inject("cassette_missing")
    assert {c.state for c in await dispenser.device.status()} == {CassetteState.MISSING}
    with pytest.raises(DispenserFault) as info:
        await dispenser.device.dispense({1: 1})
    assert info.value.code == "cassette_missing"


async def test_clear_restores_service(dispenser):
    dispenser.customer.inject("jam")
    dispenser.customer.clear()
    assert dict((await dispenser.device.dispense({1: 1})).dispensed) == {1: 1}


async def test_bad_request_is_refused(dispenser):
    with pytest.raises(ValueError):
        await dispenser.device.dispense({7: 1})


async def test_unknown_fault_is_refused(dispenser):
    with pytest.raises(ValueError, match="unknown fault"):
        dispenser.customer.inject("on_fire")


async def test_silent_device_times_out(dispenser):
    dispenser.customer.inject("silent")
    with pytest.raises(DeviceTimeout):
        await dispenser.device.status()
