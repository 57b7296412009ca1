"""The invariants are checked after every scenario by themselves: a deliberately broken
build (a reversal that is acknowledged but never applied, a dispense counted twice, a PAN
written in clear) makes a scenario whose own expectations say nothing about it fail, with the
numbers that disagree."""

from dataclasses import replace
from pathlib import Path

from atm.scenario import Scenario, builtin_scenarios, invariants, load_paths
from atm.scenario.format import Expect
from atm.scenario.runner import ScenarioResult, run_scenario, scenario_host_config
from device.cash import CashCounters
from device.controller import AtmController
from drivers.simulated import SimulatedBillAcceptor
from host.bank import holds
from host.link.reversals import ReversalService

CATALOGUE = Path(__file__).parents[1] / "scenarios"


def without_expectations(name: str) -> Scenario:
    """The built-in scenario with no expectations: only the invariants can fail it."""
    return replace(builtin_scenarios()[name], expect=Expect())


async def run(scenario: Scenario, tmp_path: Path) -> ScenarioResult:
    return await run_scenario(
        scenario, host_config=scenario_host_config(), work_dir=tmp_path, timeout=20
    )


async def test_the_unbroken_build_passes_the_same_scenarios(tmp_path):
    for name in ("dispenser-jam", "partial-dispense"):
        result = await run(without_expectations(name), tmp_path / name)
        assert result.ok, result.problems


async def test_a_reversal_that_is_not_applied_fails_with_the_amounts(tmp_path, monkeypatch):
    def acknowledge_only(self, session, record) -> None:
        record.status = "applied"  # the bug: answered 0430, no money moved back

    monkeypatch.setattr(ReversalService, "_apply", acknowledge_only)
    result = await run(without_expectations("dispenser-jam"), tmp_path)
    assert not result.ok
    assert (
        "invariant reversals ATM00001: STAN 000002 approved 10000 cents, the ATM paid out 0 "
        "and asked to reverse 10000, the host gave back 0" in result.problems
    )
    assert (
        "invariant approvals ATM00001: the host's cash account CASH-ATM00001 moved 10000 "
        "cents, notes taken 0 + left in the tray 0 = 0 cents" in result.problems
    )


async def test_a_dispense_counted_twice_fails_with_the_counts(tmp_path, monkeypatch):
    add = CashCounters.add

    def add_twice(self, kind, notes, key=None):
        booked = add(self, kind, notes, key)
        if kind == "dispensed":
            add(self, kind, notes)  # the bug: one dispense booked twice (under no key)
        return booked

    monkeypatch.setattr(CashCounters, "add", add_twice)
    result = await run(without_expectations("withdraw-alice"), tmp_path)
    assert not result.ok
    assert (
        "invariant counters ATM00001 cassette 1: the journal shows 2 note(s) presented, the "
        "counters dispensed 4 + retracted 0 = 4" in result.problems
    )
    assert (
        "invariant counters ATM00001 cassette 1: the counters say 196 note(s) remain, the "
        "cassette holds 198" in result.problems
    )


async def test_a_pan_in_clear_in_the_journal_fails_naming_where(tmp_path, monkeypatch):
    # The bug: the journal's card lines (session start, transaction request) unmasked.
    monkeypatch.setattr("device.activities.customer.mask_pan", lambda pan: pan)
    monkeypatch.setattr("device.activities.authorization.mask_pan", lambda pan: pan)
    result = await run(without_expectations("balance-bob"), tmp_path)
    assert not result.ok
    leaks = [p for p in result.problems if p.startswith("invariant secrets: PAN of card bob")]
    assert leaks and "in journal line" in leaks[0]
    assert "4000009876543219" not in leaks[0]  # the report masks what it found


async def test_retracted_notes_that_vanish_fail_the_cash_count(tmp_path, monkeypatch):
    from drivers.simulated import SimulatedDispenser

    async def retract_and_lose(self):
        count = sum(self.presented.values())
        self.presented = {}  # the bug: the notes are pulled back but never counted
        return count

    monkeypatch.setattr(SimulatedDispenser, "retract", retract_and_lose)
    result = await run(without_expectations("cash-not-taken"), tmp_path)
    assert not result.ok
    assert (
        "invariant cash ATM00001: 2 note(s) left the cassettes, but taken 0 + in the reject "
        "bin (retracted 0 and rejected) 0 + in the tray 0 = 0" in result.problems
    )


async def test_a_failed_stack_that_is_not_reversed_fails_with_the_deposit_amounts(
    tmp_path, monkeypatch
):
    scenario = load_paths([CATALOGUE / "deposit-stack-jam.yaml"])[0]
    unbroken = await run(replace(scenario, expect=Expect()), tmp_path / "unbroken")
    assert unbroken.ok, unbroken.problems

    def keep_the_credit(self, dispensed_cents, reason) -> None:
        pass  # the bug: the host's credit for notes never stacked stays

    monkeypatch.setattr(AtmController, "reverse_session", keep_the_credit)
    result = await run(replace(scenario, expect=Expect()), tmp_path / "broken")
    assert not result.ok
    assert (
        "invariant deposits ATM00001: the journal shows 0 cents of notes stacked, the host "
        "credits 30000 cents of cash deposits" in result.problems
    )


async def test_notes_that_vanish_from_the_stacker_fail_the_acceptor_count(tmp_path, monkeypatch):
    stack = SimulatedBillAcceptor.stack

    async def stack_and_lose_one(self):
        stacked = await stack(self)
        self.stacker[10000] -= 1  # the bug: a $100 note stacked and then lost
        return stacked

    monkeypatch.setattr(SimulatedBillAcceptor, "stack", stack_and_lose_one)
    result = await run(without_expectations("deposit-cash"), tmp_path)
    assert not result.ok
    assert (
        "invariant deposits ATM00001: the bill acceptor holds 20000 cents (stacker 20000 + "
        "jammed 0), but deposits stacked 30000 + suspects 0 + jammed before counting 0 = 30000"
        in result.problems
    )


async def test_a_deposit_held_wrongly_fails_with_the_policy_amount(tmp_path, monkeypatch):
    schedule = holds.hold_schedule

    def hold_nothing_of_cash(kind, amount_cents, now, policy):
        return [] if kind == "cash" else schedule(kind, amount_cents, now, policy)

    # The bug: the host's services place no hold on cash (the invariant keeps the policy).
    monkeypatch.setattr(holds, "hold_schedule", hold_nothing_of_cash)
    monkeypatch.setattr(invariants, "hold_schedule", schedule)
    result = await run(without_expectations("deposit-cash"), tmp_path)
    assert not result.ok
    assert any(
        p.startswith("invariant holds: deposit posting ")
        and p.endswith("of 30000 cents holds 0 cents, the hold policy says 10000")
        for p in result.problems
    ), result.problems
