"""A dispense whose outcome is unknown: the dispenser stops answering mid-dispense. Through the
simulated dispenser (``hang``: it answers again and says what it counted out; ``lost``: it
stays silent) and through the LCDM-2000 serial driver talking to the dispenser simulator over
a real pseudo-terminal (its ``silent`` fault, set the moment the dispense starts), against the
real host over TCP. The ledger, the journal and the dispenser counters must agree, and nothing
is ever reversed twice (nor blindly)."""

from __future__ import annotations

import asyncio
import json

from atm.devices import open_kit
from atm.scripts import ALICE_CHECKING, Customer
from device.controller import AtmController
from device.journal import JournalRecord, seal
from device.recovery import find_suspects, find_unfinished
from device.screens import Screen
from device.states import State
from drivers.interfaces import CassetteState, CassetteStatus
from drivers.simulated import SimulatedDispenser
from host.bank.ledger import check_ledger
from simulators.dispenser import DispenserSimulator
from tests.device.conftest import WAIT, Atm, World

PAN = "4000001234567899"


async def _withdraw_100(atm: Atm) -> None:
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F4")


async def _supervisor(atm: Atm, key: str, title: str = "Supervisor") -> Screen:
    atm.keys(key)
    return await atm.screen("supervisor", lambda s: s.title == title)


async def _drained(atm: Atm) -> None:
    async def until_empty() -> None:
        while not await atm.controller.link.drain():
            await atm.controller.link.ensure_online()

    await asyncio.wait_for(until_empty(), WAIT)


def _dispenser(atm: Atm, hang_timeout: float = 0.2) -> SimulatedDispenser:
    dispenser = atm.customer.dispenser
    assert isinstance(dispenser, SimulatedDispenser)
    dispenser.hang_timeout = hang_timeout
    return dispenser


def _saf_ops(atm: Atm) -> list[dict[str, object]]:
    path = atm.controller.config.saf_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _events(atm: Atm) -> list[str]:
    return [r["event"] for r in atm.controller.journal_records()]


async def test_dispenser_hangs_then_reports_what_it_counted(world: World):
    """``hang``: the notes are out, the answer never comes; asked afterwards the dispenser
    tells what it counted out, so the withdrawal goes on as a complete dispense."""
    before = world.balance(ALICE_CHECKING)
    atm = await world.atm()
    _dispenser(atm).inject("hang")
    await _withdraw_100(atm)
    await atm.screen("take_cash")
    atm.customer.take_cash()
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)

    events = _events(atm)
    assert events.index("DISPENSE_START") < events.index("DISPENSE_UNKNOWN")
    assert events.index("DISPENSE_UNKNOWN") < events.index("DISPENSE_RESULT")
    (unknown,) = atm.events("DISPENSE_UNKNOWN")
    assert (unknown["amount"], unknown["notes"]) == ("10000", "1:2")
    assert "DeviceTimeout" in unknown["error"]
    (result,) = atm.events("DISPENSE_RESULT")
    assert (result["dispensed"], result["notes"], result["established"]) == ("10000", "1:2", "yes")
    assert "CASH_TAKEN" in events and "REVERSAL_QUEUED" not in events
    assert world.balance(ALICE_CHECKING) == before - 10_000
    assert atm.controller.counters.cassettes[1].dispensed == 2
    assert atm.customer.dispenser.taken_total == {1: 2}
    # The dispenser misbehaved: cash service stays off until the supervisor has looked.
    await atm.login()
    assert "F1" not in atm.all_screens[-1].soft_keys
    atm.keys("F8")
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)


async def test_lost_dispenser_makes_a_suspect_the_operator_settles_as_paid(world: World):
    """``lost``: the notes left (the cassette is two $50 short) but the dispenser never says
    so. No reversal; the card comes back; balancing shows the suspect and the missing notes;
    the operator settles it as paid and everything balances."""
    before = world.balance(ALICE_CHECKING)
    atm = await world.atm()
    dispenser = _dispenser(atm)
    dispenser.inject("lost")
    await _withdraw_100(atm)
    notice = await atm.screen("message")
    assert "could not confirm your cash" in notice.lines[0]
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)

    (suspect,) = atm.events("DISPENSE_SUSPECT")
    assert (suspect["amount"], suspect["notes"]) == ("10000", "1:2")
    assert "REVERSAL_QUEUED" not in _events(atm) and atm.controller.link.pending_reversals() == 0
    assert _saf_ops(atm) == []
    assert world.balance(ALICE_CHECKING) == before - 10_000
    (receipt,) = atm.receipts
    assert "DISPENSE NOT CONFIRMED - UNDER REVIEW" in receipt
    assert atm.controller.counters.cassettes[1].dispensed == 0  # not booked blindly

    dispenser.clear()  # the operator repairs it
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    report = await _supervisor(atm, "F5", "Balancing")
    assert "SUSPECT STAN 000002 $100.00 notes 1:2" in report.lines
    assert report.lines[-1] == "DIFFERENCE C1 -2; SUSPECT $100.00 TO SETTLE (1)"
    settled = await _supervisor(atm, "F7")
    assert "STAN 000002 settled as dispensed" in settled.lines
    report = await _supervisor(atm, "F5", "Balancing")
    assert report.lines[-1] == "BALANCED"
    await _supervisor(atm, "F7")  # nothing left to settle: nothing happens twice
    assert len(atm.events("SUSPECT_SETTLED")) == 1
    atm.keys("F8")
    await atm.state(State.idle)
    assert world.balance(ALICE_CHECKING) == before - 10_000
    assert atm.controller.counters.cassettes[1].dispensed == 2


