"""The demo: a fresh host on embedded SQLite, one simulated ATM over a real TCP socket, and a
scripted customer (scripts: ``atm.scripts``).

The runner prints every screen, every host-link message (PAN masked, PIN block never shown),
the receipts, and at the end the balances, the dispenser's cassettes and counters. It checks
the outcome the script expects (balances, journal events, notes taken, cards retained,
receipts); ``DemoResult.ok`` is true only when all of it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from atm.database import display_url
from atm.devices import DEVICE_SETS, KINDS, DeviceKit, open_kit
from atm.scripts import SCRIPTS, TRACKS, Customer, DemoScript, Step
from atm.steps import StepDriver, link_line, stop_controller
from device.config import DeviceConfig
from device.controller import AtmController, Devices
from device.events import DeviceEvent, LinkMessage, ReceiptPrinted, ScreenShown
from device.screens import Screen, money, render_text
from drivers.simulated import (
    Cassette,
    SimulatedBillAcceptor,
    SimulatedCardReader,
    SimulatedDepository,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from host.app import Host
from host.config import HostConfig

__all__ = [
    "SCRIPTS",
    "TRACKS",
    "Customer",
    "DemoResult",
    "DemoScript",
    "HoldingRelay",
    "Step",
    "build_devices",
    "run_demo",
]


_security = logging.getLogger("atm.security")


def build_devices(config: DeviceConfig) -> tuple[Devices, Customer]:
    """The simulated devices of one ATM, and the customer who acts on them."""
    reader = SimulatedCardReader(state_path=config.sim_state_path("card-reader"))
    pin_pad = SimulatedPinPad(config.master_key, config.key_scheme)
    dispenser = SimulatedDispenser(
        [Cassette(c.denomination_cents, c.count) for c in config.cassettes],
        state_path=config.sim_state_path("dispenser"),
    )
    printer = SimulatedPrinter(state_path=config.sim_state_path("printer"))
    notes = SimulatedBillAcceptor()
    depository = SimulatedDepository()
    devices = Devices(reader, pin_pad, dispenser, printer, notes, depository)
    customer = Customer(reader, pin_pad, dispenser, printer, notes=notes, depository=depository)
    return devices, customer


class HoldingRelay:
    """A real TCP relay between the ATM and the host. While ``holding``, what the ATM sends
    is lost on the way (a host that stops answering); the host's replies still pass.
    ``hold_replies()`` instead keeps the host's replies back until ``release_replies()``
    (a host that answers late, on the same connection); ``reply_delay`` holds each reply
    that many seconds (a slow host). ``sent`` keeps every byte the ATM put on the wire (for
    tests that look at frames).

    ``tls``: the relay reaches the host over TLS with this client context
    (``protocol.tls.client_context``: the host verified against its CA, and with mutual TLS
    the terminal's certificate presented), checking ``server_name`` (default the upstream
    host). The ATM's side stays on this process's loopback."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.tls = tls
        self.server_name = server_name
        self.holding = False
        self.reply_delay = 0.0
        self.sent = bytearray()
        self._replies_open = asyncio.Event()
        self._replies_open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def hold_replies(self) -> None:
        self._replies_open.clear()

    def release_replies(self) -> None:
        self._replies_open.set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.upstream,
                ssl=self.tls,
                server_hostname=(self.server_name or self.upstream[0]) if self.tls else None,
            )
        except OSError as exc:  # ssl.SSLError too: the ATM sees the link drop and retries
            if isinstance(exc, ssl.SSLError):
                _security.error(
                    "security: TLS handshake with host %s:%d failed: %s",
                    *self.upstream,
                    exc.reason or exc,
                )
            writer.close()
            return
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, lose=True)),
            asyncio.create_task(self._pump(up_reader, writer, lose=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, lose: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if lose:
                    self.sent += data
                if lose and self.holding:
                    continue
                if not lose:
                    await self._replies_open.wait()
                    if self.reply_delay:
                        await asyncio.sleep(self.reply_delay)
                writer.write(data)
                await writer.drain()


@dataclass
class DemoResult:
    completed: bool
    balance_before: int
    balance_after: int
    receipts: list[list[str]] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    balances_before: dict[str, int] = field(default_factory=dict)
    balances_after: dict[str, int] = field(default_factory=dict)
    taken_cents: int = 0
    cards_retained: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.completed and not self.problems


class _Printer:
    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet

    def __call__(self, text: str = "") -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _World:
    """What a script may do besides being a customer: the host, the link, the operator."""

    def __init__(
        self,
        host: Host,
        port: int,
        relay: HoldingRelay | None,
        controller: AtmController,
        customer: Customer,
    ) -> None:
        self.host, self.port, self.relay = host, port, relay
        self.controller, self.customer = controller, customer

    async def host_down(self) -> None:
        await self.host.server.close()

    async def host_up(self) -> None:
        await self.host.server.start("127.0.0.1", self.port)

    async def hold_host(self) -> None:
        assert self.relay is not None, "script needs via_relay=True"
        self.relay.holding = True

    async def release_host(self) -> None:
        assert self.relay is not None, "script needs via_relay=True"
        self.relay.holding = False

    async def supervisor(self) -> None:
        self.controller.enter_supervisor()

    async def free_card(self) -> None:
        self.customer.card_reader.clear("card_jam")
        self.controller.enter_supervisor()

    async def repair_dispenser(self) -> None:
        """The operator clears the dispenser's fault and turns the supervisor switch."""
        self.customer.dispenser.clear()
        self.controller.enter_supervisor()

    async def replenish(self) -> None:
        for cassette, loaded in zip(
            self.customer.dispenser.cassettes, self.controller.config.cassettes, strict=False
        ):
            cassette.count = loaded.count
        self.customer.keys("F1")


async def run_demo(
    script: DemoScript,
    *,
    out: TextIO,
    database_url: str | None = None,
    work_dir: Path | None = None,
    host_config: HostConfig | None = None,
    quiet: bool = False,
    timeout: float = 60.0,
    devices: str = "sim",
    link_say: Callable[[str], None] | None = None,
    dispenser_model: str | None = None,
) -> DemoResult:
    """Run ``script``; ``devices`` is ``sim`` (in-process simulated backends) or ``serial``
    (each device's simulator on a pseudo-terminal, driven through the real serial driver).
    ``dispenser_model`` (``lcdm-2000``, ``lcdm-4000``) puts the dispenser on that model's
    simulator on a pseudo-terminal whatever ``devices`` says."""
    say = _Printer(out, quiet)
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atm-demo-")))
        url = database_url or f"sqlite:///{work_dir / 'host.db'}"
        base = host_config or HostConfig.from_env({})
        config = HostConfig(**{**base.__dict__, "database_url": url})
        return await _run(
            script, config, work_dir, say, timeout, devices, dispenser_model, link_say or say
        )
    raise AssertionError("unreachable")


async def _run(
    script: DemoScript,
    config: HostConfig,
    work_dir: Path,
    say: _Printer,
    timeout: float,
    devices: str = "sim",
    dispenser_model: str | None = None,
    link_say: Callable[[str], None] | None = None,
) -> DemoResult:
    say(f"== demo '{script.name}': {script.description}")
    wanted = DeviceConfig(**dict(script.device_config))
    if wanted.key_scheme is not config.link.scheme(wanted.terminal_id):
        # The demo's host is ours: give it the terminal's key scheme (TERMINAL_KEY_SCHEMES).
        terminal, scheme = wanted.terminal_id, wanted.key_scheme
        say(f"== host: terminal {terminal} uses key scheme {scheme.value} ({scheme.name})")
        schemes = {**config.link.schemes, terminal: scheme}
        config = replace(config, link=replace(config.link, schemes=schemes))
    host = Host(config)
    say(f"== host database {display_url(config.database_url)}")
    await asyncio.to_thread(host.upgrade_and_seed)
    accounts = script.changes
    before = {number: host.balance(number) for number in accounts}
    port = _free_port() if script.host_down_at_start else 0
    if script.host_down_at_start:
        say(f"== host NOT started yet (ATM will look for it on 127.0.0.1:{port})")
    else:
        port = await host.start("127.0.0.1", 0)
        say(f"== host listening on 127.0.0.1:{port}")
    relay = HoldingRelay("127.0.0.1", port) if script.via_relay else None
    atm_port = await relay.start() if relay else port
    if relay:
        say(f"== ATM reaches the host through a relay on 127.0.0.1:{atm_port}")
    say(f"== balance of {script.account} before: {money(before[script.account])}")

    device_config = DeviceConfig(
        port=atm_port,
        state_dir=work_dir / "device",
        **dict(script.device_config),
    )
    kit: DeviceKit | None = None
    if devices == "sim" and dispenser_model is None:
        atm_devices, customer = build_devices(device_config)
    else:
        urls = dict.fromkeys(KINDS, DEVICE_SETS[devices])
        if dispenser_model is not None:
            urls["dispenser"] = f"pty?model={dispenser_model}"
        kit = await open_kit(urls, device_config)
        for kind, url in kit.urls.items():
            if url != "sim":
                say(f"== {kind} on a serial simulator at {url}")
        assert kit.card_reader and kit.pin_pad and kit.dispenser
        atm_devices = kit.devices
        customer = Customer(
            kit.card_reader,
            kit.pin_pad,
            kit.dispenser,
            kit.simulators.get("printer"),
            notes=kit.notes,
        )
    for device_name, fault in script.faults:
        try:
            _device(customer, device_name).inject(fault)
        except ValueError as exc:
            # Some faults exist only on one device set (e.g. the simulated dispenser's hang).
            say(f"!! script needs fault {device_name} {fault}, not available here: {exc}")
            if relay is not None:
                await relay.close()
            if kit is not None:
                kit.close()
            await host.close()
            result = DemoResult(False, before[script.account], before[script.account])
            result.problems.append(f"fault {device_name} {fault} not available on {devices}")
            return result
        say(f"== fault injected: {device_name} {fault}")
    controller = AtmController(device_config, atm_devices)
    customer.world = _World(host, port, relay, controller, customer)
    result = DemoResult(False, before[script.account], before[script.account])
    result.balances_before = dict(before)
    driver = StepDriver(script.steps, customer, say)
    last: Screen | None = None

    def on_event(event: DeviceEvent) -> None:
        nonlocal last
        if isinstance(event, ScreenShown):
            screen = event.screen
            if screen != last:
                say(render_text(screen))
            fresh = screen != last and not screen.input_value
            last = screen
            result.screens.append(screen.id)
            driver.on_screen(screen.id, fresh=fresh)
        elif isinstance(event, LinkMessage):
            (link_say or say)(link_line(event))  # --link-log: elsewhere, or nowhere
        elif isinstance(event, ReceiptPrinted):
            result.receipts.append(list(event.lines))

    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(driver.finished.get(), timeout)
        if driver.failure is not None:
            say(f"!! script stopped: {driver.failure}")
        else:
            result.completed = True
            await _settle(controller, timeout)
    except TimeoutError:
        where = driver.steps[0].screen if driver.steps else "?"
        say(f"!! script stopped: still waiting for screen '{where}'")
    finally:
        driver.cancel()
        await stop_controller(controller, runner)
        result.journal = controller.journal.path.read_text().splitlines()
        result.balances_after = {number: host.balance(number) for number in accounts}
        result.balance_after = result.balances_after[script.account]
        if relay is not None:
            await relay.close()
        if kit is not None:
            kit.close()
        await host.close()
    _report(script, result, customer, controller, say)
    return result


async def _settle(controller: AtmController, timeout: float) -> None:
    """Give the store-and-forward queue the chance to deliver queued reversals."""
    pending = getattr(controller.link, "pending_reversals", None)
    if pending is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending() and loop.time() < deadline:
        await controller.link.ensure_online()
        if pending():
            await asyncio.sleep(0.05)


def _device(customer: Customer, name: str) -> Any:
    return {
        "reader": customer.card_reader,
        "pinpad": customer.pin_pad,
        "dispenser": customer.dispenser,
        "printer": customer.printer,
        "notes": customer.notes,
        "depository": customer.depository,
    }[name]


def _report(
    script: DemoScript,
    result: DemoResult,
    customer: Customer,
    controller: AtmController,
    say: _Printer,
) -> None:
    dispenser = customer.dispenser
    for receipt in result.receipts:
        say("== receipt")
        for line in receipt:
            say(f"   {line}")
    if not result.receipts:
        say("== no receipt printed")
    for number in script.changes:
        before, after = result.balances_before[number], result.balances_after[number]
        say(f"== balance of {number} before: {money(before)}")
        say(f"== balance of {number} after:  {money(after)}")
    counts = ", ".join(f"{money(c.denomination_cents)} x {c.count}" for c in dispenser.cassettes)
    say(f"== dispenser cassettes: {counts}")
    denominations = {i: c.denomination_cents for i, c in enumerate(dispenser.cassettes)}
    result.taken_cents = sum(denominations[i] * n for i, n in dispenser.taken_total.items())
    result.cards_retained = len(customer.card_reader.captured)
    say(
        f"== dispenser counters: taken by customers {money(result.taken_cents)}, "
        f"notes retracted {dispenser.retracted}"
    )
    for index, counters in sorted(controller.counters.cassettes.items()):
        say(
            f"== cassette {index} ({money(counters.denomination_cents)}): loaded "
            f"{counters.loaded}, dispensed {counters.dispensed}, rejected {counters.rejected}, "
            f"retracted {counters.retracted}, remaining {counters.remaining}"
        )
    say(f"== cards retained: {result.cards_retained}")
    _check(script, result)
    for problem in result.problems:
        say(f"!! {problem}")
    if result.ok:
        say("== outcome as expected")


def _check(script: DemoScript, result: DemoResult) -> None:
    problems = result.problems
    if not result.completed:
        return
    for number, change in script.changes.items():
        seen = result.balances_after[number] - result.balances_before[number]
        if seen != change:
            problems.append(f"expected a change of {change} cents on {number}, saw {seen}")
    journal = "\n".join(result.journal)
    for wanted in script.journal:
        if wanted not in journal:
            problems.append(f"journal has no line with {wanted!r}")
    if script.taken_cents is not None and result.taken_cents != script.taken_cents:
        problems.append(
            f"expected notes worth {script.taken_cents} cents taken, saw {result.taken_cents}"
        )
    if result.cards_retained != script.cards_retained:
        problems.append(
            f"expected {script.cards_retained} card(s) retained, saw {result.cards_retained}"
        )
    if script.receipts is not None and len(result.receipts) != script.receipts:
        problems.append(f"expected {script.receipts} receipt(s), saw {len(result.receipts)}")
