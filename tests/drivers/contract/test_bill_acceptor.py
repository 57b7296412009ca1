"""BillAcceptor contract, run on the simulated backend and on the ID003 serial driver
talking to its simulator over a pseudo-terminal. Every test also checks that no note went
missing: each inserted note is in escrow, the stacker, jammed, at the entrance or taken."""

from typing import Any

import pytest

from drivers.errors import BillAcceptorFault, DeviceTimeout
from drivers.interfaces import AcceptorState, NoteEscrowed, NoteRejected
from tests.drivers.conftest import STACKER


def notes_held(sim: Any) -> int:
    held: int = (
        sum(sim.escrow)
        + sim.stacked_cents()
        + sum(sim.jammed)
        + sum(sim.at_entrance)
        + sum(sim.taken_back)
    )
    return held


async def insert(rig: Any, *notes: int) -> list[NoteEscrowed | NoteRejected]:
    events = []
    await rig.device.enable()
    for cents in notes:
        rig.customer.insert_note(cents)
        events.append(await rig.device.wait_note(1.0))
    return events


async def test_idle_at_start(bill_acceptor):
    status = await bill_acceptor.device.status()
    assert status.state is AcceptorState.IDLE
    assert status.escrow == ()


async def test_notes_are_recognised_by_denomination_and_held(bill_acceptor):
    events = await insert(bill_acceptor, 10000, 10000, 5000, 5000)
    assert events == [
        NoteEscrowed(10000),
        NoteEscrowed(10000),
        NoteEscrowed(5000),
        NoteEscrowed(5000),
    ]
    status = await bill_acceptor.device.status()
    assert status.state is AcceptorState.ESCROW
    assert status.escrow_cents == 30000


async def test_stack_moves_the_escrow_to_the_stacker(bill_acceptor):
    await insert(bill_acceptor, 10000, 2000, 2000)
    assert await bill_acceptor.device.stack() == {10000: 1, 2000: 2}
    assert bill_acceptor.customer.stacked_cents() == 14000
    assert (await bill_acceptor.device.status()).state is AcceptorState.IDLE
    assert notes_held(bill_acceptor.customer) == 14000


async def test_return_gives_the_notes_back_and_waits_for_them_to_be_taken(bill_acceptor):
    await insert(bill_acceptor, 2000, 5000)
    assert await bill_acceptor.device.return_notes() == {2000: 1, 5000: 1}
    assert bill_acceptor.customer.stacked_cents() == 0
    assert await bill_acceptor.device.wait_returned_taken(0.05) is False
    assert bill_acceptor.customer.take_returned() == [2000, 5000]
    assert await bill_acceptor.device.wait_returned_taken(1.0) is True
    assert notes_held(bill_acceptor.customer) == 7000


async def test_unrecognised_note_is_rejected(bill_acceptor):
    (event,) = await insert(bill_acceptor, 300)  # no such note
    assert isinstance(event, NoteRejected)
    bill_acceptor.customer.inject("reject")
    (event,) = await insert(bill_acceptor, 2000)
    assert event == NoteRejected("denomination")
    assert bill_acceptor.customer.at_entrance == [300, 2000]
    assert (await bill_acceptor.device.status()).escrow == ()


async def test_a_note_before_enable_is_given_back(bill_acceptor):
    bill_acceptor.customer.insert_note(2000)
    assert await bill_acceptor.device.wait_note(1.0) == NoteRejected("inhibited")
    assert bill_acceptor.customer.take_returned() == [2000]


async def test_no_note_times_out(bill_acceptor):
    with pytest.raises(DeviceTimeout):
        await bill_acceptor.device.wait_note(0.05)


async def test_jam_in_the_acceptor(bill_acceptor):
    bill_acceptor.customer.inject("jam")
    await bill_acceptor.device.enable()
    bill_acceptor.customer.insert_note(2000)
    with pytest.raises(BillAcceptorFault) as info:
        await bill_acceptor.device.wait_note(1.0)
    assert info.value.code == "jam"
    assert (await bill_acceptor.device.status()).state is AcceptorState.JAM
    assert bill_acceptor.customer.clear_jam() == [2000]


async def test_jam_while_stacking_says_what_was_stacked(bill_acceptor):
    await insert(bill_acceptor, 2000, 5000)
    bill_acceptor.customer.inject("stack_jam")
    with pytest.raises(BillAcceptorFault) as info:
        await bill_acceptor.device.stack()
    assert info.value.code == "jam"
    assert info.value.stacked == {}
    assert bill_acceptor.customer.jammed == [2000, 5000]
    assert notes_held(bill_acceptor.customer) == 7000


async def test_stacker_full_mid_stack_keeps_the_rest_in_escrow(bill_acceptor):
    for _ in range(STACKER - 1):
        await insert(bill_acceptor, 100)
    await bill_acceptor.device.stack()
    await insert(bill_acceptor, 2000, 5000)
    with pytest.raises(BillAcceptorFault) as info:
        await bill_acceptor.device.stack()
    assert info.value.code == "stacker_full"
    assert info.value.stacked == {2000: 1}
    assert await bill_acceptor.device.return_notes() == {5000: 1}
    assert bill_acceptor.customer.take_returned() == [5000]
    with pytest.raises(BillAcceptorFault) as full:
        await bill_acceptor.device.wait_note(0.2)
    assert full.value.code == "stacker_full"


async def test_cassette_removed(bill_acceptor):
    bill_acceptor.customer.inject("cassette_removed")
    assert (await bill_acceptor.device.status()).state is AcceptorState.CASSETTE_REMOVED
    with pytest.raises(BillAcceptorFault) as info:
        await bill_acceptor.device.wait_note(0.2)
    assert info.value.code == "cassette_removed"


async def test_silent_device_times_out(bill_acceptor):
    bill_acceptor.customer.inject("silent")
    with pytest.raises(DeviceTimeout):
        await bill_acceptor.device.status()


async def test_unknown_fault_is_refused(bill_acceptor):
    with pytest.raises(ValueError, match="unknown fault"):
        bill_acceptor.customer.inject("on_fire")
