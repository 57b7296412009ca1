"""Simulated devices keep their physical state across a crash of the process that drives them
(issue 12 item 10): the notes in the cassettes, exit tray and reject bin, the card in the
reader and the paper survive, in a state file written before the device reports a step done.
Both kinds: the in-process simulated backends and the ``atm sim`` peripheral simulators
(here driven through the real serial drivers over a pseudo-terminal)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.id003 import Id003BillAcceptor
from drivers.lcdm import LcdmDispenser
from drivers.sankyo import SankyoCardReader
from drivers.simulated import Cassette, SimulatedCardReader, SimulatedDispenser, SimulatedPrinter
from drivers.statefile import StateFileError
from simulators.bill_acceptor import BillAcceptorSimulator
from simulators.card_reader import CardReaderSimulator
from simulators.dispenser import DispenserSimulator, SimCassette
from simulators.ports import PtyPort
from tests.drivers.conftest import CASSETTES, FAST, TRACK2, serial_connect


def _dispenser(path: Path) -> SimulatedDispenser:
    return SimulatedDispenser([Cassette(d, n) for d, n in CASSETTES], state_path=path)


async def test_simulated_dispenser_notes_survive_the_process(tmp_path):
    path = tmp_path / "dispenser.json"
    first = _dispenser(path)
    await first.dispense({1: 2})  # two $50 notes in the exit tray
    # The process dies here (nothing more is called on ``first``): a new dispenser object on
    # the same file is the same machine after the restart.
    second = _dispenser(path)
    assert [c.count for c in second.cassettes] == [100, 48]
    assert await second.notes_in_tray()
    assert await second.retract() == 2
    third = _dispenser(path)
    assert not await third.notes_in_tray()
    assert third.reject_bin == {1: 2} and await third.retracted_count() == 2
    await third.dispense({0: 1})
    third.take_cash()
    fourth = _dispenser(path)
    assert fourth.taken_total == {0: 1}
    assert [c.count for c in fourth.cassettes] == [99, 48]
    # Every note is somewhere: cassettes + tray + reject bin + taken = loaded.
    state = json.loads(path.read_text())
    assert state["taken"] == {"0": 1} and state["reject_bin"] == {"1": 2} and state["tray"] == {}


async def test_notes_left_in_the_tray_pile_up_physically(tmp_path):
    """A second dispense onto untaken notes: the tray holds both (what the next customer
    would find), not just the last dispense."""
    dispenser = _dispenser(tmp_path / "d.json")
    await dispenser.dispense({1: 2})
    await dispenser.dispense({1: 2})
    assert dispenser.presented == {1: 4}


async def test_card_inside_and_paper_survive(tmp_path):
    reader = SimulatedCardReader(state_path=tmp_path / "reader.json")
    reader.insert(TRACK2)
    await reader.accept_card()
    again = SimulatedCardReader(state_path=tmp_path / "reader.json")
    assert await again.card_inside()
    text = (tmp_path / "reader.json").read_text()
    assert "4000001234567899" not in text and "400000******7899" in text  # no track data
    await again.capture()
    assert not await SimulatedCardReader(state_path=tmp_path / "reader.json").card_inside()

    printer = SimulatedPrinter(paper_lines=10, near_end_lines=3, state_path=tmp_path / "p.json")
    await printer.print_receipt(["a"] * 8)
    reloaded = SimulatedPrinter(paper_lines=10, near_end_lines=3, state_path=tmp_path / "p.json")
    assert reloaded.paper_left == 2 and (await reloaded.status()).paper == "near_end"


def test_a_damaged_state_file_is_a_clear_error(tmp_path):
    path = tmp_path / "dispenser.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match=r"dispenser.json is damaged"):
        _dispenser(path)


async def test_lcdm_simulator_keeps_notes_across_its_own_restart(tmp_path):
    """``atm sim dispenser --state FILE``: the simulator process may restart too; the notes
    it counted out and the tray stay as they were."""
    path = tmp_path / "lcdm.json"
    sim = DispenserSimulator([SimCassette(d, n) for d, n in CASSETTES], state_path=path)
    port = PtyPort(sim)
    await port.start()
    driver = LcdmDispenser(serial_connect(port, "dispenser"), CASSETTES, **FAST)
    await driver.open()
    try:
        await driver.dispense({0: 3})
    finally:
        await driver.close()
        port.close()
    again = DispenserSimulator([SimCassette(d, n) for d, n in CASSETTES], state_path=path)
    assert again.tray == {0: 3} and again.cassettes[0].count == 97


async def test_card_reader_simulator_keeps_a_card_inside(tmp_path):
    path = tmp_path / "sankyo.json"
    sim = CardReaderSimulator(state_path=path)
    port = PtyPort(sim)
    await port.start()
    reader = SankyoCardReader(serial_connect(port, "card-reader"), **FAST)
    await reader.open()
    try:
        sim.insert(TRACK2)
        await reader.accept_card()
    finally:
        await reader.close()
        port.close()
    again = CardReaderSimulator(state_path=path)
    assert again.position == "inside"
    assert "4000001234567899" not in path.read_text()


async def test_one_file_format_per_device_for_both_kinds_of_simulator(tmp_path):
    """One codec per device (``drivers.statefile``): what the in-process dispenser and card
    reader write, the ``atm sim`` simulators read, and the other way round."""
    path = tmp_path / "dispenser.json"
    await _dispenser(path).dispense({1: 2})
    sim = DispenserSimulator([SimCassette(d, n) for d, n in CASSETTES], state_path=path)
    assert [c.count for c in sim.cassettes] == [100, 48] and sim.tray == {1: 2}
    sim.take_cash()
    again = _dispenser(path)
    assert again.notes_physically_out() == {1: 2} and not await again.notes_in_tray()

    reader_path = tmp_path / "reader.json"
    reader = CardReaderSimulator(state_path=reader_path)
    reader.position, reader.card = "inside", "400000******7899"
    reader.save()
    assert SimulatedCardReader(state_path=reader_path).card == "400000******7899"


async def test_bill_acceptor_and_depository_keep_notes_and_envelopes(tmp_path):
    from drivers.simulated import SimulatedBillAcceptor, SimulatedDepository

    notes_path, bin_path = tmp_path / "acceptor.json", tmp_path / "depository.json"
    acceptor = SimulatedBillAcceptor(state_path=notes_path)
    await acceptor.enable()
    acceptor.insert_note(10000)
    acceptor.insert_note(5000)
    await acceptor.wait_note(1)
    await acceptor.wait_note(1)
    # the process dies with two notes in escrow
    after = SimulatedBillAcceptor(state_path=notes_path)
    assert (await after.status()).escrow == (10000, 5000)
    assert await after.stack() == {10000: 1, 5000: 1}
    assert SimulatedBillAcceptor(state_path=notes_path).stacked_cents() == 15000

    depository = SimulatedDepository(state_path=bin_path)
    depository.insert_envelope()
    assert await depository.take_envelope("ATM00001 CHK 1042", 1)
    assert SimulatedDepository(state_path=bin_path).envelopes == ["ATM00001 CHK 1042"]
    bin_path.write_text('{"device": "depository", "envelopes": [1]}')
    with pytest.raises(StateFileError, match=r"depository\.json is damaged"):
        SimulatedDepository(state_path=bin_path)


async def test_id003_simulator_keeps_the_notes_across_its_own_restart(tmp_path):
    """The ``atm sim bill-acceptor`` side: notes in escrow when the machine loses power are
    still in escrow when it comes back, and the stacker keeps what it stacked."""
    path = tmp_path / "acceptor.json"

    async def with_driver(
        sim: BillAcceptorSimulator, action: Callable[[Id003BillAcceptor], Awaitable[Any]]
    ) -> Any:
        port = PtyPort(sim)
        await port.start()
        driver = Id003BillAcceptor(
            serial_connect(port, "bill-acceptor"), reply_timeout=0.3, poll_interval=0.01
        )
        await driver.open()
        try:
            return await action(driver)
        finally:
            await driver.close()
            port.close()

    first = BillAcceptorSimulator(state_path=path)

    async def take_two(driver: Id003BillAcceptor) -> None:
        await driver.enable()
        first.insert_note(10000)
        first.insert_note(2000)
        await driver.wait_note(2)
        await driver.wait_note(2)

    await with_driver(first, take_two)
    second = BillAcceptorSimulator(state_path=path)  # the simulator's own restart
    assert second.escrow == [10000, 2000]
    assert await with_driver(second, lambda d: d.stack()) == {10000: 1, 2000: 1}
    assert BillAcceptorSimulator(state_path=path).stacked_cents() == 12000
    assert json.loads(path.read_text())["device"] == "bill-acceptor"
