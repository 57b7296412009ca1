"""An ATM in its own process that kills itself (SIGKILL) at an exact point, for the crash
tests (run with ``python -m tests.device.crash_child``).

Alice makes one transaction on simulated devices that keep their physical state in
``--sim-state-dir`` (``DeviceConfig.sim_state_dir``), as real devices keep their notes and
cards when the ATM's computer dies. The kill point is the ``--nth`` journal record of event
``--event`` (right after it is on disk), or the ``--nth`` save of the cash counters file
(``--event counters``), or right after the bill acceptor stacked the notes and saved that,
before the controller journals it (``--event stacked``), or when the host's answer to a
financial request has arrived and is not journaled yet (``--event answered``), or, with
``--lcdm PTY`` (the dispenser is an LCDM-2000 driver on that pseudo-terminal, run by ``atm sim
dispenser`` in a process of its own, counts kept in the state directory), when the first byte
of the dispenser's answer to a dispense command arrives (``--event dispense_reply``): the
notes are out (the simulator saved that before answering) and the driver never learns it.
The process prints ``DONE`` and exits 0 if it was never killed.

``--kind`` ``withdrawal`` ($100, 2 x $50), ``transfer`` ($100, checking to savings),
``deposit`` ($300 in notes: $100, $100, $50, $50) or ``check`` ($500 check no 1042 in an
envelope); ``--walk-away``: the customer leaves the cash in the tray (the ATM retracts it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from device.cash import CashCounters
from device.config import DeviceConfig
from device.controller import AtmController, Devices
from device.events import DeviceEvent, LinkMessage, ScreenShown, StateChanged
from drivers.interfaces import CashDispenser
from drivers.lcdm import LcdmDispenser
from drivers.registry import serial_settings
from drivers.simulated import (
    Cassette,
    SimulatedBillAcceptor,
    SimulatedCardReader,
    SimulatedDepository,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from drivers.transport import Channel, open_serial

# Built here rather than with atm.demo.build_devices (the same devices): importing the
# composition root costs this short-lived process seconds.
ALICE = "4000001234567899=30121010000000000000"
DEPOSIT_NOTES = (10000, 10000, 5000, 5000)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DyingCounters(CashCounters):
    """The cash counters, dying right after their ``nth`` save is on disk."""

    def __init__(self, path: Path, nth: int) -> None:
        super().__init__(path, load=False)
        self.saves_left = nth

    def save(self) -> None:
        super().save()
        self.saves_left -= 1
        if self.saves_left == 0:
            die()


class DyingAcceptor(SimulatedBillAcceptor):
    """The bill acceptor, killing the ATM once it has stacked the notes (on disk)."""

    dying = False

    async def stack(self) -> dict[int, int]:
        stacked = await super().stack()
        if self.dying:
            die()
        return stacked


LCDM_DISPENSE = (0x45, 0x55, 0x56)  # upper, lower, upper+lower dispense


class DyingChannel(Channel):
    """The LCDM's serial line, dying when the dispenser starts answering a dispense."""

    def __init__(self, inner: Channel, dying: bool) -> None:
        self.inner = inner
        self.description = inner.description
        self.dying = dying
        self.armed = False

    async def write(self, data: bytes) -> None:
        await self.inner.write(data)
        if self.dying and len(data) > 3 and data[0] == 0x04 and data[3] in LCDM_DISPENSE:
            self.armed = True

    async def read(self) -> bytes:
        data = await self.inner.read()
        if self.armed and 0x01 in data:  # SOH: the reply frame begins
            die()
        return data

    async def close(self) -> None:
        await self.inner.close()


def lcdm_dispenser(config: DeviceConfig, pty: str, dying: bool) -> LcdmDispenser:
    settings = serial_settings("dispenser", {})

    async def connect() -> Channel:
        return DyingChannel(await open_serial(pty, settings), dying)

    return LcdmDispenser(
        connect,
        [(c.denomination_cents, c.count) for c in config.cassettes],
        counts_path=config.dispenser_counts_path,
    )