async def test_silent_lcdm_dispenser_suspect_settled_as_not_paid(world: World, tmp_path):
    """The LCDM-2000 serial driver against the dispenser simulator on a pty; the simulator
    goes silent as the dispense starts, so the command never reaches it and no note leaves.
    The card comes back; the operator counts, finds every note, settles: one reversal, the
    host balance restored exactly once, and a restart reverses nothing more."""
    before = world.balance(ALICE_CHECKING)
    config = world.device_config()
    kit = await open_kit({"dispenser": "pty"}, config)
    assert kit.card_reader and kit.pin_pad and kit.dispenser
    assert kit.urls["dispenser"].startswith("serial://")
    lcdm = kit.simulators["dispenser"]
    assert isinstance(lcdm, DispenserSimulator)
    atm = Atm(
        AtmController(config, kit.devices), Customer(kit.card_reader, kit.pin_pad, kit.dispenser)
    )
    world.atms.append(atm)

    def go_silent(line: str) -> None:
        if " | DISPENSE_START | " in line:
            lcdm.inject("silent")

    atm.controller.journal.listeners.append(go_silent)
    try:
        await atm.start()
        await _withdraw_100(atm)
        await atm.screen("take_card")
        atm.customer.take_card()
        await atm.state(State.idle)

        (unknown,) = atm.events("DISPENSE_UNKNOWN")
        assert unknown["stan"] == "000002" and unknown["amount"] == "10000"
        assert len(atm.events("DISPENSE_SUSPECT")) == 1
        assert "REVERSAL_QUEUED" not in _events(atm) and _saf_ops(atm) == []
        assert world.balance(ALICE_CHECKING) == before - 10_000  # not reversed blindly
        assert [c.count for c in lcdm.cassettes] == [500, 200]  # no note left, in fact

        lcdm.clear("silent")
        atm.controller.enter_supervisor()
        await atm.screen("supervisor")
        report = await _supervisor(atm, "F5", "Balancing")
        assert report.lines[-1] == "BALANCED; SUSPECT $100.00 TO SETTLE (1)"
        await _supervisor(atm, "F6")
        await _supervisor(atm, "F6")  # a second press finds nothing to settle
        atm.keys("F8")
        await atm.state(State.idle)
        await _drained(atm)
    finally:
        await atm.stop()
    (reversal,) = atm.events("REVERSAL_QUEUED")
    assert (reversal["stan"], reversal["amount"], reversal["reason"]) == ("000002", "10000", "4017")
    (settled,) = atm.events("SUSPECT_SETTLED")
    assert settled["outcome"] == "not_dispensed"
    assert [op["op"] for op in _saf_ops(atm)].count("add") == 1
    assert world.balance(ALICE_CHECKING) == before
    with world.host.sessions() as session:
        assert check_ledger(session) == []
    assert atm.controller.counters.cassettes[1].dispensed == 0
    assert PAN not in atm.controller.journal.path.read_text()

    # Restart on the same journal: nothing to recover, nothing reversed again.
    again = await world.atm()
    assert [r for r in again.events("REVERSAL_QUEUED") if r.get("recovered")] == []
    assert again.events("DISPENSE_SUSPECT")[-1].get("recovered") is None
    assert again.controller.link.pending_reversals() == 0
    assert world.balance(ALICE_CHECKING) == before
    kit.close()


async def test_card_is_retained_when_the_reader_fails_after_a_suspect_dispense(world: World):
    atm = await world.atm()
    _dispenser(atm).inject("lost")

    def jam_reader(line: str) -> None:
        if " | DISPENSE_SUSPECT | " in line:
            atm.customer.card_reader.inject("card_jam")

    atm.controller.journal.listeners.append(jam_reader)
    await _withdraw_100(atm)
    await atm.screen("card_retained")
    await atm.state(State.idle)
    events = _events(atm)
    assert events.index("DISPENSE_SUSPECT") < events.index("CARD_NOT_RETURNED")
    assert "CARD_CAPTURED" in events and atm.customer.card_reader.captured == ["card"]
    assert "REVERSAL_QUEUED" not in events


