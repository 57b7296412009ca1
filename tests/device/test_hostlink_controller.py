"""The whole chain for reversals: controller -> HostLink -> store-and-forward -> real host over
TCP -> ledger. Dispense fault with part of the cash out, cash not taken, and a host that
answers too late."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from device.config import DeviceConfig
from device.controller import AtmController, Devices
from device.events import DeviceEvent, ScreenShown
from drivers.simulated import (
    Cassette,
    SimulatedCardReader,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from host.bank.ledger import check_ledger
from tests.host.link_helpers import ALICE_CHECKING, ALICE_TRACK, start_host


@pytest.fixture
async def host(host_config):
    host = await start_host(host_config)
    yield host
    with host.sessions() as session:
        assert check_ledger(session) == []
    await host.close()


async def _session(
    host,
    tmp_path,
    *,
    fault: str | None = None,
    take_cash: bool = True,
    on_take_card: Callable[[], None] | None = None,
    **config,
) -> AtmController:
    device_config = DeviceConfig(
        port=host.server.port, state_dir=tmp_path, terminal_id="ATM00005", **config
    )
    reader, pad, printer = (
        SimulatedCardReader(),
        SimulatedPinPad(device_config.master_key),
        SimulatedPrinter(),
    )
    dispenser = SimulatedDispenser(
        [Cassette(c.denomination_cents, c.count) for c in device_config.cassettes]
    )
    if fault:
        dispenser.inject(fault)
    controller = AtmController(device_config, Devices(reader, pad, dispenser, printer))
    steps: dict[str, Callable[[], None]] = {
        "welcome": lambda: reader.insert(ALICE_TRACK),
        "enter_pin": lambda: pad.press(*"1234", "ENTER"),
        "main_menu": lambda: pad.press("F1"),
        "select_account": lambda: pad.press("F1"),
        "select_amount": lambda: pad.press("F4"),  # $100.00
        "take_cash": dispenser.take_cash if take_cash else (lambda: None),
        "take_card": reader.take_card,
    }
    if on_take_card is not None:
        hook = on_take_card

        def release_then_take() -> None:
            hook()
            reader.take_card()

        steps["take_card"] = release_then_take
    done = asyncio.Event()
    seen: list[str] = []

    def on_event(event: DeviceEvent) -> None:
        if not isinstance(event, ScreenShown):
            return
        screen = event.screen.id
        if screen == "welcome" and "take_card" in seen:
            done.set()
            return
        if screen in steps and (not seen or seen[-1] != screen):
            seen.append(screen)
            asyncio.get_running_loop().call_soon(steps[screen])

    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(done.wait(), 30)
        assert await controller.link.drain()
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    return controller


async def test_partial_dispense_reverses_the_undispensed_part(host, tmp_path):
    controller = await _session(host, tmp_path, fault="partial")
    assert controller.link.pending_reversals() == 0
    # Half the notes of the $100.00 mix left before the jam: $50.00.
    assert "DISPENSE_FAULT" in controller.journal.path.read_text()
    assert host.balance(ALICE_CHECKING) == 525_000 - 5_000


async def test_cash_not_taken_is_reversed_in_full(host, tmp_path):
    await _session(host, tmp_path, take_cash=False, cash_take_timeout=0.3)
    assert host.balance(ALICE_CHECKING) == 525_000


async def test_host_answering_too_late_leaves_the_customer_whole(host, tmp_path):
    """The host's service is wrapped to hold its answer until the terminal has given up (the
    card-return screen): a delay injected into the real service, not a mock."""
    released = threading.Event()
    authorize = host.service.authorize

    def late_authorize(request):
        if request.mti_class == "0200":
            released.wait(20)
        return authorize(request)

    host.service.authorize = late_authorize
    try:
        await _session(host, tmp_path, response_timeout=1.0, on_take_card=released.set)
    finally:
        released.set()
    assert host.balance(ALICE_CHECKING) == 525_000
