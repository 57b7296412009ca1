"""``atm device``: run one ATM against a host, with each device picked by URL (``sim`` by
default; see ``atm.devices``). The customer acts through commands on standard input, or a
demo script runs non-interactively (``--script NAME [--repeat N]``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import signal
import ssl
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atm.commands._signals import stop_on_signals
from atm.devices import CardSlot, DeviceKit, Keypad, open_kit
from atm.errors import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, CommandFailed
from atm.scenario import ScenarioError
from atm.scenario.format import Scenario
from atm.scenario.loader import builtin_scenarios
from atm.steps import (
    TRACKS,
    Customer,
    StepDriver,
    add_link_log_option,
    link_line,
    open_link_log,
    stop_controller,
    world_steps,
)
from atm.trace import add_trace_option, enable_trace
from device.config import LOCAL_HOSTS, TEST_CARD_RANGES, DeviceConfig
from device.controller import AtmController
from device.errors import DeviceConfigError, InsecureFileError
from device.events import DeviceEvent, LinkMessage, ScreenShown
from device.private_files import check_private, read_master_key_file
from device.screens import render_text
from drivers.errors import DriverError
from protocol.display import response_meaning
from protocol.errors import ProtocolError
from protocol.framing import encode_frame
from protocol.keyblock import DEFAULT_KEY_BLOCK, KeyBlockFormat
from protocol.mac import encode_signed, verify_signed
from protocol.messages import Message, Mti, NetworkCode, decode, format_transmission_time
from protocol.response_codes import ResponseCode
from protocol.security import KeyScheme, signon_mac_key

if TYPE_CHECKING:  # the web panel loads only with --web
    from aiohttp import web

    from atm.frontpanel import FrontPanel

HELP = """commands (one per line):
  insert alice|bob|charlie|expired|stolen   insert a card
  keys K [K ...]   press keys: digits, ENTER, CANCEL, CLEAR, F1..F8
  pin 1234         type digits then ENTER
  take cash | take card
  supervisor       the supervisor switch: enter supervisor mode (when idle, out of service
                   or in a fault), then keys F1..F8 (F5 balancing, F6/F7 settle suspects,
                   F8 leave: clears a fault without a restart)
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


def add_key_options(parser: argparse.ArgumentParser) -> None:
    """The terminal's key scheme and working-key layout (``atm device``, the acceptance
    client ``scripts.smoke_iso``): both must match what the host has for the terminal."""
    parser.add_argument(
        "--key-scheme",
        default=KeyScheme.TDES.value,
        type=str.upper,
        choices=[s.value for s in KeyScheme],
        help="T: TDES keys, PIN block format 0 (default); A: AES keys, PIN block format 4. "
        "Must match the host's TERMINAL_KEY_SCHEMES entry for this terminal",
    )
    parser.add_argument(
        "--key-block",
        default=DEFAULT_KEY_BLOCK.value,
        type=str.lower,
        choices=[f.value for f in KeyBlockFormat],
        help="layout of the working keys at sign-on: tr31 (ANSI X9.143 / TR-31 key blocks; "
        "default) or legacy (our original layout). Must match the host's TERMINAL_KEY_BLOCKS "
        "entry for this terminal",
    )


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """The client TLS options of the host link (``atm device``, ``atm console --host``)."""
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
    add_link_log_option(parser)
    add_trace_option(parser)
    parser.add_argument(
        "--wait-for-host",
        action="store_true",
        help="start even when the host does not answer (the ATM shows out of service and "
        "keeps trying); without it the command first signs on once and stops with one line "
        "if the host is unreachable (exit 3) or refuses the terminal's key, scheme or ID "
        "(exit 2)",
    )
    add_key_options(parser)
    add_tls_options(parser)
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
    web = parser.add_argument_group(
        "the front panel in a browser (docs/web.md); FRONTEND_ENABLED=false in the "
        "environment turns --web off"
    )
    web.add_argument(
        "--web",
        type=int,
        metavar="PORT",
        help="serve this ATM's front panel at http://127.0.0.1:PORT (0: any free port): its "
        "screen, keys, card slot, cash tray, note and envelope slots, receipt, faults, link log",
    )
    web.add_argument(
        "--web-listen",
        default="127.0.0.1",
        metavar="ADDR",
        help="address for --web (default 127.0.0.1: this machine only; 0.0.0.0 in a container)",
    )
    web.add_argument(
        "--no-faults", action="store_true", help="--web: no fault panel (faults are refused)"
    )
    parser.add_argument(
        "--sim-state",
        metavar="DIR",
        help="simulated (sim) devices keep their physical state (notes, card, paper) in DIR "
        "across restarts, as real devices do; default: forgotten when the ATM stops",
    )
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


