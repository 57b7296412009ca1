"""The ATM killed at every journal event and counters save of a withdrawal (taken, and left in
the tray) and of a transfer, on a real host over TCP, with simulated devices that keep their
physical state like real ones (issue 12). After each kill: restart, let recovery and the
store-and-forward queue finish, restart once more (recovery must be idempotent), then the
four-way comparison:

    host debits == notes that physically left and were taken == journal == counters

and the counters balance against the notes physically in the cassettes. Each case runs the
killed ATM in a child process (``tests.device.crash_child``).

Cash and check deposits (issue 20) are killed the same way, with the bill acceptor's escrow
and stacker and the depository's bin in their state files, and compared four ways:

    host credit == notes in the stacker == journal (approved, not reversed) == balancing

where balancing is the supervisor's deposit totals (credited, suspect, checks). No note is
lost: every inserted note ends in the stacker (credited) or back with the customer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from device.cash import CashCounters
from device.journal import read_records
from device.states import State
from drivers.simulated import SimulatedBillAcceptor
from host.bank.holds import check_holds
from host.bank.ledger import check_ledger
from tests.device.conftest import ROOT, World

ALICE_CHECKING = "1000-0001-0001"
ALICE_SAVINGS = "1000-0001-0002"
DENOMINATIONS = {0: 2000, 1: 5000}

# (event, nth) for a $100 withdrawal whose cash is taken. "counters" is the nth save of the
# cash counters file (1: first start, 2: the dispense booked).
WITHDRAWAL_TAKEN = [
    ("SESSION_START", 1),
    ("PIN_ENTERED", 1),
    ("TXN_REQUEST", 1),
    ("TXN_RESPONSE", 1),
    ("DISPENSE_START", 1),
    ("counters", 2),
    ("DISPENSE_RESULT", 1),
    ("CASH_TAKEN", 1),
    ("RECEIPT_PRINTED", 1),
    ("CARD_RETURNED", 1),
    ("SESSION_END", 1),
]
# ... whose cash is left in the tray: the steps after the presentation differ.
WITHDRAWAL_LEFT = [
    ("DISPENSE_RESULT", 1),
    ("RETRACT_INTENDED", 1),
    ("counters", 3),
    ("CASH_RETRACTED", 1),
    ("REVERSAL_QUEUED", 1),
    ("SESSION_END", 1),
]
TRANSFER = [
    ("TXN_REQUEST", 1),
    ("TXN_RESPONSE", 1),
    ("RECEIPT_PRINTED", 1),
    ("SESSION_END", 1),
]
# (event, nth, credited?) for a $300 cash deposit. "stacked": the acceptor stacked the notes
# and the controller died before journaling it; "answered": the host's approval arrived and
# the controller died before journaling it (the host credited a deposit the ATM never knew
# was approved: reversed, the notes returned).
DEPOSIT = [
    ("NOTE_ESCROWED", 2, False),
    ("DEPOSIT_COUNTED", 1, False),
    ("TXN_REQUEST", 1, False),
    ("answered", 1, False),
    ("TXN_RESPONSE", 1, True),
    ("DEPOSIT_STACK_START", 1, True),
    ("stacked", 1, True),
    ("DEPOSIT_STACKED", 1, True),
    ("RECEIPT_PRINTED", 1, True),
    ("SESSION_END", 1, True),
]
CHECK = [
    ("ENVELOPE_TAKEN", 1, False),
    ("TXN_REQUEST", 1, False),
    ("answered", 1, False),
    ("TXN_RESPONSE", 1, True),
    ("SESSION_END", 1, True),
]
CASES = (
    [pytest.param("withdrawal", False, e, n, id=f"taken-{e}-{n}") for e, n in WITHDRAWAL_TAKEN]
    + [pytest.param("withdrawal", True, e, n, id=f"left-{e}-{n}") for e, n in WITHDRAWAL_LEFT]
    + [pytest.param("transfer", False, e, n, id=f"transfer-{e}-{n}") for e, n in TRANSFER]
)


async def run_child_until_killed(
    world: World, kind: str, walk_away: bool, event: str, nth: int
) -> None:
    args = [
        sys.executable, "-m", "tests.device.crash_child",
        "--port", str(world.port),
        "--state-dir", str(world.tmp_path / "device"),
        "--sim-state-dir", str(world.tmp_path / "physical"),
        "--event", event, "--nth", str(nth), "--kind", kind,
    ]  # fmt: skip
    if walk_away:
        args.append("--walk-away")
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL, f"never reached {event} #{nth}: {out!r}"


def journal_net_cents(records) -> int:
    """What the journal says the customer paid for cash: approved withdrawals, less what each
    reversal gives back."""
    withdrawals = {
        r["stan"]: int(r["amount"])
        for r in records
        if r["event"] == "TXN_REQUEST" and r.get("proc", "")[:2] == "01"
    }
    approved = {
        r["stan"] for r in records if r["event"] == "TXN_RESPONSE" and r.get("code") == "00"
    }
    reversed_back: dict[str, int] = {}
    for r in records:
        if r["event"] == "REVERSAL_QUEUED" and r["stan"] in withdrawals:
            reversed_back[r["stan"]] = int(r["amount"]) - int(r["dispensed"])
    return sum(
        amount - reversed_back.get(stan, 0)
        for stan, amount in withdrawals.items()
        if stan in approved or stan in reversed_back
    )


@pytest.mark.parametrize(("kind", "walk_away", "event", "nth"), CASES)
async def test_killed_at_every_step_ends_with_host_physical_journal_counters_agreeing(
    world: World, kind: str, walk_away: bool, event: str, nth: int
):
    await run_child_until_killed(world, kind, walk_away, event, nth)
    physical_dir = world.tmp_path / "physical"
    first_reversals: list[dict[str, str]] = []
    for restart in (1, 2):
        atm = await world.atm(sim_state_dir=physical_dir)
        # Recovery is done and the sign-on drained the store-and-forward queue.
        assert atm.controller.state is State.idle
        assert atm.controller.link.pending_reversals() == 0
        assert atm.controller.suspects() == []
        if restart == 2:
            assert atm.events("REVERSAL_QUEUED") == first_reversals, "recovery not idempotent"
        first_reversals = atm.events("REVERSAL_QUEUED")
        await atm.stop()

    config = world.device_config()
    records = read_records(config.journal_path)
    host_debit = 525_000 - world.balance(ALICE_CHECKING)
    if kind == "transfer":
        host_debit = (
            525_000 + 1_250_000 - world.balance(ALICE_CHECKING) - world.balance(ALICE_SAVINGS)
        )
    state = json.loads((physical_dir / f"dispenser-{config.terminal_id}.json").read_text())
    taken = {int(i): n for i, n in state["taken"].items()}
    physical = sum(DENOMINATIONS[i] * n for i, n in taken.items())
    counters = CashCounters(config.counters_path)
    counted = sum(c.denomination_cents * c.dispensed for c in counters.cassettes.values())
    journal = journal_net_cents(records)
    assert (host_debit, physical, journal, counted) == (physical,) * 4, records
    # No note is left for the next customer, and the counters balance with the cassettes.
    assert state["tray"] == {}
    for index, cassette in enumerate(state["cassettes"]):
        assert counters.cassettes[index].remaining == cassette["count"], index
        assert counters.cassettes[index].retracted == state["reject_bin"].get(str(index), 0)
    # The killed session's card did not wait in the reader for the next person.
    reader = json.loads((physical_dir / f"card-reader-{config.terminal_id}.json").read_text())
    assert reader["position"] == "none"


def journal_deposit_cents(records, proc: str) -> int:
    """What the journal says the host credited: deposits (DE 3 ``proc``) answered 00, less
    those reversed."""
    deposits = {
        r["stan"]: int(r["amount"])
        for r in records
        if r["event"] == "TXN_REQUEST" and r.get("proc", "")[:2] == proc
    }
    approved = {
        r["stan"] for r in records if r["event"] == "TXN_RESPONSE" and r.get("code") == "00"
    }
    reversed_ = {r["stan"] for r in records if r["event"] == "REVERSAL_QUEUED"}
    return sum(a for stan, a in deposits.items() if stan in approved and stan not in reversed_)


async def restart_twice(world: World) -> dict[str, int]:
    """Restart (recovery, the queue drained), the customer takes any notes given back, and
    restart once more: nothing new happens. The supervisor's deposit totals."""
    from device.activities.operator import deposit_totals

    physical_dir = world.tmp_path / "physical"
    first: list[list[dict[str, str]]] = []
    totals: dict[str, int] = {}
    for restart in (1, 2):
        atm = await world.atm(sim_state_dir=physical_dir)
        assert atm.controller.state is State.idle
        assert atm.controller.link.pending_reversals() == 0
        names = ("REVERSAL_QUEUED", "DEPOSIT_STACKED", "NOTES_RETURNED", "ENVELOPE_UNCREDITED")
        seen = [atm.events(name) for name in names]
        if restart == 2:
            assert seen == first, "recovery not idempotent"
        first = seen
        notes = atm.controller.devices.bill_acceptor
        assert isinstance(notes, SimulatedBillAcceptor)
        if notes.at_entrance:
            # Given back at the restart: deposits stay off until somebody took them.
            assert atm.controller.deposit_fault == "returned notes not taken"
            notes.take_returned()
        totals = deposit_totals(atm.controller)
        await atm.stop()
    return totals


