"""``atm device``: run one ATM with simulated devices against a host, driven from stdin."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from atm.demo import TRACKS, Customer
from device.config import DeviceConfig
from device.controller import AtmController, Devices
from device.errors import DeviceConfigError
from device.events import DeviceEvent, LinkMessage, ScreenShown
from device.screens import render_text
from drivers.simulated import (
    Cassette,
    SimulatedCardReader,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from protocol.display import describe

HELP = """commands (one per line):
  insert alice|bob|charlie|expired|stolen   insert a card
  keys K [K ...]   press keys: digits, ENTER, CANCEL, CLEAR, F1..F8
  pin 1234         type digits then ENTER
  take cash | take card
  quit"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "device",
        help="run one ATM (simulated devices) against a running host",
        description="Run the ATM controller with simulated devices, connected to a host over "
        "TCP. The customer acts through commands on standard input:\n" + HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="host address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8583, help="host ISO link port (8583)")
    parser.add_argument("--terminal-id", default="ATM00001", help="8-character terminal ID")
    parser.add_argument("--state-dir", default="var/device", help="journal directory")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        config = DeviceConfig(
            terminal_id=args.terminal_id,
            host=args.host,
            port=args.port,
            state_dir=Path(args.state_dir),
        )
    except DeviceConfigError as exc:
        print(f"atm device: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(config))


async def _serve(config: DeviceConfig) -> int:
    reader, pin_pad = SimulatedCardReader(), SimulatedPinPad(config.master_key, config.pin_key)
    dispenser = SimulatedDispenser(
        [Cassette(c.denomination_cents, c.count) for c in config.cassettes]
    )
    controller = AtmController(config, Devices(reader, pin_pad, dispenser, SimulatedPrinter()))
    customer = Customer(reader, pin_pad, dispenser)

    def on_event(event: DeviceEvent) -> None:
        if isinstance(event, ScreenShown):
            print(render_text(event.screen), flush=True)
        elif isinstance(event, LinkMessage):
            arrow = "ATM -> HOST" if event.direction == "send" else "HOST -> ATM"
            print(f"-- {arrow}  {describe(event.message)}", flush=True)

    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    print(HELP, flush=True)
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or line.strip() == "quit":
                break
            _command(customer, line.split())
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    return 0


def _command(customer: Customer, words: list[str]) -> None:
    match words:
        case ["insert", who] if who in TRACKS:
            customer.insert(who)
        case ["keys", *keys] if keys:
            customer.keys(*keys)
        case ["pin", digits] if digits.isdigit():
            customer.type(digits)
        case ["take", "cash"]:
            customer.take_cash()
        case ["take", "card"]:
            customer.take_card()
        case []:
            pass
        case _:
            print(f"unknown command: {' '.join(words)}\n{HELP}", flush=True)