def kill_at(controller: AtmController, event: str, nth: int) -> None:
    seen = 0
    if event == "counters":
        controller.counters = DyingCounters(controller.config.counters_path, nth)
        return
    if event == "stacked":
        acceptor = controller.devices.bill_acceptor
        assert isinstance(acceptor, DyingAcceptor)
        acceptor.dying = True
        return
    if event == "answered":

        def on_event(item: DeviceEvent) -> None:
            nonlocal seen
            if isinstance(item, LinkMessage) and item.message.get("t") == "0210":
                seen += 1
                if seen == nth:
                    die()

        controller.events.subscribe(on_event)
        return

    def on_line(line: str) -> None:
        nonlocal seen
        if f" | {event} | " in line:
            seen += 1
            if seen == nth:
                die()

    controller.journal.listeners.append(on_line)


async def main(args: argparse.Namespace) -> None:
    config = DeviceConfig(
        port=args.port,
        state_dir=Path(args.state_dir),
        sim_state_dir=Path(args.sim_state_dir),
        reconnect_delay=0.05,
        cash_take_timeout=0.2 if args.walk_away else 30.0,
    )
    reader = SimulatedCardReader(state_path=config.sim_state_path("card-reader"))
    pin_pad = SimulatedPinPad(config.master_key, config.key_scheme)
    dispenser: CashDispenser = SimulatedDispenser(
        [Cassette(c.denomination_cents, c.count) for c in config.cassettes],
        state_path=config.sim_state_path("dispenser"),
    )
    if args.lcdm:
        dispenser = lcdm_dispenser(config, args.lcdm, args.event == "dispense_reply")
    printer = SimulatedPrinter(state_path=config.sim_state_path("printer"))
    notes = DyingAcceptor(state_path=config.sim_state_path("bill-acceptor"))
    depository = SimulatedDepository(state_path=config.sim_state_path("depository"))
    controller = AtmController(
        config, Devices(reader, pin_pad, dispenser, printer, notes, depository)
    )
    kill_at(controller, args.event, args.nth)
    finished = asyncio.Event()
    session_over = False

    def on_event(event: DeviceEvent) -> None:
        nonlocal session_over
        if isinstance(event, ScreenShown):
            screen = event.screen.id
            if screen == "welcome" and not session_over:
                reader.insert(ALICE)
            elif screen == "take_cash" and not args.walk_away:
                assert isinstance(dispenser, SimulatedDispenser)
                dispenser.take_cash()
            elif screen == "another":
                pin_pad.press("F8")
            elif screen == "take_card":
                reader.take_card()
            elif screen == "insert_notes" and not any("Counted" in t for t in event.screen.lines):
                for cents in DEPOSIT_NOTES:
                    notes.insert_note(cents)
            elif screen == "insert_notes" and f"Counted: {len(DEPOSIT_NOTES)} " in " ".join(
                event.screen.lines
            ):
                pin_pad.press("ENTER")
            elif screen == "confirm_deposit":
                pin_pad.press("F1")
            elif screen == "take_notes":
                notes.take_returned()
            elif screen == "insert_envelope":
                depository.insert_envelope()
        elif isinstance(event, StateChanged) and event.dest == "session_end":
            session_over = True
        elif isinstance(event, StateChanged) and event.dest == "idle" and session_over:
            finished.set()

    controller.events.subscribe(on_event)
    if args.kind == "withdrawal":
        pin_pad.press(*"1234", "ENTER", "F1", "F1", "F4")  # withdrawal, checking, $100
    elif args.kind == "transfer":
        pin_pad.press(*"1234", "ENTER", "F3", "F1", "F2", *"100", "ENTER")
    elif args.kind == "deposit":
        pin_pad.press(*"1234", "ENTER", "F5", "F1")  # cash deposit to checking
    else:
        pin_pad.press(*"1234", "ENTER", "F6", "F1", *"500", "ENTER", *"1042", "ENTER")
    task = asyncio.create_task(controller.run())
    await finished.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--sim-state-dir", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--nth", type=int, default=1)
    kinds = ("withdrawal", "transfer", "deposit", "check")
    parser.add_argument("--kind", choices=kinds, default="withdrawal")
    parser.add_argument("--walk-away", action="store_true")
    parser.add_argument("--lcdm", default="", help="the pty of an LCDM-2000 (atm sim dispenser)")
    asyncio.run(main(parser.parse_args()))
