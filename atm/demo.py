"""The demo: a built-in scenario (``atm/scenario/builtin``) played with its narration: every
screen, every host-link message (PAN masked, PIN block never shown), the receipts, and at the
end the balances, the dispenser's cassettes and counters. The scenario runner does the work
(``atm.scenario.runner``), so the demo checks the same expectations and invariants as
``atm scenario run``; ``DemoResult.ok`` is true only when all of it holds."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from atm.scenario.format import Scenario
from atm.scenario.loader import builtin_scenarios
from atm.scenario.relay import LinkRelay
from atm.scenario.runner import ScenarioResult, run_scenario
from atm.steps import Customer
from device.config import DeviceConfig
from device.controller import Devices
from drivers.simulated import (
    Cassette,
    SimulatedBillAcceptor,
    SimulatedCardReader,
    SimulatedDepository,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from host.config import HostConfig

__all__ = ["SCRIPTS", "DemoResult", "HoldingRelay", "build_devices", "run_demo"]


class _Builtins(Mapping[str, Scenario]):
    """The built-in scenarios by name, loaded on first use."""

    def _all(self) -> dict[str, Scenario]:
        if not hasattr(self, "_cache"):
            self._cache = builtin_scenarios()
        return self._cache

    def __getitem__(self, name: str) -> Scenario:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


SCRIPTS: Mapping[str, Scenario] = _Builtins()


def build_devices(config: DeviceConfig) -> tuple[Devices, Customer]:
    """The simulated devices of one ATM, and the customer who acts on them."""
    reader = SimulatedCardReader(state_path=config.sim_state_path("card-reader"))
    pin_pad = SimulatedPinPad(config.master_key, config.key_scheme)
    dispenser = SimulatedDispenser(
        [Cassette(c.denomination_cents, c.count) for c in config.cassettes],
        state_path=config.sim_state_path("dispenser"),
    )
    printer = SimulatedPrinter(state_path=config.sim_state_path("printer"))
    notes = SimulatedBillAcceptor(state_path=config.sim_state_path("bill-acceptor"))
    depository = SimulatedDepository(state_path=config.sim_state_path("depository"))
    devices = Devices(reader, pin_pad, dispenser, printer, notes, depository)
    customer = Customer(reader, pin_pad, dispenser, printer, notes=notes, depository=depository)
    return devices, customer


class HoldingRelay(LinkRelay):
    """The link relay with the demo's older switches: ``holding`` loses what the ATM sends;
    ``hold_replies()`` / ``release_replies()`` keep the host's replies back; ``sent`` keeps
    every byte the ATM put on the wire; ``reply_delay`` holds each reply that many seconds
    (a slow host). ``tls`` / ``server_name``: the host over TLS, as ``LinkRelay``."""

    @property
    def holding(self) -> bool:
        return self.faults.holding

    @holding.setter
    def holding(self, value: bool) -> None:
        self.faults.holding = value

    @property
    def reply_delay(self) -> float:
        return self.faults.delay

    @reply_delay.setter
    def reply_delay(self, seconds: float) -> None:
        self.faults.delay = seconds

    def hold_replies(self) -> None:
        self.apply("hold_replies")

    def release_replies(self) -> None:
        self.apply("release_replies")


@dataclass
class DemoResult:
    result: ScenarioResult
    balance_before: int = 0
    balance_after: int = 0
    receipts: list[list[str]] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.ok


async def run_demo(
    script: Scenario,
    *,
    out: TextIO,
    database_url: str | None = None,
    work_dir: Path | None = None,
    host_config: HostConfig | None = None,
    quiet: bool = False,
    timeout: float = 60.0,
    devices: str = "sim",
    dispenser_model: str | None = None,
    link_say: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run ``script``; ``devices`` is ``sim`` (in-process simulated backends) or ``serial``
    (each device's simulator on a pseudo-terminal, driven through the real serial driver).
    ``dispenser_model`` (``lcdm-2000``, ``lcdm-4000``) puts the dispenser on that model's
    simulator on a pseudo-terminal whatever ``devices`` says."""
    result = await run_scenario(
        script,
        host_config=host_config,
        database_url=database_url,
        work_dir=work_dir,
        out=None if quiet else out,
        timeout=timeout,
        devices=devices,
        dispenser_model=dispenser_model,
        link_say=link_say,
    )
    seen = result.observed
    main = next(iter(script.expect.balance_changes), None)
    return DemoResult(
        result,
        balance_before=seen.balances_before.get(main, 0) if main else 0,
        balance_after=seen.balances_after.get(main, 0) if main else 0,
        receipts=seen.receipts,
        screens=seen.screens,
        journal=seen.journal,
        problems=result.problems,
    )