def test_recovery_never_reverses_an_unknown_dispense():
    request = JournalRecord(
        event="TXN_REQUEST",
        stan="000002",
        mti="0200",
        proc="011000",
        amount="10000",
        time="1128120000",
        currency="840",
        acceptor="ATMSIM000000001",
        terminal="ATM00001",
    )
    approved = JournalRecord(event="TXN_RESPONSE", stan="000002", code="00")
    start = JournalRecord(event="DISPENSE_START", stan="000002", notes="1:2", before="0:500,1:200")
    unknown = JournalRecord(event="DISPENSE_UNKNOWN", stan="000002", amount="10000", notes="1:2")
    suspect = JournalRecord(event="DISPENSE_SUSPECT", stan="000002", amount="10000", notes="1:2")
    settled = JournalRecord(event="SUSPECT_SETTLED", stan="000002", outcome="dispensed")
    now = [CassetteStatus(0, 2000, 500, CassetteState.OK), CassetteStatus(1, 5000, 200, "ok")]  # type: ignore[arg-type]
    # Killed while finding out: a suspect, never a reversal.
    (item,) = find_unfinished([request, approved, start, unknown], now)
    assert item.suspect and not item.needs_reversal
    # Handed to the operator, then settled: nothing for recovery either way.
    assert find_unfinished([request, approved, start, unknown, suspect], now) == []
    records = [request, approved, start, unknown, suspect]
    assert [s.stan for s in find_suspects(records)] == ["000002"]
    assert find_suspects([*records, settled]) == []
    # A suspect journaled by recovery (notes unknown there) takes the notes asked for.
    recovered = JournalRecord(event="DISPENSE_SUSPECT", stan="000002", notes="-", recovered="yes")
    (found,) = find_suspects([request, approved, start, unknown, recovered])
    assert found.notes == {1: 2} and found.amount_cents == 10_000


async def test_restart_after_dying_mid_decision_makes_a_suspect_not_a_reversal(world: World):
    """A controller killed between DISPENSE_UNKNOWN and its decision: the restarted one
    journals the suspect (recovered=yes), queues no reversal, and balancing shows it."""
    config = world.device_config()
    config.state_dir.mkdir(parents=True, exist_ok=True)
    t, term = "2026-11-28T12:00:00+00:00", config.terminal_id
    lines = [
        f"TXN_REQUEST | stan=000002 | type=WITHDRAWAL | mti=0200 | proc=011000 | amount=10000 "
        f"| time=1128120000 | currency=840 | acceptor={config.acceptor_id} | pan=400000******7899",
        "TXN_RESPONSE | stan=000002 | code=00 | rrn=000000000001",
        "DISPENSE_START | stan=000002 | amount=10000 | notes=1:2 | before=0:500,1:200",
        "DISPENSE_UNKNOWN | stan=000002 | amount=10000 | notes=1:2 | error=DeviceTimeout: x",
    ]
    config.journal_path.write_text("".join(seal(f"{t} | {term} | {line}") + "\n" for line in lines))
    config.journal_path.chmod(0o600)  # as the controller creates it (device/private_files.py)
    atm = await world.atm()
    (suspect,) = atm.events("DISPENSE_SUSPECT")
    assert suspect["recovered"] == "yes"
    assert atm.events("REVERSAL_QUEUED") == [] and atm.controller.link.pending_reversals() == 0
    atm.controller.enter_supervisor()
    await atm.screen("supervisor")
    report = await _supervisor(atm, "F5", "Balancing")
    assert "SUSPECT STAN 000002 $100.00 notes 1:2" in report.lines


async def test_dispenser_silent_before_the_dispense_command_is_a_certain_no_cash(world: World):
    """The status before the dispense command fails: no command was given, so no note left;
    a full reversal (4017) is certain, not a suspect."""
    before = world.balance(ALICE_CHECKING)
    atm = await world.atm()
    dispenser = _dispenser(atm)

    def go_silent(line: str) -> None:
        if " | TXN_RESPONSE | " in line:
            dispenser.inject("silent")

    atm.controller.journal.listeners.append(go_silent)
    await _withdraw_100(atm)
    await atm.screen("take_card")
    dispenser.clear()
    atm.customer.take_card()
    await atm.state(State.idle)
    await _drained(atm)
    events = _events(atm)
    assert "DISPENSE_NOT_STARTED" in events and "DISPENSE_START" not in events
    (reversal,) = atm.events("REVERSAL_QUEUED")
    assert (reversal["amount"], reversal["reason"]) == ("10000", "4017")
    assert world.balance(ALICE_CHECKING) == before