@pytest.mark.parametrize(
    ("event", "nth", "credited"), [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in DEPOSIT]
)
async def test_cash_deposit_killed_at_every_step_credits_exactly_the_stacked_notes(
    world: World, event: str, nth: int, credited: bool
):
    await run_child_until_killed(world, "deposit", False, event, nth)
    totals = await restart_twice(world)
    config = world.device_config()
    records = read_records(config.journal_path)
    state = json.loads(
        (world.tmp_path / "physical" / f"bill-acceptor-{config.terminal_id}.json").read_text()
    )
    stacker = sum(int(c) * n for c, n in state["stacker"].items())
    host_credit = world.balance(ALICE_CHECKING) - 525_000
    journal = journal_deposit_cents(records, "21")
    assert (host_credit, stacker, journal, totals["credited"]) == (stacker,) * 4, records
    # The policy: approved before the kill, the deposit completes; otherwise the notes go back.
    assert stacker == (30_000 if credited else 0)
    assert totals["suspect"] == 0
    assert state["escrow"] == [] and state["jammed"] == [] and state["at_entrance"] == []
    # All four notes went in (the child inserts them at once); each is stacked or given back.
    assert sum(n for n in state["stacker"].values()) + len(state["taken_back"]) == 4
    with world.host.sessions() as session:
        assert check_ledger(session) == []
        assert check_holds(session) == []


