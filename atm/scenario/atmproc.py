"""The ATM as its own process, for scenarios that kill it (``atm: kill`` ... ``atm: restart``).

The scenario runner starts ``python -m atm.scenario.atmproc FILE CONFIG``: one ATM controller
with simulated devices that keep their physical state (notes in the cassettes, the exit tray
and the reject bin, a card in the reader, the paper roll) in state files, as real devices keep
their notes and cards when the ATM's computer dies. It plays the scenario's customer steps up
to the ``atm: restart`` step; from the ``atm: kill`` step on, the process SIGKILLs itself right
after the named journal event is on disk (or after the cash counters file is saved, ``at:
counters``). The runner then starts the ATM again in its own process on the same journal,
counters and device state files: recovery runs, the rest of the steps are played, and the
invariants compare the host's ledger, the journal, the counters and the physical notes.

No host code here: the child imports only the device side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from atm.scenario.errors import ScenarioError
from atm.scenario.format import Step
from atm.scenario.loader import load_file
from atm.scenario.patience import CustomerPatience, answer_timeout
from atm.steps import Customer, StepDriver, stop_controller
from device.cash import CashCounters
from device.config import CassetteConfig, DeviceConfig
from device.controller import AtmController, Devices
from device.events import DeviceEvent, ScreenShown
from drivers.simulated import (
    Cassette,
    SimulatedBillAcceptor,
    SimulatedCardReader,
    SimulatedDepository,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from protocol.security import KeyScheme

__all__ = ["AtmProcess", "config_to_json", "physical_devices"]

#: Printed by the child when the steps ended without the kill happening.
NOT_KILLED = "ATM PROCESS NOT KILLED"


def physical_devices(config: DeviceConfig) -> tuple[Devices, Customer]:
    """Simulated devices whose physical state lives in ``config.sim_state_dir``."""
    reader = SimulatedCardReader(state_path=config.sim_state_path("card-reader"))
    pin_pad = SimulatedPinPad(config.master_key, config.key_scheme)
    dispenser = SimulatedDispenser(
        [Cassette(c.denomination_cents, c.count) for c in config.cassettes],
        state_path=config.sim_state_path("dispenser"),
    )
    printer = SimulatedPrinter(state_path=config.sim_state_path("printer"))
    notes = SimulatedBillAcceptor()
    depository = SimulatedDepository()
    devices = Devices(reader, pin_pad, dispenser, printer, notes, depository)
    return devices, Customer(reader, pin_pad, dispenser, printer, notes, depository)


def config_to_json(config: DeviceConfig, overrides: dict[str, Any]) -> str:
    """What the child needs to build the same ``DeviceConfig``."""
    return json.dumps(
        {
            **overrides,
            "terminal_id": config.terminal_id,
            "key_scheme": config.key_scheme.value,
            "host": config.host,
            "port": config.port,
            "state_dir": str(config.state_dir),
            "sim_state_dir": str(config.sim_state_dir),
            "cassettes": [[c.denomination_cents, c.count] for c in config.cassettes],
            "card_ranges": list(config.card_ranges),
        }
    )


def config_from_json(text: str) -> DeviceConfig:
    raw: dict[str, Any] = json.loads(text)
    raw["key_scheme"] = KeyScheme(raw["key_scheme"])
    raw["state_dir"] = Path(raw["state_dir"])
    raw["sim_state_dir"] = Path(raw["sim_state_dir"])
    raw["cassettes"] = tuple(CassetteConfig(d, n) for d, n in raw["cassettes"])
    raw["card_ranges"] = tuple(raw["card_ranges"])
    return DeviceConfig(**raw)


class AtmProcess:
    """The runner's handle on the ATM child: start it, wait until it has killed itself."""

    def __init__(self, scenario_path: Path, config_json: str, log_path: Path) -> None:
        self.scenario_path, self.config_json, self.log_path = scenario_path, config_json, log_path

    async def run_until_killed(self, timeout: float) -> str:
        """Run the child; '' when it died of SIGKILL as the scenario says, else the problem."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "atm.scenario.atmproc",
            str(self.scenario_path),
            self.config_json,
            env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            out, _ = await process.communicate()
            self.log_path.write_bytes(out)
            return f"the ATM process did not die within {timeout:g} s"
        self.log_path.write_bytes(out)
        if process.returncode == -signal.SIGKILL:
            return ""
        tail = " / ".join(self.log_lines()[-3:])
        return f"the ATM process was never killed (exit code {process.returncode}): {tail}"

    def log_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm_kill(controller: AtmController, event: str, nth: int) -> None:
    """SIGKILL this process right after the ``nth`` record of journal ``event`` is on disk
    from now on, or the ``nth`` save of the cash counters (``event == "counters"``)."""
    seen = 0

    def count() -> None:
        nonlocal seen
        seen += 1
        if seen == nth:
            _die()

    if event == "counters":
        # The controller's own counters object (the cash activities hold it) becomes one
        # that counts its saves: the same state, the same file.
        counters = controller.counters
        counters.__class__ = _CountedCounters
        assert isinstance(counters, _CountedCounters)
        counters.after_save = count
        return

    def on_line(line: str) -> None:
        if f" | {event} | " in line:
            count()

    controller.journal.listeners.append(on_line)


class _CountedCounters(CashCounters):
    after_save: Callable[[], None]

    def save(self) -> None:
        super().save()
        self.after_save()


class _KillingDriver(StepDriver):
    def __init__(self, steps: list[Step], customer: Customer, controller: AtmController) -> None:
        super().__init__(steps, customer, lambda line: print(line, flush=True))
        self.controller = controller

    def _act(self, step: Step) -> None:
        if step.atm == "kill":
            arm_kill(self.controller, step.kill_at, step.kill_nth)
        super()._act(step)


async def _child(scenario_path: Path, config_json: str) -> int:
    scenario = load_file(scenario_path)
    steps = list(scenario.steps[: scenario.restart_index])
    config = config_from_json(config_json)
    devices, customer = physical_devices(config)
    controller = AtmController(config, devices)
    driver = _KillingDriver(steps, customer, controller)
    last: list[Any] = [None]
    # The same timing as the runner's ATM (atm.scenario.patience): the customer's steps
    # always beat the timers they answer, a walk-away times out as configured; no step here
    # loses a host answer (the world's steps belong to the runner).
    patience = CustomerPatience()
    controller.patience = patience
    controller.link.response_timeout = partial(
        answer_timeout, config.response_timeout, lambda _request: False
    )

    def on_event(event: DeviceEvent) -> None:
        if isinstance(event, ScreenShown):
            screen = event.screen
            fresh = screen != last[0] and not screen.input_value
            last[0] = screen
            print(f"screen {screen.id}", flush=True)
            upcoming = driver.steps[0] if driver.steps else None
            left = len(driver.steps)
            driver.on_screen(screen.id, fresh=fresh)
            if fresh:
                patience.on_screen(upcoming if len(driver.steps) < left else None)

    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    await driver.finished.get()
    await stop_controller(controller, runner)
    print(f"{NOT_KILLED}: {driver.failure or 'the steps ended'}", flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atm.scenario.atmproc")
    parser.add_argument("scenario", type=Path)
    parser.add_argument("config", help="the DeviceConfig as JSON (config_to_json)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_child(args.scenario, args.config))
    except ScenarioError as exc:
        print(f"atm process: {exc}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
