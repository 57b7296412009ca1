"""``atm device``: run one ATM against a host, with each device picked by URL (``sim`` by
default; see ``atm.devices``). The customer acts through commands on standard input, or a
demo script runs non-interactively (``--script NAME [--repeat N]``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from atm.devices import DeviceKit, open_kit
from atm.scripts import SCRIPTS, TRACKS, Customer, DemoScript
from atm.steps import StepDriver, link_line
from device.config import LOCAL_HOSTS, TEST_CARD_RANGES, DeviceConfig
from device.controller import AtmController
from device.errors import DeviceConfigError, InsecureFileError
from device.events import DeviceEvent, LinkMessage, ScreenShown
from device.private_files import check_private, read_master_key_file
from device.screens import render_text
from protocol.keyblock import KeyBlockFormat
from protocol.security import KeyScheme

HELP = """commands (one per line):
  insert alice|bob|charlie|expired|stolen   insert a card
  keys K [K ...]   press keys: digits, ENTER, CANCEL, CLEAR, F1..F8
  pin 1234         type digits then ENTER
  take cash | take card
  quit"""

URL_HELP = """device URLs (--card-reader, --pin-pad, --dispenser, --printer):
  sim                              in-process simulated device (default)
  pty                              the device's simulator on a new pseudo-terminal in this
                                   process, driven through the real serial driver
  serial:///dev/ttyUSB0?baud=9600  serial port; query: baud, parity, bytesize, stopbits, rtscts
  socket://127.0.0.1:7001          TCP (e.g. `atm sim dispenser --tcp 7001`)
  usb://0801:0002                  USB (card reader: MagTek HID; printer: ESC/POS bulk)
