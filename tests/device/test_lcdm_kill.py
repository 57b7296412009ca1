"""The ATM killed in the middle of a dispense on a serial LCDM-2000 (issue 12 items 2 and 6).

The dispenser is ``atm sim dispenser`` in a process of its own on a real pseudo-terminal,
keeping its notes in a state file; the ATM talks LCDM-2000 to it through the serial driver,
whose cassette counts persist in the ATM's state directory. Alice first takes $100 (the
driver's counts go down), then asks for $100 again and the ATM process is killed when the
dispenser starts answering the dispense command: the notes are in the exit tray, the driver
never heard so. Alice takes them. At restart the LCDM cannot say what it counted out, so
the withdrawal is a suspect for the operator, never a reversal (the bank would lose $100),
and the driver's counts are those it had before, not the configured load. The operator
counts the cassettes and settles the suspect as dispensed; then host debits == notes taken
== journal == counters, and balancing agrees with the dispenser."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from atm.demo import build_devices
from device.cash import CashCounters
from device.config import DeviceConfig
from device.controller import AtmController
from device.journal import read_records
from device.states import State
from drivers.lcdm import LcdmDispenser
from drivers.registry import serial_settings
from drivers.transport import open_serial
from tests.device.conftest import ROOT, Atm, World

ALICE_CHECKING = "1000-0001-0001"


@dataclass
class Lcdm:
    """``atm sim dispenser`` running in its own process."""

    pty: str
    control: int
    state: Path

    async def command(self, line: str) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control)
        writer.write(line.encode() + b"\n")
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return answer.decode().strip()

    def physical(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state.read_text())
        return state


@pytest.fixture
async def lcdm(tmp_path: Path) -> AsyncIterator[Lcdm]:
    state = tmp_path / "lcdm-state.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "sim", "dispenser", "--state", str(state),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        second = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        pty = first.strip().rpartition(" on ")[2]
        control = int(second.split(" on ")[1].split()[0].rpartition(":")[2])
        yield Lcdm(pty, control, state)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        await proc.wait()


async def lcdm_atm(world: World, lcdm: Lcdm) -> Atm:
    """The ATM with its dispenser on the LCDM's pty (the other devices in-process)."""
    config = world.device_config()
    devices, customer = build_devices(config)
    settings = serial_settings("dispenser", {})
    devices.dispenser = LcdmDispenser(
        lambda: open_serial(lcdm.pty, settings),
        [(c.denomination_cents, c.count) for c in config.cassettes],
        counts_path=config.dispenser_counts_path,
    )
    atm = Atm(AtmController(config, devices), customer)
    world.atms.append(atm)
    await atm.start()
    return atm


def driver_counts(config: DeviceConfig) -> list[int]:
    counts: list[int] = json.loads(config.dispenser_counts_path.read_text())["counts"]
    return counts


async def test_killed_during_a_serial_dispense_the_taken_notes_are_a_suspect_not_a_reversal(
    world: World, lcdm: Lcdm
):
    config = world.device_config()
    loaded = [c.count for c in config.cassettes]
    # 1. a normal $100 withdrawal (2 x $50): the driver's counts go down by two notes.
    atm = await lcdm_atm(world, lcdm)
    await atm.login()
    atm.keys("F1")
    await atm.screen("select_account")
    atm.keys("F1")
    await atm.screen("select_amount")
    atm.keys("F4")
    await atm.screen("take_cash")
    assert (await lcdm.command("take cash")).startswith("ok")
    await atm.screen("take_card")
    atm.customer.take_card()
    await atm.state(State.idle)
    await atm.stop()
    before_kill = driver_counts(config)
    assert before_kill == [loaded[0], loaded[1] - 2]

    # 2. the same again, the ATM killed as the dispenser answers; Alice takes the notes.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.device.crash_child",
        "--port", str(world.port),
        "--state-dir", str(config.state_dir),
        "--sim-state-dir", str(world.tmp_path / "physical"),
        "--lcdm", lcdm.pty,
        "--event", "dispense_reply",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL, out
    assert lcdm.physical()["tray"] == {"1": 2}
    assert (await lcdm.command("take cash")).startswith("ok")

    # 3. restart: a suspect, no reversal; the counts are those before the kill.
    atm = await lcdm_atm(world, lcdm)
    assert atm.events("REVERSAL_QUEUED") == []
    (suspect,) = atm.controller.suspects()
    assert suspect.amount_cents == 10_000
    assert atm.controller.cash_fault == "dispense outcome unknown"  # no cash until settled
    assert driver_counts(config) == before_kill
    assert world.balance(ALICE_CHECKING) == 525_000 - 20_000

    # 4. the operator counts the cassettes, finds two notes missing and settles: dispensed.
    assert await atm.controller.settle_suspects(dispensed=True) == [
        f"STAN {suspect.stan} settled as dispensed"
    ]
    await atm.stop()
    atm = await lcdm_atm(world, lcdm)  # a restart after settling changes nothing
    assert atm.events("REVERSAL_QUEUED") == []
    await atm.controller.link.drain()
    host = 525_000 - world.balance(ALICE_CHECKING)
    physical = lcdm.physical()
    taken = sum(
        config.cassettes[int(i)].denomination_cents * n for i, n in physical["taken"].items()
    )
    records = read_records(config.journal_path)
    requests = {r["stan"]: int(r["amount"]) for r in records if r["event"] == "TXN_REQUEST"}
    journal = sum(
        requests[r["stan"]]
        for r in records
        if r["event"] == "DISPENSE_RESULT"
        or (r["event"] == "SUSPECT_SETTLED" and r["outcome"] == "dispensed")
    )
    counters = CashCounters(config.counters_path)
    counted = sum(c.denomination_cents * c.dispensed for c in counters.cassettes.values())
    assert (host, taken, journal, counted) == (20_000,) * 4
    report = await atm.controller.balancing_report()
    assert report[-1] == "BALANCED", report
    assert [c["count"] for c in physical["cassettes"]] == [
        counters.cassettes[i].remaining for i in range(len(loaded))
    ]
