"""Reversals that HostLink queues by itself reach the electronic journal (DESIGN invariant 5):
a host that answers late, through a real TCP relay that holds the host's replies back on the
same connection. The 0200 times out (4021, queued by the link), the approval arrives later
(4006: the same original, not queued again). The journal, the store-and-forward file and the
host's balance must tell one story: one reversal, applied once, never queued again after a
restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from atm.demo import HoldingRelay
from atm.scripts import ALICE_CHECKING
from device.controller import AtmController
from device.events import DeviceEvent, LinkMessage
from device.journal import JournalRecord
from device.recovery import find_unfinished
from device.states import State
from drivers.interfaces import CassetteState, CassetteStatus
from host.bank.ledger import check_ledger
from tests.device.conftest import WAIT, Atm, World

PAN = "4000001234567899"


@pytest.fixture
async def relay(world: World) -> AsyncIterator[tuple[HoldingRelay, int]]:
    relay = HoldingRelay("127.0.0.1", world.port)
    port = await relay.start()
    yield relay, port
    await relay.close()


async def _drained(atm: Atm) -> None:
    async def until_empty() -> None:
        while not await atm.controller.link.drain():
            await atm.controller.link.ensure_online()

    await asyncio.wait_for(until_empty(), WAIT)


async def test_late_approval_is_reversed_once_and_journaled(world: World, relay):
    relay_, relay_port = relay
    before = world.balance(ALICE_CHECKING)
    atm = await world.atm(port=relay_port, response_timeout=0.5)
    late_approval = asyncio.Event()

    def on_event(event: DeviceEvent) -> None:
        if isinstance(event, LinkMessage) and event.message.get("t") == "0210":
            late_approval.set()

    atm.controller.events.subscribe(on_event)
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    relay_.hold_replies()  # the host applies the 0200 but its answer comes late
    atm.keys("F4")  # $100.00
    await atm.screen("take_card")
    assert atm.controller.link.pending_reversals() == 1
    relay_.release_replies()
    await asyncio.wait_for(late_approval.wait(), WAIT)  # the 0210 arrives after its timeout
    atm.customer.take_card()
    await atm.state(State.idle)
    await _drained(atm)

    # The host: debited once, credited back once.
    assert world.balance(ALICE_CHECKING) == before
    with world.host.sessions() as session:
        assert check_ledger(session) == []

    # The journal: one REVERSAL_QUEUED for that STAN, written by the link's callback, in the
    # controller's format, before TXN_NO_RESPONSE; no PAN.
    stan = atm.events("TXN_REQUEST")[0]["stan"]
    queued = atm.events("REVERSAL_QUEUED")
    assert len(queued) == 1
    line = queued[0]
    assert (line["stan"], line["amount"], line["dispensed"], line["reason"], line["by"]) == (
        stan,
        "10000",
        "0",
        "4021",
        "link",
    )
    events = [r["event"] for r in atm.controller.journal_records()]
    assert events.index("REVERSAL_QUEUED") < events.index("TXN_NO_RESPONSE")
    assert "DISPENSE_START" not in events
    assert PAN not in atm.controller.journal.path.read_text()

    # The store-and-forward file: one advice added (4021, no PAN), acknowledged.
    saf = [json.loads(x) for x in atm.controller.config.saf_path.read_text().splitlines()]
    adds = [r for r in saf if r["op"] == "add"]
    assert len(adds) == 1 and adds[0]["reason"] == "4021" and adds[0]["original"]["11"] == stan
    assert "2" not in adds[0]["original"] and PAN not in json.dumps(saf)
    assert [r["op"] for r in saf].count("ack") == 1

    # A restart reads the journal and queues nothing more.
    await atm.stop()
    again = await world.atm(port=relay_port)
    assert [r for r in again.events("REVERSAL_QUEUED") if r.get("recovered")] == []
    assert again.controller.link.pending_reversals() == 0
    assert world.balance(ALICE_CHECKING) == before


def test_recovery_trusts_a_reversal_the_link_journaled():
    """Killed after the link queued (and the controller journaled) its own reversal, before
    TXN_NO_RESPONSE: recovery must not queue a second one."""
    request = JournalRecord(
        event="TXN_REQUEST",
        terminal="ATM00001",
        stan="000007",
        mti="0200",
        proc="011000",
        amount="10000",
        time="1128120000",
        currency="840",
        acceptor="ATMSIM000000001",
    )
    link_line = JournalRecord(
        event="REVERSAL_QUEUED", stan="000007", amount="10000", reason="4021", by="link"
    )
    cassettes = [CassetteStatus(0, 2000, 500, CassetteState.OK)]
    assert [u.stan for u in find_unfinished([request], cassettes)] == ["000007"]
    assert find_unfinished([request, link_line], cassettes) == []


def test_a_link_reversal_is_journaled_by_the_controller(tmp_path):
    """The callback itself: the controller's line format (no PAN is handed over), a late
    approval's reason named."""
    from atm.demo import build_devices
    from device.config import DeviceConfig

    config = DeviceConfig(state_dir=tmp_path)
    devices, _ = build_devices(config)
    controller = AtmController(config, devices)
    original = {"t": "0200", "3": "011000", "4": "000000004000", "7": "1128120000", "11": "000042"}
    controller.link.on_reversal_queued(original, 0, "4006")  # type: ignore[misc]
    line = controller.journal.path.read_text().splitlines()[-1]
    assert " | REVERSAL_QUEUED | stan=000042 | amount=4000 | dispensed=0 | reason=4006 | " in line
    assert "by=link" in line and "too late" in line
    controller.journal.close()
