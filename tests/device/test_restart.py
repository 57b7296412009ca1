"""Restart recovery that asks the devices (``device.restart``), on simulated devices whose
physical state is what a killed ATM left (issue 12 items 1, 3, 5, 7). End to end through the
controller and a killed child process: test_crash_points.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from device.cash import CashCounters
from device.config import DeviceConfig
from device.journal import Journal, read_records
from device.restart import recover, requeue_reversals
from device.saf import SafQueue
from drivers.simulated import Cassette, SimulatedCardReader, SimulatedDispenser
from protocol.messages import Message
from tests.device.test_recovery import REQUEST

STAN = REQUEST["stan"]


class Rig:
    """The state a killed ATM left, and the devices as they are after it."""

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self.config = dataclasses.replace(
            DeviceConfig(state_dir=tmp_path / "device", sim_state_dir=tmp_path / "physical"),
            **config,
        )
        clock = lambda: dt.datetime(2026, 11, 28, 10, 10, 10, tzinfo=dt.UTC)  # noqa: E731
        self.journal = Journal(self.config.journal_path, "ATM00001", clock)
        self.counters = CashCounters(self.config.counters_path)
        self.saf = SafQueue(self.config.saf_path)
        self.dispenser = self.new_dispenser()
        self.reader = SimulatedCardReader(state_path=self.config.sim_state_path("card-reader"))

    def new_dispenser(
        self, kind: type[SimulatedDispenser] = SimulatedDispenser
    ) -> SimulatedDispenser:
        return kind(
            [Cassette(2000, 500), Cassette(5000, 200)],
            state_path=self.config.sim_state_path("dispenser"),
        )

    def queue(self, original: Message, dispensed: int, reason: str) -> bool:
        return self.saf.add(original, dispensed, reason, "1128101100") is not None

    async def presented(self) -> None:
        """An approved $100 withdrawal whose 2 x $50 are in the tray, booked and journaled."""
        self.journal.write("TXN_REQUEST", **REQUEST)
        self.journal.write("TXN_RESPONSE", stan=STAN, code="00", rrn="1")
        self.counters.ensure_loaded(await self.dispenser.status())
        self.journal.write(
            "DISPENSE_START", stan=STAN, amount=10000, notes="1:2", before="0:500,1:200"
        )
        await self.dispenser.dispense({1: 2})
        self.counters.add("dispensed", {1: 2}, key=f"{STAN}:dispensed")
        self.journal.write("DISPENSE_RESULT", stan=STAN, dispensed=10000, notes="1:2", rejected="-")

    async def restart(self, kind: type[SimulatedDispenser] = SimulatedDispenser):
        dispenser = self.new_dispenser(kind)
        reader = SimulatedCardReader(state_path=self.config.sim_state_path("card-reader"))
        counters = CashCounters(self.config.counters_path, load=False)
        outcome = await recover(self.config, self.journal, counters, dispenser, reader, self.queue)
        return outcome, dispenser, counters

    def events(self) -> list[str]:
        return [r["event"] for r in read_records(self.config.journal_path)]


async def test_notes_left_in_the_tray_are_retracted_counted_and_reversed(tmp_path):
    rig = Rig(tmp_path)
    await rig.presented()  # killed while the customer had not taken the notes
    _, dispenser, counters = await rig.restart()
    assert dispenser.presented == {} and dispenser.reject_bin == {1: 2}
    assert rig.events()[-3:] == ["RETRACT_INTENDED", "CASH_RETRACTED", "REVERSAL_QUEUED"]
    assert [e.reason for e in rig.saf.pending()] == ["4018"]
    assert (counters.cassettes[1].dispensed, counters.cassettes[1].retracted) == (0, 2)
    # A second restart changes nothing.
    _, _, counters = await rig.restart()
    assert rig.events()[-1] == "REVERSAL_QUEUED" and len(rig.saf) == 1
    assert (counters.cassettes[1].dispensed, counters.cassettes[1].retracted) == (0, 2)


async def test_an_intended_retract_the_dispenser_counted_is_a_retract(tmp_path):
    """Item 1: killed after the retract command, before ``CASH_RETRACTED``."""
    rig = Rig(tmp_path)
    await rig.presented()
    rig.journal.write("RETRACT_INTENDED", stan=STAN, count_before=0)
    await rig.dispenser.retract()
    _, _, counters = await rig.restart()
    assert rig.events()[-2:] == ["CASH_RETRACTED", "REVERSAL_QUEUED"]
    assert [e.reason for e in rig.saf.pending()] == ["4018"]
    assert counters.cassettes[1].retracted == 2


async def test_an_intended_retract_the_dispenser_did_not_count_means_taken(tmp_path):
    rig = Rig(tmp_path)
    await rig.presented()
    rig.journal.write("RETRACT_INTENDED", stan=STAN, count_before=0)
    rig.dispenser.take_cash()  # the customer was quicker than the retract
    _, _, counters = await rig.restart()
    assert "CASH_TAKEN" in rig.events() and len(rig.saf) == 0
    assert counters.cassettes[1].dispensed == 2


class CountlessDispenser(SimulatedDispenser):
    async def retracted_count(self) -> int | None:
        return None


async def test_an_unconfirmed_retract_without_a_device_count_is_a_suspect(tmp_path):
    rig = Rig(tmp_path)
    await rig.presented()
    rig.journal.write("RETRACT_INTENDED", stan=STAN, count_before="-")
    await rig.dispenser.retract()
    outcome, _, _ = await rig.restart(CountlessDispenser)
    assert outcome.cash_fault and "DISPENSE_SUSPECT" in rig.events() and len(rig.saf) == 0


@pytest.mark.parametrize("policy", ["retain", "eject"])
async def test_a_card_left_inside_is_not_offered_to_the_next_person(tmp_path, policy):
    """Item 7: retained by default; ``eject`` offers it at the gate and keeps it if nobody
    takes it."""
    rig = Rig(tmp_path, card_left_at_restart=policy, card_take_timeout=0.01)
    rig.reader.insert("4000001234567899=30121010000000000000")
    await rig.reader.accept_card()  # the session's card, inside when the ATM died
    await rig.restart()
    events = rig.events()
    assert events[:1] == ["CARD_LEFT_INSIDE"] and "CARD_CAPTURED" in events
    reader = SimulatedCardReader(state_path=rig.config.sim_state_path("card-reader"))
    assert reader.position == "none" and len(reader.captured) == 1


async def test_reversals_are_queued_again_after_a_damaged_saf_line_is_accepted(tmp_path):
    rig = Rig(tmp_path)
    await rig.presented()
    await rig.restart()  # queues the 4018
    rig.saf = SafQueue(tmp_path / "other-saf.jsonl")  # the queue lost it
    assert requeue_reversals(rig.journal, rig.queue) == 1
    assert requeue_reversals(rig.journal, rig.queue) == 0
    assert rig.events()[-1] == "REVERSAL_REQUEUED"


async def test_notes_counted_out_by_an_unanswered_dispense_are_not_counted_twice(tmp_path):
    """Item 5: killed after the counters booked the dispense, before ``DISPENSE_RESULT``;
    the notes lie in the tray. They are booked once, retracted, and the withdrawal reversed."""
    rig = Rig(tmp_path)
    await rig.presented()
    lines = rig.config.journal_path.read_bytes().splitlines(keepends=True)
    rig.config.journal_path.write_bytes(b"".join(lines[:-1]))  # DISPENSE_RESULT never written
    _, dispenser, counters = await rig.restart()
    assert dispenser.reject_bin == {1: 2}
    assert (counters.cassettes[1].dispensed, counters.cassettes[1].retracted) == (0, 2)
    assert counters.cassettes[1].remaining == 198
    assert [e.reason for e in rig.saf.pending()] == ["4018"]