def _script(name: str) -> Scenario:
    """The built-in scenario ``name`` if the customer alone can play it here; otherwise one
    line, exit 2."""
    try:
        scenarios = builtin_scenarios()
    except ScenarioError as exc:
        raise CommandFailed(f"device: {exc}", EXIT_USAGE) from None
    if name not in scenarios:
        raise CommandFailed(
            f"device: unknown script {name!r} (`atm demo --list-scripts` lists them)",
            EXIT_USAGE,
        )
    scenario = scenarios[name]
    needs_world = world_steps(scenario.steps)
    if needs_world or scenario.faults or scenario.setup.cards or scenario.setup.balances:
        where = f" (line {needs_world[0].line})" if needs_world else ""
        raise CommandFailed(
            f"device: script {name!r} acts on the host, the link or the devices' faults"
            f"{where}: run it with `atm demo --script {name}` or `atm scenario run`",
            EXIT_USAGE,
        )
    return scenario


def _run(args: argparse.Namespace) -> int:
    if args.script is not None:
        _script(args.script)
    if args.repeat < 0:
        raise CommandFailed("device: --repeat is 0 (forever) or more", EXIT_USAGE)
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
            sim_state_dir=Path(args.sim_state) if args.sim_state else None,
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
        raise CommandFailed(f"device: {exc}", EXIT_USAGE) from None
    urls = {kind: getattr(args, option[2:].replace("-", "_")) for option, kind in DEVICE_OPTIONS}
    if args.web is not None:
        if not 0 <= args.web < 65536:
            raise CommandFailed(
                f"device: --web takes a TCP port 0-65535, got {args.web}", EXIT_USAGE
            )
        if not frontend_enabled(os.environ.get("FRONTEND_ENABLED", "")):
            print("atm device: FRONTEND_ENABLED is false: no web front panel", flush=True)
            args.web = None
    if args.trace:
        enable_trace()
    with open_link_log(args.link_log, "device") as link_say:
        return asyncio.run(_serve(config, urls, args, link_say))


def frontend_enabled(value: str) -> bool:
    """``FRONTEND_ENABLED``: true unless set to false, 0, no or off."""
    return value.strip().lower() not in ("false", "0", "no", "off")


@dataclasses.dataclass
class _Front:
    """The web front panel of this ATM (``--web``), a view of its controller."""

    panel: FrontPanel
    runner: web.AppRunner

    async def close(self) -> None:
        await self.runner.cleanup()
        self.panel.detach()


async def _open_front(
    kit: DeviceKit, controller: AtmController, urls: dict[str, str], args: argparse.Namespace
) -> _Front | None:
    port = getattr(args, "web", None)  # tests build the Namespace by hand
    if port is None:
        return None
    from atm.frontpanel import BenchError, FrontPanel
    from atm.frontpanel.bench import kit_sides
    from atm.web import start_web

    try:
        sides = await kit_sides(kit, urls, {})
    except BenchError as exc:
        raise CommandFailed(f"device: {exc}", EXIT_USAGE) from None
    config = controller.config
    panel = FrontPanel(controller, sides, host_label=f"{config.host}:{config.port}")
    listen = args.web_listen
    try:
        runner, bound = await start_web(panel, port, listen=listen, faults=not args.no_faults)
    except OSError as exc:
        panel.detach()
        raise CommandFailed(
            f"device: cannot serve the front panel on {listen}:{port}: {exc.strerror or exc} "
            "(pick another --web port)",
            EXIT_UNAVAILABLE,
        ) from None
    if listen not in ("127.0.0.1", "localhost", "::1"):
        print(f"atm device: the front panel listens on {listen}: anyone who reaches it can "
              "use this ATM", flush=True)  # fmt: skip
    print(f"ATM front panel on http://{listen}:{bound}/ (Ctrl-C to stop)", flush=True)
    return _Front(panel, runner)


def _print_line(line: str) -> None:
    print(line, flush=True)


async def _serve(
    config: DeviceConfig,
    urls: dict[str, str],
    args: argparse.Namespace,
    link_say: Callable[[str], None] | None = None,
) -> int:
    if link_say is None:
        link_say = _print_line
    try:
        # The web panel has an envelope slot: check deposits (simulated depository).
        kit = await open_kit(urls, config, depository=getattr(args, "web", None) is not None)
    except (ValueError, OSError, DriverError) as exc:
        print(f"atm device: {exc}", file=sys.stderr)
        return 2
    try:
        if any(url != "sim" for url in urls.values()):
            problems = await kit.check()
            for problem in problems:
                print(f"atm device: {problem}", file=sys.stderr)
            if problems:
                return 2
        if not getattr(args, "wait_for_host", False):  # tests build the Namespace by hand
            # One clear line now, rather than an ATM that stays out of service: the journal
            # is not opened, nor anything written, before the host has answered a sign-on.
            await check_sign_on(config)
        if args.script is not None:
            return await _run_script(
                kit, config, _script(args.script), args.repeat, args.timeout, link_say,
                web=(urls, args),
            )  # fmt: skip
        return await _interactive(kit, config, link_say, web=(urls, args))
    finally:
        kit.close()


