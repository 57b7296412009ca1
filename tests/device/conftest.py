"""Fixtures for controller tests: a real host over TCP on a temp SQLite database, and an ATM
with simulated devices whose customer side the test drives. Tests wait on screens and states
(events), never on sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from atm.demo import build_devices
from atm.steps import TRACKS, Customer
from device.config import DeviceConfig
from device.controller import AtmController
from device.events import DeviceEvent, ReceiptPrinted, ScreenShown
from device.journal import read_records
from device.screens import Screen
from device.states import State
from drivers.simulated import SimulatedDispenser
from host.app import Host
from host.config import HostConfig

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # generous upper bound; every wait ends on an event long before


class Atm:
    """One running controller and the customer in front of it."""

    def __init__(self, controller: AtmController, customer: Customer) -> None:
        self.controller = controller
        self.customer = customer
        self.screens: asyncio.Queue[Screen] = asyncio.Queue()
        self.all_screens: list[Screen] = []
        self.receipts: list[list[str]] = []
        self.task: asyncio.Task[None] | None = None
        controller.events.subscribe(self._on_event)

    def _on_event(self, event: DeviceEvent) -> None:
        if isinstance(event, ScreenShown):
            self.screens.put_nowait(event.screen)
            self.all_screens.append(event.screen)
        elif isinstance(event, ReceiptPrinted):
            self.receipts.append(list(event.lines))

    async def start(self) -> None:
        self.task = asyncio.create_task(self.controller.run())
        await self.state(State.idle)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def screen(self, screen_id: str, where: Callable[[Screen], bool] | None = None) -> Screen:
        """The next screen with this id (and ``where`` true); earlier ones are skipped."""

        async def wait() -> Screen:
            while True:
                screen = await self.screens.get()
                if screen.id == screen_id and (where is None or where(screen)):
                    return screen

        return await asyncio.wait_for(wait(), WAIT)

    async def state(self, state: State) -> None:
        await asyncio.wait_for(self.controller.wait_for_state(state), WAIT)

    @property
    def keys(self) -> Any:
        return self.customer.keys

    def journal(self) -> list[str]:
        return self.controller.journal.path.read_text().splitlines()

    def events(self, name: str) -> list[dict[str, str]]:
        return [r for r in read_records(self.controller.config.journal_path) if r["event"] == name]

    async def login(self, who: str = "alice", pin: str = "1234") -> None:
        await self.screen("welcome")
        self.customer.card_reader.insert(TRACKS[who])
        await self.screen("enter_pin")
        self.customer.type(pin)
        await self.screen("main_menu")


class World:
    """The host (real, over TCP) and a factory for ATMs attached to it."""

    def __init__(self, host: Host, port: int, tmp_path: Path, config: HostConfig) -> None:
        self.host, self.port, self.tmp_path, self.config = host, port, tmp_path, config
        self.atms: list[Atm] = []

    def device_config(self, **overrides: Any) -> DeviceConfig:
        base = DeviceConfig(
            port=self.port,
            state_dir=self.tmp_path / "device",
            reconnect_delay=0.05,
        )
        return dataclasses.replace(base, **overrides)

    async def atm(self, start: bool = True, **overrides: Any) -> Atm:
        config = self.device_config(**overrides)
        devices, customer = build_devices(config)
        atm = Atm(AtmController(config, devices), customer)
        self.atms.append(atm)
        if start:
            await atm.start()
        return atm

    def balance(self, account: str) -> int:
        return self.host.balance(account)


@pytest.fixture
async def world(host_config: HostConfig, tmp_path: Path) -> AsyncIterator[World]:
    host = Host(host_config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    w = World(host, port, tmp_path, host_config)
    try:
        yield w
    finally:
        for atm in w.atms:
            await atm.stop()
        await host.close()


async def run_until_dispensing(world: World, notes_before_block: int) -> None:
    """Run a controller in a child process through an approved $100 withdrawal and SIGKILL it
    while the dispenser is counting (after ``notes_before_block`` notes)."""
    state_dir = world.tmp_path / "device"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.device.kill_harness",
        "--port",
        str(world.port),
        "--state-dir",
        str(state_dir),
        "--counts",
        str(world.tmp_path / "cassettes.json"),
        "--notes-before-block",
        str(notes_before_block),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"DISPENSING", line
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL


def restarted_devices(world: World, config: DeviceConfig) -> tuple[Any, Customer]:
    """The same ATM after the restart: cassettes hold what the killed process left."""
    from tests.device.kill_harness import load_cassettes

    devices, customer = build_devices(config)
    dispenser = devices.dispenser
    assert isinstance(dispenser, SimulatedDispenser)
    dispenser.cassettes[:] = load_cassettes(world.tmp_path / "cassettes.json", config)
    return devices, customer