With sim and pty the customer acts here; otherwise at the device (or `atm sim`'s control
channel). See docs/devices.md."""

DEVICE_OPTIONS = (
    ("--card-reader", "card-reader"),
    ("--pin-pad", "pin-pad"),
    ("--dispenser", "dispenser"),
    ("--printer", "printer"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "device",
        help="run one ATM against a running host (devices by URL, default simulated)",
        description="Run the ATM controller connected to a host over TCP. The customer acts "
        "through commands on standard input:\n" + HELP + "\n\n" + URL_HELP + "\n\n"
        "The terminal master key (32 hex digits) comes from the environment variable "
        "TERMINAL_MASTER_KEY or a file (--master-key-file, chmod 600); unset, the development "
        "key is used (refused by a production host). It must equal the host's "
        "TERMINAL_MASTER_KEYS entry for --terminal-id.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="host address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8583, help="host ISO link port (8583)")
    parser.add_argument("--terminal-id", default="ATM00001", help="8-character terminal ID")
    parser.add_argument("--state-dir", default="var/device", help="journal directory")
    parser.add_argument(
        "--key-scheme",
        default="T",
        type=str.upper,
        choices=("T", "A"),
        help="T: TDES keys, PIN block format 0 (default); A: AES keys, PIN block format 4. "
        "Must match the host's TERMINAL_KEY_SCHEMES entry for this terminal",
    )
    parser.add_argument(
        "--key-block",
        default="legacy",
        type=str.lower,
        choices=[f.value for f in KeyBlockFormat],
        help="layout of the working keys at sign-on: legacy (default) or tr31 (ANSI X9.143 / "
        "TR-31 key blocks). Must match the host's TERMINAL_KEY_BLOCKS entry for this terminal",
    )
    tls = parser.add_argument_group(
        "TLS on the host link (see `atm certs dev`; without --tls-ca the link is plaintext)"
    )
    tls.add_argument(
        "--tls-ca", metavar="FILE", help="CA file the host's certificate must chain to"
    )
    tls.add_argument("--tls-cert", metavar="FILE", help="this terminal's client certificate")
    tls.add_argument("--tls-key", metavar="FILE", help="the client certificate's private key")
    tls.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="name the host's certificate must carry (default: --host)",
    )
    parser.add_argument(
        "--master-key-file",
        metavar="FILE",
        help="read the terminal master key (32 hex digits) from FILE, which only its owner may "
        "read (chmod 600; else refused); also TERMINAL_MASTER_KEY_FILE",
    )
    guard = parser.add_argument_group(
        "production-safety guard (widening either is warned about at start-up)"
    )
    guard.add_argument(
        "--card-range",
        action="append",
        metavar="PREFIX",
        help="also accept cards whose PAN starts with PREFIX (repeatable; default only the "
        f"test range{'s' if len(TEST_CARD_RANGES) > 1 else ''} {', '.join(TEST_CARD_RANGES)})",
    )
    guard.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="allow connecting to NAME as well as localhost (repeatable); --host must be one",
    )
    for option, kind in DEVICE_OPTIONS:
        parser.add_argument(option, default="sim", metavar="URL", help=f"{kind} (default sim)")
    parser.add_argument(
        "--script",
        help="run this demo script instead of reading commands (see atm demo --list-scripts)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="with --script: how many times (0 = forever)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="with --script: seconds allowed per run"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.script is not None and args.script not in SCRIPTS:
        print(
            f"atm device: unknown script {args.script!r}; known: {', '.join(SCRIPTS)}",
            file=sys.stderr,
        )
        return 2
    if args.repeat < 0:
        print("atm device: --repeat is 0 (forever) or more", file=sys.stderr)
        return 2
    try:
        # The terminal master key is a secret: from the environment or a file only its owner
        # can read, never the command line. Unset: the development TMK, which a production
        # host refuses.
        master_key = os.environ.get("TERMINAL_MASTER_KEY", "").strip()
        key_file = args.master_key_file or os.environ.get("TERMINAL_MASTER_KEY_FILE", "")
        if key_file:
            if master_key:
                raise DeviceConfigError(
                    "give the master key once: TERMINAL_MASTER_KEY or a key file, not both"
                )
            master_key = read_master_key_file(Path(key_file))
        config = DeviceConfig(
            terminal_id=args.terminal_id,
            host=args.host,
            port=args.port,
            state_dir=Path(args.state_dir),
            key_scheme=KeyScheme(args.key_scheme),
            key_block=KeyBlockFormat(args.key_block),
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            tls_server_name=args.tls_server_name,
            card_ranges=TEST_CARD_RANGES + tuple(args.card_range or ()),
            allowed_hosts=LOCAL_HOSTS + tuple(args.allow_host or ()),
        )
        if master_key:
            config = dataclasses.replace(config, terminal_master_key=master_key)
        config.tls_context()  # a certificate that does not load: one line, exit 2
        # Journal and SAF files open to others are refused here, before anything starts.
        check_private(config.journal_path, "journal")
        check_private(config.saf_path, "store-and-forward file")
    except (DeviceConfigError, InsecureFileError) as exc:
        print(f"atm device: {exc}", file=sys.stderr)
        return 2
    urls = {kind: getattr(args, option[2:].replace("-", "_")) for option, kind in DEVICE_OPTIONS}
    return asyncio.run(_serve(config, urls, args))


async def _serve(config: DeviceConfig, urls: dict[str, str], args: argparse.Namespace) -> int:
    try:
        kit = await open_kit(urls, config)
    except (ValueError, OSError) as exc:
        print(f"atm device: {exc}", file=sys.stderr)
        return 2
    try:
        if any(url != "sim" for url in urls.values()):
            problems = await kit.check()
            for problem in problems:
                print(f"atm device: {problem}", file=sys.stderr)
            if problems:
                return 2
        if args.script is not None:
            return await _run_script(kit, config, SCRIPTS[args.script], args.repeat, args.timeout)
        return await _interactive(kit, config)
    finally:
        kit.close()


def _customer(kit: DeviceKit) -> Customer | None:
    if kit.card_reader is None or kit.pin_pad is None or kit.dispenser is None:
        return None
    return Customer(kit.card_reader, kit.pin_pad, kit.dispenser, notes=kit.notes)


def _print_event(event: DeviceEvent) -> None:
    if isinstance(event, ScreenShown):
        print(render_text(event.screen), flush=True)
    elif isinstance(event, LinkMessage):
        print(link_line(event), flush=True)


async def _interactive(kit: DeviceKit, config: DeviceConfig) -> int:
    controller = AtmController(config, kit.devices)
    customer = _customer(kit)
    controller.events.subscribe(_print_event)
    runner = asyncio.create_task(controller.run())
    print(HELP, flush=True)
    if customer is None:
        print("(some devices are real: act on them directly)", flush=True)
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or line.strip() == "quit":
                break
            if runner.done():
                break
            if customer is None:
                print("the customer acts at the real devices here", flush=True)
                continue
            _command(customer, line.split())
    finally:
        await _stop(runner)
    return 0


async def _run_script(
    kit: DeviceKit, config: DeviceConfig, script: DemoScript, repeat: int, timeout: float
) -> int:
    customer = _customer(kit)
    if customer is None:
        print(
            "atm device: --script needs the card reader, PIN pad and dispenser in this "
            "process (sim or pty)",
            file=sys.stderr,
        )
        return 2
    controller = AtmController(config, kit.devices)
    driver = StepDriver(
        script.steps,
        customer,
        lambda line: print(line, flush=True),
        label="customer ",
        repeat=repeat,
    )

    def on_event(event: DeviceEvent) -> None:
        if isinstance(event, LinkMessage):
            print(link_line(event), flush=True)
        elif isinstance(event, ScreenShown):
            driver.on_screen(event.screen.id)

    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    try:
        run = 0
        while repeat == 0 or run < repeat:
            print(f"== run {run + 1}: {script.name}: {script.description}", flush=True)
            try:
                async with asyncio.timeout(timeout):
                    run = await driver.finished.get()
            except TimeoutError:
                where = driver.waiting_for
                print(f"!! run {run + 1} stopped: still waiting for screen '{where}'", flush=True)
                return 1
            print(f"== run {run}: done", flush=True)
    finally:
        driver.cancel()
        await _stop(runner)
    return 0


async def _stop(runner: asyncio.Task[None]) -> None:
    # transitions 0.9.3 swallows a CancelledError that lands inside a trigger, so one
    # cancel() may not stop the controller: repeat until the task has ended.
    while not runner.done():
        runner.cancel()
        await asyncio.wait({runner}, timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        runner.result()


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
