"""The LCDM-2000 driver keeps its cassette counts across restarts (issue 12 item 6): the
LCDM cannot say how many notes a cassette holds, so the driver's counts are the only record
and must not go back to the configured load when the ATM restarts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from drivers.interfaces import CassetteStatus
from drivers.lcdm import LcdmDispenser
from simulators.dispenser import DispenserSimulator, SimCassette
from simulators.ports import PtyPort
from tests.drivers.conftest import CASSETTES, FAST, serial_connect

T = TypeVar("T")


async def _with_driver(
    sim: DispenserSimulator, counts_path: Path, action: Callable[[LcdmDispenser], Awaitable[T]]
) -> T:
    port = PtyPort(sim)
    await port.start()
    driver = LcdmDispenser(
        serial_connect(port, "dispenser"), CASSETTES, counts_path=counts_path, **FAST
    )
    await driver.open()
    try:
        return await action(driver)
    finally:
        await driver.close()
        port.close()


async def test_counts_survive_a_restart(tmp_path):
    sim = DispenserSimulator([SimCassette(d, n) for d, n in CASSETTES])
    counts = tmp_path / "counts.json"
    await _with_driver(sim, counts, lambda d: d.dispense({1: 2}))
    status = await _with_driver(sim, counts, lambda d: d.status())  # a new driver: restart
    assert [c.count for c in status] == [100, 48]


async def test_bill_end_sensor_corrects_the_count(tmp_path):
    sim = DispenserSimulator([SimCassette(2000, 0), SimCassette(5000, 50)])
    counts = tmp_path / "counts.json"
    status = await _with_driver(sim, counts, lambda d: d.status())
    assert [c.count for c in status] == [0, 50]
    # and the correction is kept
    assert [c.count for c in await _with_driver(sim, counts, lambda d: d.status())] == [0, 50]


async def test_replenish_sets_the_new_load(tmp_path):
    sim = DispenserSimulator([SimCassette(d, n) for d, n in CASSETTES])
    counts = tmp_path / "counts.json"
    await _with_driver(sim, counts, lambda d: d.dispense({0: 5}))

    async def replenish(driver: LcdmDispenser) -> list[CassetteStatus]:
        await driver.replenish()
        return await driver.status()

    assert [c.count for c in await _with_driver(sim, counts, replenish)] == [100, 50]