@pytest.mark.parametrize(
    ("event", "nth", "credited"), [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in CHECK]
)
async def test_check_deposit_killed_at_every_step_leaves_no_envelope_unaccounted(
    world: World, event: str, nth: int, credited: bool
):
    await run_child_until_killed(world, "check", False, event, nth)
    totals = await restart_twice(world)
    config = world.device_config()
    records = read_records(config.journal_path)
    bin_ = json.loads(
        (world.tmp_path / "physical" / f"depository-{config.terminal_id}.json").read_text()
    )
    host_credit = world.balance(ALICE_CHECKING) - 525_000
    journal = journal_deposit_cents(records, "24")
    assert (host_credit, journal) == ((50_000 if credited else 0),) * 2, records
    assert len(bin_["envelopes"]) == 1
    uncredited = [r for r in records if r["event"] == "ENVELOPE_UNCREDITED"]
    # The envelope in the bin is either credited or journaled for the operator, never both.
    assert (len(uncredited), totals["checks"]) == ((0, 50_000) if credited else (1, 0))
    assert totals["uncredited"] == (0 if credited else 50_000)
    with world.host.sessions() as session:
        assert check_ledger(session) == []
        assert check_holds(session) == []


@pytest.mark.parametrize(
    ("fault", "suspect", "returned"),
    [("stacker_full", 0, 4), ("stack_jam", 30_000, 0)],
)
async def test_an_approved_deposit_that_cannot_be_stacked_at_restart_is_reversed(
    world: World, fault: str, suspect: int, returned: int
):
    """Killed with the approval journaled and the notes in escrow; at the restart the
    acceptor cannot stack: the credit is reversed (4007), what is still in escrow goes back,
    and what the acceptor kept is a suspect for balancing."""
    from device.activities.operator import deposit_totals

    await run_child_until_killed(world, "deposit", False, "TXN_RESPONSE", 1)
    atm = await world.atm(start=False, sim_state_dir=world.tmp_path / "physical")
    notes = atm.controller.devices.bill_acceptor
    assert isinstance(notes, SimulatedBillAcceptor)
    notes.inject(fault)
    await atm.start()
    assert atm.controller.link.pending_reversals() == 0  # delivered at sign-on
    (reversal,) = atm.events("REVERSAL_QUEUED")
    assert (reversal["reason"], reversal["recovered"]) == ("4007", "yes")
    assert world.balance(ALICE_CHECKING) == 525_000
    assert len(notes.at_entrance) == returned
    assert atm.controller.deposit_fault.startswith("bill acceptor")  # off until the operator
    totals = deposit_totals(atm.controller)
    assert (totals["credited"], totals["suspect"]) == (0, suspect)
    assert notes.stacked_cents() + sum(notes.jammed) == totals["credited"] + totals["suspect"]
    await atm.stop()
    atm = await world.atm(sim_state_dir=world.tmp_path / "physical")
    assert len(atm.events("REVERSAL_QUEUED")) == 1  # nothing done twice
    with world.host.sessions() as session:
        assert check_ledger(session) == []
