"""Timing in scenario runs (atm.scenario.patience): a loaded machine changes how long a run
takes, never which path it takes. The ATM's timers are short here (50 ms) and the event loop
is stalled on purpose at the moments that used to decide the path (a host answer that came
after the 1 s response timeout on a loaded CI machine sent a fuzz replay down the "bank cannot
be reached" path)."""

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from atm.scenario import load_file
from atm.scenario.patience import GENEROUS, CustomerPatience, acts
from atm.scenario.runner import run_scenario, scenario_host_config
from device.config import DeviceConfig
from device.controller import AtmController, Devices
from device.events import DeviceEvent, LinkMessage, ScreenShown
from device.states import State

STALL = 0.3  # seconds the event loop is blocked: six times every timer of these scenarios

WITHDRAWAL = """\
name: {name}
description: Alice withdraws $20 on an ATM whose timers are all 50 ms
setup:
  device: {{response_timeout: 0.05, cash_take_timeout: 0.05, card_take_timeout: 0.05}}
steps:
  - {{screen: welcome, insert: alice}}
  - {{screen: enter_pin, type: "1234"}}
  - {{screen: main_menu, press: F1}}
  - {{screen: select_account, press: F1}}
  - {{screen: select_amount, press: F1{link}}}
  - {{screen: take_cash, {cash}}}
  - {{screen: take_card, take: card}}
expect:
  balance_changes: {{"1000-0001-0001": {change}}}
"""


def _scenario(
    tmp_path: Path, name: str, *, link: str = "", cash: str = "take: cash", change: int = -2000
):
    path = tmp_path / f"{name}.yaml"
    path.write_text(WITHDRAWAL.format(name=name, link=link, cash=cash, change=change))
    return load_file(path)


def _stalling(config: DeviceConfig, devices: Devices) -> AtmController:
    """An ATM on a machine that stalls: right after each 0200 goes out (its response timer
    running) and right after the take-cash screen is shown (the cash timer about to start,
    the customer's step not yet played), the event loop is blocked for ``STALL`` seconds, as
    a starved process on a loaded machine is. Subscribed before the runner's customer, so the
    stall comes first."""
    controller = AtmController(config, devices)

    def stall_after(event: DeviceEvent) -> None:
        sent = isinstance(event, LinkMessage) and event.direction == "send"
        if (sent and isinstance(event, LinkMessage) and event.message.get("t") == "0200") or (
            isinstance(event, ScreenShown) and event.screen.id == "take_cash"
        ):
            # A blocked loop (not a wait for anything): the machine's load, made certain.
            asyncio.get_running_loop().call_soon(time.sleep, STALL)

    controller.events.subscribe(stall_after)
    return controller


async def test_a_stalled_machine_still_pays_out_a_withdrawal_nothing_loses(tmp_path):
    scenario = _scenario(tmp_path, "stalled")
    result = await run_scenario(
        scenario,
        host_config=scenario_host_config(),
        work_dir=tmp_path / "run",
        controller_factory=_stalling,
    )
    seen = result.observed
    assert result.ok, result.problems
    # The answer came long after the configured 50 ms and was still waited for; the cash was
    # taken although its 50 ms were over before the customer's step ran.
    assert seen.response_codes == ["00"]
    assert seen.taken_cents == 2000 and seen.retracted_notes == 0
    assert not any("REVERSAL_QUEUED" in line for line in seen.journal)


async def test_a_lost_answer_still_times_out_as_configured(tmp_path):
    # The scenario loses the reply (drop_reply): the configured 50 ms decide, the withdrawal
    # is reversed and there is no cash to take. (No stall here: a loop blocked while the 0200
    # is on its way lets the reversal reach the host before its original, another story.)
    scenario = _scenario(tmp_path, "lost", link=", link: drop_reply", change=0)
    scenario = replace(scenario, steps=scenario.steps[:5] + scenario.steps[6:])
    result = await run_scenario(
        scenario, host_config=scenario_host_config(), work_dir=tmp_path / "run"
    )
    seen = result.observed
    assert result.ok, result.problems
    assert seen.response_codes == []  # the one answer was lost on the way
    assert any("REVERSAL_QUEUED" in line for line in seen.journal)
    assert "take_cash" not in seen.screens
    assert result.seconds < GENEROUS  # the generous wait was never used


async def test_cash_left_behind_is_retracted_after_the_configured_time(tmp_path):
    scenario = _scenario(tmp_path, "walks-away", cash="wait: true", change=0)
    result = await run_scenario(
        scenario,
        host_config=scenario_host_config(),
        work_dir=tmp_path / "run",
        controller_factory=_stalling,
    )
    seen = result.observed
    assert result.ok, result.problems
    assert seen.response_codes == ["00"]
    assert seen.taken_cents == 0 and seen.retracted_notes == 1
    assert any("CASH_RETRACTED" in line for line in seen.journal)
    assert result.seconds < GENEROUS


async def test_a_step_whose_own_part_outlasts_the_timer_still_acts_first(tmp_path):
    # The customer's step waits 0.2 s (a pause: a slow world part, as a host restart is)
    # before taking the cash; the ATM's 50 ms do not end the wait for a customer who acts.
    scenario = _scenario(tmp_path, "late", cash="pause: 0.2, take: cash")
    result = await run_scenario(
        scenario, host_config=scenario_host_config(), work_dir=tmp_path / "run"
    )
    assert result.ok, result.problems
    assert result.observed.taken_cents == 2000 and result.observed.retracted_notes == 0


def test_the_patience_follows_what_the_customer_does_on_the_screen(tmp_path):
    steps = {s.screen: s for s in _scenario(tmp_path, "steps", cash="wait: true").steps}
    patience = CustomerPatience()
    patience.on_screen(steps["take_card"])  # takes the card
    assert acts(steps["take_card"]) and patience(State.returning_card, 0.3) == GENEROUS
    patience.on_screen(steps["take_cash"])  # wait: true, walks away
    assert not acts(steps["take_cash"]) and patience(State.presenting_cash, 0.3) == 0.3
    patience.on_screen(None)  # no step for this screen: nobody acts
    assert patience(State.main_menu, 0.3) == 0.3
    patience.on_screen(steps["main_menu"])
    assert patience(State.main_menu, 90.0) == 90.0  # longer than GENEROUS: kept