@dataclasses.dataclass
class _Hands:
    """The customer at an ATM whose dispenser is a real device or a separate simulator:
    card and keys here, the cash taken at the dispenser itself."""

    card_reader: CardSlot
    pin_pad: Keypad

    def insert(self, who: str) -> None:
        self.card_reader.insert(TRACKS[who])

    def keys(self, *keys: str) -> None:
        self.pin_pad.press(*keys)

    def type(self, digits: str, then: str = "ENTER") -> None:
        self.pin_pad.type_digits(digits)
        self.pin_pad.press(then)

    def take_card(self) -> None:
        self.card_reader.take_card()

    def take_cash(self) -> None:
        print(
            "take the cash at the dispenser itself (a simulator: `take cash` on its control "
            "channel)",
            flush=True,
        )


def _customer(kit: DeviceKit) -> Customer | None:
    if kit.card_reader is None or kit.pin_pad is None or kit.dispenser is None:
        return None
    return Customer(kit.card_reader, kit.pin_pad, kit.dispenser, notes=kit.notes)


async def _interactive(
    kit: DeviceKit,
    config: DeviceConfig,
    link_say: Callable[[str], None],
    web: tuple[dict[str, str], argparse.Namespace] | None = None,
) -> int:
    controller = AtmController(config, kit.devices)
    front = await _open_front(kit, controller, *web) if web is not None else None
    customer: Customer | _Hands | None = _customer(kit)
    if customer is None and kit.card_reader is not None and kit.pin_pad is not None:
        customer = _Hands(kit.card_reader, kit.pin_pad)

    def print_event(event: DeviceEvent) -> None:
        if isinstance(event, ScreenShown):
            print(render_text(event.screen), flush=True)
        elif isinstance(event, LinkMessage):
            link_say(link_line(event))

    controller.events.subscribe(print_event)
    runner = asyncio.create_task(controller.run())
    print(HELP, flush=True)
    if customer is None:
        print("(some devices are real: act on them directly)", flush=True)
    lines = await _stdin_lines()
    loop = asyncio.get_running_loop()
    # With a web panel the ATM serves until stopped (docker stop sends SIGTERM).
    signals = (signal.SIGINT, signal.SIGTERM) if front is not None else (signal.SIGINT,)
    interrupted = stop_on_signals(signals)
    reading = True
    try:
        while not runner.done():
            waits: set[asyncio.Future[Any]] = {runner}
            next_line = asyncio.ensure_future(lines.get()) if reading else None
            if next_line is not None:
                waits.add(next_line)
            stop = asyncio.ensure_future(interrupted.wait())
            waits.add(stop)
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if next_line is not None:
                next_line.cancel()
            stop.cancel()
            if stop in done or runner in done:
                break
            assert next_line is not None
            line = next_line.result()
            if line is None and front is not None:
                reading = False  # no standard input (a container): the web panel acts
                continue
            if line is None or line.strip() == "quit":
                break
            if line.strip() == "supervisor":
                # The switch is inside the ATM, whichever devices are attached.
                controller.enter_supervisor()
                continue
            if customer is None:
                print("the customer acts at the real devices here", flush=True)
                continue
            _command(customer, line.split())
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        state = controller.state.value
        if front is not None:
            await front.close()
        await stop_controller(controller, runner)
    if interrupted.is_set() and front is not None:
        print(f"atm device: stopped in state {state}{_unfinished(state)}", flush=True)
        return 0
    if interrupted.is_set():
        print(f"atm device: stopped (Ctrl-C) in state {state}{_unfinished(state)}", flush=True)
        return 130
    return 0


def _unfinished(state: str) -> str:
    """What happens to a transaction cut short: the journal says what was done; restart
    recovery settles the rest (a reversal for money not dispensed) at the next start."""
    if state in ("idle", "out_of_service", "fault", "supervisor"):
        return ""
    return "; the transaction in progress is settled by restart recovery at the next start"


async def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of standard input as they come, None at its end. A pipe or terminal is read by
    the event loop itself, so Ctrl-C ends the command at once; a regular file (which the
    loop cannot watch) is read in a thread."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        # Only a pipe, socket or terminal can be watched by the loop (epoll refuses
        # /dev/null, a container's usual standard input, and regular files).
        mode = os.fstat(sys.stdin.fileno()).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()):
            raise ValueError("standard input is not a pipe, socket or terminal")
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):

        def read_all() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read_all, name="stdin", daemon=True).start()
        return lines

    async def pump() -> None:
        while raw := await reader.readline():
            lines.put_nowait(raw.decode(errors="replace"))
        lines.put_nowait(None)

    task = asyncio.ensure_future(pump())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return lines


