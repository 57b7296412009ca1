"""Reversals reaching the host: the device queues each reversal (journaled, and checked in
test_faults.py and test_recovery_kill.py), ``HostLink``'s persistent store-and-forward queue
delivers it (drained by ``ensure_online()``), and the host applies the 0420/0421 advice once:
the customer's balance comes back exactly."""

import io

import pytest

from atm.demo import SCRIPTS, run_demo
from device.controller import AtmController
from tests.device.conftest import Atm, World, restarted_devices, run_until_dispensing

ALICE_CHECKING = "1000-0001-0001"


@pytest.mark.parametrize("name", ["dispenser-jam", "partial-dispense", "cash-not-taken"])
async def test_script(name, host_config, tmp_path, screens_fit):
    """Also: every screen it shows fits the display, no word cut (tests/screen_fit.py)."""
    out = io.StringIO()
    result = await run_demo(
        SCRIPTS[name], out=out, work_dir=tmp_path, host_config=host_config, timeout=20
    )
    assert result.ok, out.getvalue()[-4000:]


async def drained(atm: Atm) -> None:
    assert await atm.controller.link.ensure_online()
    assert atm.controller.link.pending_reversals() == 0


@pytest.mark.parametrize(("notes_out", "balance"), [(0, 525_000), (1, 525_000 - 5_000)])
async def test_killed_mid_dispense_balance_restored_exactly_once(
    world: World, notes_out: int, balance: int
) -> None:
    await run_until_dispensing(world, notes_out)
    assert world.balance(ALICE_CHECKING) == 515_000
    for _ in range(2):  # a second restart must not reverse again
        config = world.device_config()
        devices, customer = restarted_devices(world, config)
        atm = Atm(AtmController(config, devices), customer)
        world.atms.append(atm)
        await atm.start()
        await drained(atm)
        assert world.balance(ALICE_CHECKING) == balance
        await atm.stop()
