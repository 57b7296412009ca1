"""``atm fleet``: many ATMs in one process against one running host, for load tests. Each is a
real ``AtmController`` with simulated devices (no mechanical delays) and its own TCP
connection, signed on with its own working keys, and a customer playing the steps of a
built-in scenario (a complete card session with a PIN) over and over. Reports card sessions
per second, link latency (request sent to response received, as the controller sees it)
and this process's resident memory per terminal. Composition root: imports no host code
(``tests/test_architecture.py``). The host must know the terminals: ``atm db seed
--terminals N`` registers ATM00001..N.

The ATMs start in waves: at most ``--sign-on-concurrency`` of them are between starting and
their approved sign-on at any moment, and the next starts as soon as one is signed on. A host
bounds the connections that have not yet authenticated a message (``host.link.guard``: 64 by
default) and refuses the rest; 200 ATMs connecting at once met that bound and lost a reconnect
delay each to it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atm.devices import DeviceKit, open_kit
from atm.scenario.errors import ScenarioFileError
from atm.scenario.format import Step
from atm.scenario.loader import builtin_scenarios
from atm.steps import Customer, StepDriver
from device.config import LOCAL_HOSTS, DeviceConfig
from device.controller import AtmController
from device.errors import DeviceConfigError
from device.events import DeviceEvent, LinkMessage, ScreenShown
from device.states import State
from protocol.messages import NetworkCode

__all__ = ["SIGN_ON_CONCURRENCY", "FleetReport", "FleetTls", "register", "run_fleet"]

SIM = {"card-reader": "sim", "pin-pad": "sim", "dispenser": "sim", "printer": "sim"}

#: ATMs signing on at once by default: three quarters of the host's default bound on
#: connections not yet authenticated (64), leaving room for terminals outside the fleet. An
#: ATM holds its place from its start (devices, journal, recovery, all on this process's
#: event loop) to its approved sign-on. 200 ATMs against one host process on PostgreSQL, on
#: a busy 2-core machine: 48 at once signed all on in 11 s, none refused; 16 at once took 44 s;
#: all 200 at once took 17 s, 136 of them refused and signing on again.
SIGN_ON_CONCURRENCY = 48


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fleet",
        help="run N simulated ATMs in one process against a running host (load test)",
        description="Run N ATM controllers with simulated devices in this process, each "
        "playing a built-in scenario's steps (default balance-bob: card, PIN, balance, "
        "receipt, card back) over and over against one host; print sessions/s, link latency "
        "and memory. Register the terminals first: `atm db seed --terminals N`.",
    )
    parser.add_argument("--terminals", type=int, default=10, help="how many ATMs (ATM00001..)")
    parser.add_argument("--host", default="127.0.0.1", help="the host's address (127.0.0.1)")
    parser.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        default=[],
        help="allow connecting to NAME as well as localhost (repeatable); --host must be one: "
        "the same guard as `atm device`, so a load test never reaches a host by mistake",
    )
    parser.add_argument("--port", type=int, default=8583)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--script", default="balance-bob", help="the demo script to repeat")
    parser.add_argument(
        "--sign-on-concurrency",
        type=int,
        default=SIGN_ON_CONCURRENCY,
        metavar="N",
        help=f"at most N ATMs signing on at once (default {SIGN_ON_CONCURRENCY}); keep it "
        "below the host's bound on connections not yet authenticated (64 by default), else the "
        "host refuses the excess and they sign on again after a reconnect delay",
    )
    tls = parser.add_argument_group(
        "TLS on the host link (see `atm certs dev`; without --tls-ca the link is plaintext)"
    )
    tls.add_argument(
        "--tls-ca", metavar="FILE", help="CA file the host's certificate must chain to"
    )
    tls.add_argument(
        "--tls-certs",
        metavar="DIR",
        help="mutual TLS: each ATM presents DIR/terminal-ID.pem with DIR/terminal-ID-key.pem "
        "(the layout `atm certs dev --dir DIR --terminal ...` writes)",
    )
    tls.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="name the host's certificate must carry (default: --host)",
    )
    parser.set_defaults(func=_run)


@dataclasses.dataclass(frozen=True)
class FleetTls:
    """TLS for every ATM of the fleet: the host's CA, and for mutual TLS the directory of
    terminal certificates (``atm.certs.DevPki`` names: terminal-ID.pem, terminal-ID-key.pem)."""

    ca: str
    cert_dir: Path | None = None
    server_name: str | None = None

    def settings(self, terminal_id: str) -> dict[str, Any]:
        """The ``DeviceConfig`` TLS fields of one terminal."""
        fields: dict[str, Any] = {"tls_ca": self.ca, "tls_server_name": self.server_name}
        if self.cert_dir is not None:
            # Here, not at the top: atm.certs loads cryptography's serialization, which pulls
            # in bcrypt, and a fleet without TLS stays free of host-side modules.
            from atm.certs import DevPki

            pki = DevPki(self.cert_dir, (terminal_id,))
            fields["tls_cert"] = str(pki.terminal_cert(terminal_id))
            fields["tls_key"] = str(pki.terminal_key(terminal_id))
        return fields


@dataclasses.dataclass(frozen=True)
class FleetReport:
    terminals: int
    seconds: float
    sessions: int
    latencies: list[float]
    rss_kb_before: int
    rss_kb_after: int
    # From the first ATM's start to the last one's approved sign-on, and how many sign-on
    # requests (0800, 70=001) went out beyond one per ATM (a refused connection, a timeout).
    sign_on_seconds: float = 0.0
    sign_on_repeats: int = 0

    @property
    def sessions_per_second(self) -> float:
        return self.sessions / self.seconds

    @property
    def kb_per_terminal(self) -> float:
        return (self.rss_kb_after - self.rss_kb_before) / self.terminals

    def lines(self) -> list[str]:
        ordered = sorted(self.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
        return [
            f"terminals: {self.terminals}; sessions: {self.sessions} in {self.seconds:.1f} s "
            f"= {self.sessions_per_second:.1f} sessions/s",
            f"link latency: {len(self.latencies)} requests, "
            f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms",
            f"resident memory: {self.rss_kb_after} KB, {self.kb_per_terminal:.0f} KB per terminal",
            f"sign-on: all {self.terminals} in {self.sign_on_seconds:.1f} s, "
            f"{self.sign_on_repeats} sign-on requests repeated",
        ]


def rss_kb() -> int:
    """This process's resident set size, KB (Linux /proc; 0 elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Atm:
    """One ATM of the fleet: controller, simulated devices, a customer playing the script."""

    def __init__(self, kit: DeviceKit, config: DeviceConfig, steps: tuple[Step, ...]) -> None:
        assert kit.card_reader and kit.pin_pad and kit.dispenser
        self.kit = kit
        self.controller = AtmController(config, kit.devices)
        customer = Customer(kit.card_reader, kit.pin_pad, kit.dispenser, notes=kit.notes)
        self.driver = StepDriver(steps, customer, lambda _: None, repeat=0)
        self.latencies: list[float] = []
        self.sign_ons = 0  # sign-on requests sent (0800, 70=001)
        self._sent: dict[str, float] = {}
        self.controller.events.subscribe(self._on_event)
        self.task: asyncio.Task[None] | None = None

    def _on_event(self, event: DeviceEvent) -> None:
        if isinstance(event, ScreenShown):
            self.driver.on_screen(event.screen.id)
        elif isinstance(event, LinkMessage):
            key = event.message.get("11", "") + event.message.get("t", "")[:2]
            if event.direction == "send":
                self._sent[key] = time.perf_counter()
                if event.message.get("70") == NetworkCode.SIGN_ON:
                    self.sign_ons += 1
            elif (started := self._sent.pop(key, None)) is not None:
                self.latencies.append(time.perf_counter() - started)

    async def start(self, gate: asyncio.Semaphore) -> None:
        """Start the controller once ``gate`` lets it, and hold the gate until the sign-on is
        approved (the machine enters idle) or the controller ends."""
        async with gate:
            signed_on = asyncio.ensure_future(self.controller.wait_for_state(State.idle))
            self.task = asyncio.create_task(self.controller.run())
            try:
                await asyncio.wait({signed_on, self.task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                signed_on.cancel()

    async def stop(self) -> None:
        self.driver.cancel()
        # transitions 0.9.3 swallows a CancelledError inside a trigger: cancel until done.
        while self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=0.1)
        self.kit.close()


async def run_fleet(
    terminals: int,
    host: str,
    port: int,
    seconds: float,
    script: str,
    state_dir: Path,
    *,
    sessions_each: int | None = None,
    when_running: Callable[[], object] | None = None,
    tls: FleetTls | None = None,
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS,
    sign_on_concurrency: int = SIGN_ON_CONCURRENCY,
) -> FleetReport:
    """Start ``terminals`` ATMs (ATM00001..), let them run their sessions for ``seconds``, or
    until each has run ``sessions_each`` more when that is given (counting starts once every
    one has finished its first session: sign-on and first bcrypt are not counted), then stop
    them all. ``when_running`` is called once every terminal is signed on and has run a
    session (a benchmark measures the host's memory then). ``tls``: every ATM's link over TLS
    (``DeviceConfigError`` when a certificate does not load). ``allowed_hosts``: the
    terminals' allow-list (``host`` must be on it, else ``DeviceConfigError``).
    ``sign_on_concurrency``: at most that many ATMs between their start and an approved
    sign-on at a time (``ValueError`` below 1)."""
    if sign_on_concurrency < 1:
        raise ValueError("sign_on_concurrency must be at least 1")
    before = rss_kb()
    steps = builtin_scenarios()[script].steps
    configs = []
    for n in range(1, terminals + 1):
        terminal_id = f"ATM{n:05d}"
        config = DeviceConfig(
            terminal_id=terminal_id,
            host=host,
            port=port,
            state_dir=state_dir / terminal_id,
            allowed_hosts=allowed_hosts,
            **(tls.settings(terminal_id) if tls is not None else {}),
        )
        config.tls_context()  # every certificate loads before any ATM starts
        configs.append(config)
    atms = [_Atm(await open_kit(SIM, config), config, steps) for config in configs]
    gate = asyncio.Semaphore(sign_on_concurrency)
    starts: list[asyncio.Task[None]] = []
    try:
        starting = time.perf_counter()
        starts = [asyncio.create_task(atm.start(gate)) for atm in atms]
        await asyncio.gather(*starts)
        sign_on_seconds = time.perf_counter() - starting
        await asyncio.gather(*(atm.driver.finished.get() for atm in atms))
        for atm in atms:
            atm.latencies.clear()
        if when_running is not None:
            when_running()
        start_runs = [atm.driver.runs for atm in atms]
        first = sum(start_runs)
        started = time.perf_counter()
        if sessions_each is None:
            await asyncio.sleep(seconds)  # the measuring window
        else:
            targets = [runs + sessions_each for runs in start_runs]
            await asyncio.gather(
                *(_runs_reach(atm, n) for atm, n in zip(atms, targets, strict=True))
            )
        elapsed = time.perf_counter() - started
        sessions = sum(atm.driver.runs for atm in atms) - first
        after = rss_kb()
        latencies = [x for atm in atms for x in atm.latencies]
    finally:
        for start in starts:
            start.cancel()
        for atm in atms:
            await atm.stop()
    repeats = sum(atm.sign_ons for atm in atms) - terminals
    return FleetReport(
        terminals, elapsed, sessions, latencies, before, after, sign_on_seconds, max(repeats, 0)
    )


async def _runs_reach(atm: _Atm, runs: int) -> None:
    while atm.driver.runs < runs:
        await atm.driver.finished.get()


def _run(args: argparse.Namespace) -> int:
    if args.terminals < 1 or args.terminals > 99_999:
        print("atm fleet: --terminals is 1 to 99999", file=sys.stderr)
        return 2
    try:
        known = builtin_scenarios()
    except ScenarioFileError as exc:
        print(f"atm fleet: {exc}", file=sys.stderr)
        return 2
    if args.script not in known:
        print(
            f"atm fleet: unknown script {args.script!r}; known: {', '.join(known)}", file=sys.stderr
        )
        return 2
    if args.sign_on_concurrency < 1:
        print("atm fleet: --sign-on-concurrency is at least 1", file=sys.stderr)
        return 2
    if (args.tls_certs or args.tls_server_name) and not args.tls_ca:
        print("atm fleet: --tls-certs and --tls-server-name need --tls-ca", file=sys.stderr)
        return 2
    allowed = LOCAL_HOSTS + tuple(args.allow_host)
    if args.host not in allowed:
        print(
            f"atm fleet: host {args.host!r} is not on the allow-list ({', '.join(allowed)}); "
            f"allow it deliberately with --allow-host {args.host}",
            file=sys.stderr,
        )
        return 2
    tls = None
    if args.tls_ca:
        tls = FleetTls(
            args.tls_ca, Path(args.tls_certs) if args.tls_certs else None, args.tls_server_name
        )
    # Stopping a controller in the middle of a trigger is expected here; transitions logs it.
    logging.getLogger("transitions").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="atm-fleet-") as state:
        try:
            fleet = run_fleet(
                args.terminals, args.host, args.port, args.seconds, args.script, Path(state),
                tls=tls, allowed_hosts=allowed, sign_on_concurrency=args.sign_on_concurrency,
            )  # fmt: skip
            report = asyncio.run(fleet)
        except DeviceConfigError as exc:
            print(f"atm fleet: {exc}", file=sys.stderr)
            return 2
    for line in report.lines():
        print(line, flush=True)
    print(f"pid {os.getpid()}", flush=True)
    return 0 if report.sessions > 0 else 1