_background: set[asyncio.Future[None]] = set()


async def _run_script(
    kit: DeviceKit,
    config: DeviceConfig,
    script: Scenario,
    repeat: int,
    timeout: float,
    link_say: Callable[[str], None],
    web: tuple[dict[str, str], argparse.Namespace] | None = None,
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
            link_say(link_line(event))
        elif isinstance(event, ScreenShown):
            driver.on_screen(event.screen.id)

    controller.events.subscribe(on_event)
    front = await _open_front(kit, controller, *web) if web is not None else None
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
                return EXIT_FAILED
            if driver.failure is not None:
                print(f"!! run {driver.runs + 1} failed: {driver.failure}", flush=True)
                return EXIT_FAILED
            print(f"== run {run}: done", flush=True)
        if front is not None:
            print("== script done; the front panel stays up (Ctrl-C to stop)", flush=True)
            await _until_stopped(runner)
    finally:
        driver.cancel()
        if front is not None:
            await front.close()
        await stop_controller(controller, runner)
    return 0


async def _until_stopped(runner: asyncio.Task[None]) -> None:
    """Until SIGINT or SIGTERM, or the controller ends."""
    stop = stop_on_signals()
    loop = asyncio.get_running_loop()
    try:
        waiting = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiting, runner}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _command(customer: Customer | _Hands, words: list[str]) -> None:
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


async def check_sign_on(config: DeviceConfig, timeout: float = 10.0) -> None:
    """Sign on once, as the ATM is about to, and turn every way it can fail into one line:
    host unreachable (exit 3); the host closing the connection, which it does when the MAC
    under the terminal master key is wrong (TERMINAL_MASTER_KEY, or an unknown terminal ID in
    production); a scheme or terminal the host refuses (exit 2). Keys issued here are
    replaced by the ATM's own sign-on a moment later."""
    where = f"{config.host}:{config.port}"
    try:
        tls = config.tls_context()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                config.host,
                config.port,
                ssl=tls,
                server_hostname=(config.tls_server_name or config.host) if tls else None,
            ),
            timeout,
        )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError too
        if isinstance(exc, ssl.SSLError):
            reason = f"TLS: {exc.reason or exc}"
        elif isinstance(exc, OSError) and exc.errno:
            reason = os.strerror(exc.errno)
        else:
            reason = "no answer"
        raise CommandFailed(
            f"device: cannot reach the host at {where} ({reason}): start it (`atm host`) or "
            "check --host/--port; --wait-for-host starts the ATM out of service instead",
            EXIT_UNAVAILABLE,
        ) from None
    scheme = config.key_scheme
    key = signon_mac_key(scheme, config.master_key)
    now = dt.datetime.now(dt.UTC)
    request: Message = {
        "t": Mti.NETWORK_REQUEST,
        "7": format_transmission_time(now),
        "11": "999999",
        "41": config.terminal_id,
        "42": config.acceptor_id,
        "48": scheme.value,
        "70": NetworkCode.SIGN_ON,
    }
    try:
        writer.write(encode_frame(encode_signed(request, scheme, key)))
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(2), timeout)
        payload = await asyncio.wait_for(reader.readexactly(int.from_bytes(header)), timeout)
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        raise CommandFailed(
            f"device: the host at {where} closed the connection at sign-on: the terminal "
            f"master key (TERMINAL_MASTER_KEY) is not the one the host has for "
            f"{config.terminal_id} (TERMINAL_MASTER_KEYS), or the host does not know it",
            EXIT_USAGE,
        ) from None
    finally:
        writer.close()
    try:
        response = decode(payload)
        verify_signed(payload, response, scheme, key)
    except ProtocolError as exc:
        raise CommandFailed(
            f"device: the host's sign-on answer does not verify ({exc}): wrong "
            "TERMINAL_MASTER_KEY?",
            EXIT_USAGE,
        ) from None
    code = response.get("39", "")
    if code == ResponseCode.APPROVED:
        return
    if code == ResponseCode.INVALID_TRANSACTION:
        problem = (
            f"key scheme {scheme.value} (--key-scheme) is not the one the host has for "
            f"{config.terminal_id} (TERMINAL_KEY_SCHEMES)"
        )
    elif code == ResponseCode.NOT_PERMITTED:
        problem = f"terminal {config.terminal_id} is not on file at the host (--terminal-id)"
    else:
        problem = f"the host refused the sign-on with {code} {response_meaning(code)}"
    raise CommandFailed(f"device: {problem}", EXIT_USAGE)
