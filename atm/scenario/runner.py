"""Run one scenario end to end: a fresh host (the ``atm host`` server: ``host.app.Host``) on
embedded SQLite (or ``--database-url``) listening on a real TCP port, one ATM controller with
simulated devices (in-process backends, or the serial simulators on pseudo-terminals), a
relay between them when the scenario injects link faults, and the customer and operator
acting on the devices as the steps say. Afterwards the expectations and the invariants
(``atm.scenario.invariants``) are checked; ``ScenarioResult.problems`` lists what failed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import func, select

from atm.database import display_url
from atm.devices import (
    DEVICE_SETS,
    KINDS,
    CardSlot,
    CashSlot,
    Faultable,
    Keypad,
    NoteSlot,
    open_kit,
)
from atm.scenario.atmproc import AtmProcess, config_to_json, physical_devices
from atm.scenario.format import HOST_CRASHES, SEED_PINS, TRACKS, FaultSpec, Scenario, Step
from atm.scenario.hostproc import HostProcess
from atm.scenario.invariants import Evidence, HostSnapshot, check_invariants, snapshot_host
from atm.scenario.patience import CustomerPatience, answer_timeout
from atm.scenario.relay import LinkRelay
from device.config import TEST_CARD_RANGES, CassetteConfig, DeviceConfig
from device.controller import AtmController, Devices
from device.events import DeviceEvent, LinkMessage, ReceiptPrinted, ScreenShown
from device.journal import Journal
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
from host.bank.ledger import post
from host.bank.models import Account, Card, CardAccount, Customer, LinkRequest, Posting
from host.bank.pins import hash_pin
from host.bank.seed import EQUITY_ACCOUNT
from host.config import HostConfig
from host.link.models import ReversalAdvice
from protocol.display import describe
from protocol.messages import Message
from protocol.security import KeyScheme

__all__ = [
    "Agent",
    "Observed",
    "ScenarioResult",
    "SharedHost",
    "run_scenario",
    "scenario_host_config",
    "sqlite_template",
]

log = logging.getLogger(__name__)

ACCOUNT_TYPES = {"checking": "20", "savings": "10"}


@dataclass
class Observed:
    """What happened, as a person (or auditor) would see it."""

    completed: bool = False
    screens: list[str] = field(default_factory=list)
    receipts: list[list[str]] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    response_codes: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    balances_before: dict[str, int] = field(default_factory=dict)
    balances_after: dict[str, int] = field(default_factory=dict)
    # The host's last STAN from this terminal when its database was reused: the ATM's STANs
    # go on from there, and the expectations' ``stan=`` count from it.
    stan_base: int = 0
    taken_cents: int = 0
    retracted_notes: int = 0
    cards_retained: int = 0
    waiting_for: str = ""
    available_before: dict[str, int] = field(default_factory=dict)
    available_after: dict[str, int] = field(default_factory=dict)
    held_after: dict[str, int] = field(default_factory=dict)
    stacked_cents: int = 0  # notes the bill acceptor stacked during the scenario
    returned_cents: int = 0  # notes the bill acceptor gave back that the customer took


@dataclass
class ScenarioResult:
    scenario: Scenario
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    observed: Observed = field(default_factory=Observed)
    evidence: Evidence | None = None

    @property
    def ok(self) -> bool:
        return self.observed.completed and not self.problems


def scenario_host_config(environ: dict[str, str] | None = None) -> HostConfig:
    """The host's settings for scenarios: the environment's, with a cheap bcrypt cost and
    the testing environment unless the environment says otherwise."""
    env = {"BCRYPT_ROUNDS": "4", "ENVIRONMENT": "testing", **(environ or {})}
    return HostConfig.from_env(env)


class _Say:
    def __init__(self, out: TextIO | None, keep: list[str]) -> None:
        self.out, self.keep = out, keep

    def __call__(self, text: str = "") -> None:
        self.keep.append(text)
        if self.out is not None:
            print(text, file=self.out, flush=True)


class _LogTap(logging.Handler):
    def __init__(self, keep: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.keep = keep

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.keep.append(self.format(record))


_TEMPLATES: dict[tuple[str, str, int], Path] = {}
_TEMPLATE_LOCK = threading.Lock()


def sqlite_template(config: HostConfig) -> Path:
    """A migrated and seeded SQLite database for this process, made once per pepper and
    bcrypt cost (the seeded PIN hashes depend on them) and removed when the process ends."""
    key = (config.pin_pepper, config.secret_key, config.bcrypt_rounds)
    with _TEMPLATE_LOCK:
        if key not in _TEMPLATES:
            folder = Path(tempfile.mkdtemp(prefix="atm-scn-template-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "template.db"
            host = Host(replace(config, database_url=f"sqlite:///{path}"))
            try:
                host.upgrade_and_seed()
            finally:
                host.executor.shutdown(wait=True)
                host.pins.close()
                host.engine.dispose()
            _TEMPLATES[key] = path
        return _TEMPLATES[key]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_sim_devices(config: DeviceConfig) -> Devices:
    return Devices(
        SimulatedCardReader(),
        SimulatedPinPad(config.master_key, config.key_scheme),
        SimulatedDispenser([Cassette(c.denomination_cents, c.count) for c in config.cassettes]),
        SimulatedPrinter(),
        SimulatedBillAcceptor(),
        SimulatedDepository(),
    )


@dataclass
class _Atm:
    """One ATM: its controller and the customer side of its devices."""

    controller: AtmController
    reader: CardSlot
    pin_pad: Keypad
    dispenser: CashSlot
    printer: Faultable | None
    loaded: dict[int, tuple[int, int]]  # cassette -> (denomination, notes ever loaded)
    notes: NoteSlot | None = None
    depository: Any = None
    # Notes the customer pushed in while the acceptor had a jam fault: they stuck in the
    # entrance before being counted (the physical side of a NOTE_JAM).
    jammed_at_entry: list[int] = field(default_factory=list)
    returned_taken: list[int] = field(default_factory=list)

    def device(self, name: str) -> Faultable:
        found: Faultable | None = {
            "reader": self.reader,
            "pinpad": self.pin_pad,
            "dispenser": self.dispenser,
            "printer": self.printer,
            "acceptor": self.notes,
            "depository": self.depository,
        }[name]
        if found is None:
            raise ValueError(f"no {name} on this device set")
        return found

    def insert_notes(self, notes: tuple[int, ...]) -> None:
        if self.notes is None:
            raise ValueError("no bill acceptor on this device set")
        for cents in notes:
            if "jam" in getattr(self.notes, "faults", ()):
                self.jammed_at_entry.append(cents)
            self.notes.insert_note(cents)

    def take_notes(self) -> None:
        if self.notes is None:
            raise ValueError("no bill acceptor on this device set")
        self.returned_taken += self.notes.take_returned()

    def insert_envelope(self) -> None:
        if self.depository is None:
            raise ValueError("no envelope depository on this device set")
        self.depository.insert_envelope()


class _World:
    """The host, the link and the operator, as steps act on them."""

    def __init__(
        self,
        host: Host,
        port: int,
        relay: LinkRelay | None,
        atm: _Atm,
        process: HostProcess | None = None,
        *,
        host_down: bool = False,
    ) -> None:
        self.host, self.port, self.relay, self.atm = host, port, relay, atm
        self.process = process
        self.host_down = host_down  # stopped by ``host: down`` (or not started yet)

    def answer_at_risk(self, request: Message) -> bool:
        """May the scenario lose (or delay) the answer to ``request``, sent now? Then the
        ATM's configured response timeout is what the scenario tests (atm.scenario.patience)."""
        if self.host_down or (self.process is not None and not self.process.answering):
            return True
        return self.relay is not None and self.relay.may_lose_answer(request)

    async def act(self, step: Step) -> None:
        atm = self.atm
        if step.clear is not None:
            atm.device(step.clear.device).clear(step.clear.fault)
        if step.fault is not None:
            _inject(atm.device(step.fault.device), step.fault)
        if step.host == "down":
            self.host_down = True
            await self.host.server.close()
        elif step.host == "up":
            await self.host.server.start("127.0.0.1", self.port)
            self.host_down = False
        elif step.host == "kill":
            assert self.process is not None
            if self.relay is not None and not self.relay.faults.replies_open.is_set():
                # Kill after the host answered (posted, response sent, not yet delivered).
                await asyncio.wait_for(self.relay.reply_waiting.wait(), 10)
            await self.process.kill()
        elif step.host in HOST_CRASHES:
            assert self.process is not None
            self.process.arm(step.host.removeprefix("crash-"))
        elif step.host == "restart":
            assert self.process is not None
            if self.process.armed:
                await self.process.crashed(15)
            await self.process.start()
        if step.link is not None:
            assert self.relay is not None
            self.relay.apply(step.link, step.link_delay)
        if step.operator is not None:
            await self._operator(step.operator)
        if step.pause:
            await asyncio.sleep(step.pause)
        if step.insert is not None:
            atm.reader.insert(step.insert)
        if step.type is not None:
            atm.pin_pad.type_digits(step.type)
            atm.pin_pad.press(step.then)
        if step.notes:
            atm.insert_notes(step.notes)
        if step.envelope:
            atm.insert_envelope()
        if step.press:
            atm.pin_pad.press(*step.press)
        if step.take == "cash":
            atm.dispenser.take_cash()
        elif step.take == "card":
            atm.reader.take_card()
        elif step.take == "notes":
            atm.take_notes()

    async def _operator(self, what: str) -> None:
        atm = self.atm
        if what == "supervisor":
            atm.controller.enter_supervisor()
        elif what == "free_card":
            atm.reader.clear("card_jam")
            atm.controller.enter_supervisor()
        elif what == "repair_dispenser":
            atm.dispenser.clear()
            atm.controller.enter_supervisor()
        elif what == "repair":
            devices = (atm.reader, atm.pin_pad, atm.dispenser, atm.printer, atm.notes)
            for device in (*devices, atm.depository):
                if device is not None:
                    device.clear()
            atm.controller.enter_supervisor()
        elif what == "replenish":
            cassettes: Any = getattr(atm.dispenser, "cassettes", [])
            for index, (cassette, loaded) in enumerate(
                zip(cassettes, atm.controller.config.cassettes, strict=False)
            ):
                denomination, ever = atm.loaded[index]
                atm.loaded[index] = (denomination, ever + loaded.count - cassette.count)
                cassette.count = loaded.count
            atm.pin_pad.press("F1")


def _inject(device: Faultable, fault: FaultSpec) -> None:
    if fault.arg is None:
        device.inject(fault.fault)
    else:
        # Only the serial simulators' faults take an argument (seconds of delay, a count).
        inject: Callable[..., None] = device.inject
        inject(fault.fault, fault.arg)


async def run_scenario(
    scenario: Scenario,
    *,
    host_config: HostConfig | None = None,
    database_url: str | None = None,
    work_dir: Path | None = None,
    out: TextIO | None = None,
    timeout: float = 30.0,
    devices: str | None = None,
    controller_factory: Callable[[DeviceConfig, Devices], AtmController] = AtmController,
    shared: SharedHost | None = None,
    agent: Agent | None = None,
    dispenser_model: str | None = None,
    link_say: Callable[[str], None] | None = None,
) -> ScenarioResult:
    """Run ``scenario``; ``out`` gets the demo's narration (screens, messages, receipts).
    ``host_config`` gives the host's settings; its database is a fresh SQLite file in
    ``work_dir`` unless ``database_url`` names one. ``link_say``, when given, gets the
    decoded host-link lines instead of ``out`` (``--link-log``)."""
    started = time.monotonic()
    result = ScenarioResult(scenario)
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atm-scn-")))
        work_dir.mkdir(parents=True, exist_ok=True)
        base = host_config or scenario_host_config()
        # A fresh embedded database per scenario unless one is named.
        base = replace(base, database_url=database_url or f"sqlite:///{work_dir / 'host.db'}")
        tap = _LogTap(result.observed.logs)
        tap.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        old_level = root.level
        # The tap hears INFO and above; the handlers already there keep their threshold.
        quieted = [(h, h.level) for h in root.handlers]
        for handler, level in quieted:
            handler.setLevel(max(level, old_level))
        root.addHandler(tap)
        root.setLevel(min(old_level or logging.WARNING, logging.INFO))
        try:
            await _run(
                scenario,
                base,
                work_dir,
                result,
                out,
                timeout,
                devices or scenario.setup.devices,
                controller_factory,
                shared,
                agent,
                dispenser_model,
                link_say,
            )
        finally:
            root.removeHandler(tap)
            root.setLevel(old_level)
            for handler, level in quieted:
                handler.setLevel(level)
    result.seconds = time.monotonic() - started
    return result


async def _run(
    scenario: Scenario,
    config: HostConfig,
    work_dir: Path,
    result: ScenarioResult,
    out: TextIO | None,
    timeout: float,
    devices: str,
    controller_factory: Callable[[DeviceConfig, Devices], AtmController],
    shared: SharedHost | None = None,
    agent: Agent | None = None,
    dispenser_model: str | None = None,
    link_say: Callable[[str], None] | None = None,
) -> None:
    seen = result.observed
    say = _Say(out, seen.output)
    setup = scenario.setup
    say(f"== scenario '{scenario.name}': {scenario.description}")
    scheme = KeyScheme(setup.key_scheme)
    host_settings: dict[str, Any] = dict(setup.host)
    # The production-safety guards (ATM and host) accept only test card ranges: a scenario's
    # own cards (any PAN) are test cards too.
    own = [track.split("=")[0][:6] for track in scenario.tracks().values()]
    own += [s.insert.split("=")[0][:6] for s in scenario.steps if s.insert]
    ranges = tuple(dict.fromkeys([*TEST_CARD_RANGES, *config.accepted_card_ranges, *own]))
    config = replace(config, **host_settings, accepted_card_ranges=ranges)
    if scheme is not config.link.scheme(setup.terminal_id):
        say(f"== host: terminal {setup.terminal_id} uses key scheme {scheme.value} ({scheme.name})")
        schemes = {**config.link.schemes, setup.terminal_id: scheme}
        config = replace(config, link=replace(config.link, schemes=schemes))
    process: HostProcess | None = None
    before: HostSnapshot | None = None
    watched = sorted({*scenario.expect.balance_changes, *_card_accounts(scenario)})
    fresh = False
    if shared is not None:
        host, port = shared.host, shared.port
    else:
        fresh = config.database_url == f"sqlite:///{work_dir / 'host.db'}"
        if fresh:
            # Migrating a new SQLite file takes seconds; copy a migrated, seeded one instead.
            template = await asyncio.to_thread(sqlite_template, config)
            shutil.copyfile(template, work_dir / "host.db")
        host = Host(config)
        say(f"== host database {display_url(config.database_url)}")
        await asyncio.to_thread(host.upgrade_and_seed)
        await asyncio.to_thread(apply_setup, host, scenario, config)
        before = await asyncio.to_thread(snapshot_host, host)
        seen.balances_before = {n: before.balances[n] for n in watched if n in before.balances}
        seen.available_before = {n: before.available(n) for n in seen.balances_before}
        port = _free_port() if setup.host_down_at_start or scenario.host_process else 0
        if scenario.host_process:
            process = HostProcess(
                _host_env(config, setup.host),
                port,
                work_dir / "host.log",
                crash_file=work_dir / "host-crash" if scenario.host_crash else None,
            )
            await process.start()
            say(
                f"== host process (atm host, pid {process.process and process.process.pid}) "
                f"listening on 127.0.0.1:{port}"
            )
        elif setup.host_down_at_start:
            say(f"== host NOT started yet (ATM will look for it on 127.0.0.1:{port})")
        else:
            port = await host.start("127.0.0.1", 0)
            say(f"== host listening on 127.0.0.1:{port}")
    relay = LinkRelay("127.0.0.1", port) if scenario.via_relay or agent else None
    atm_port = await relay.start() if relay else port
    if relay:
        say(f"== ATM reaches the host through a fault-injecting relay on 127.0.0.1:{atm_port}")
    overrides: dict[str, Any] = dict(setup.device)
    if setup.cassettes:
        overrides["cassettes"] = tuple(
            CassetteConfig(c.denomination_cents, c.count) for c in setup.cassettes
        )
    overrides.setdefault("card_ranges", ranges)
    device_config = DeviceConfig(
        terminal_id=setup.terminal_id,
        key_scheme=scheme,
        port=atm_port,
        state_dir=work_dir / "device",
        **overrides,
    )
    if shared is None and not fresh:
        # A database that outlives this run (--database-url): this terminal's STANs go on
        # from the host's records, as a real terminal's do. A fresh journal would start again
        # at 000001, and the same STAN within the same second is (rightly) answered as a
        # repeat of the earlier request.
        last = await asyncio.to_thread(_last_host_stan, host, setup.terminal_id)
        if last:
            journal = Journal(device_config.journal_path, setup.terminal_id)
            journal.write("STAN_CONTINUED", stan=f"{last:06d}", why="host database reused")
            journal.close()
            seen.stan_base = last
    kit = None
    child: AtmProcess | None = None
    try:
        if scenario.atm_process:
            # Physical device state in files, so that it outlives the killed ATM process.
            device_config = replace(device_config, sim_state_dir=work_dir / "physical")
            child = AtmProcess(
                scenario.path,
                config_to_json(device_config, dict(setup.device)),
                work_dir / "atm-process.log",
            )
            say("== ATM process (python -m atm.scenario.atmproc) plays the steps to the restart")
            problem = await child.run_until_killed(timeout)
            for line in child.log_lines():
                seen.output.append(f"   (ATM process) {line}")
            if problem:
                result.problems.append(problem)
                return
            say(
                "== the ATM process was SIGKILLed; the ATM starts again on the same journal, "
                "counters and device state files"
            )
        if devices == "sim" and dispenser_model is None:
            if scenario.atm_process:
                atm_devices, _ = physical_devices(device_config)
            else:
                atm_devices = build_sim_devices(device_config)
            reader: Any = atm_devices.card_reader
            pin_pad: Any = atm_devices.pin_pad
            dispenser: Any = atm_devices.dispenser
            printer: Any = atm_devices.printer
            notes: Any = atm_devices.bill_acceptor
            depository: Any = atm_devices.depository
        else:
            urls = dict.fromkeys(KINDS, DEVICE_SETS[devices])
            if dispenser_model is not None:
                # That Puloon model's simulator on a pseudo-terminal, behind its driver.
                urls["dispenser"] = f"pty?model={dispenser_model}"
            kit = await open_kit(urls, device_config)
            for kind, url in kit.urls.items():
                if url != "sim":
                    say(f"== {kind} on a serial simulator at {url}")
            assert kit.card_reader and kit.pin_pad and kit.dispenser
            atm_devices = kit.devices
            reader, pin_pad, dispenser = kit.card_reader, kit.pin_pad, kit.dispenser
            printer = kit.simulators.get("printer")
            notes, depository = kit.notes, None
        loaded = {i: (c.denomination_cents, c.count) for i, c in enumerate(device_config.cassettes)}
        controller = controller_factory(device_config, atm_devices)
        atm = _Atm(controller, reader, pin_pad, dispenser, printer, loaded, notes, depository)
        for fault in scenario.faults:
            _inject(atm.device(fault.device), fault)
            say(f"== fault injected: {fault}")
        world = _World(host, port, relay, atm, process, host_down=setup.host_down_at_start)
        if scenario.atm_process:
            # The restarted ATM plays the steps after the restart step (none: it ends as soon
            # as recovery is done and it shows its welcome screen).
            after_restart = replace(scenario, steps=scenario.steps[scenario.restart_index + 1 :])
            agent = agent or _Script(after_restart)
        await _drive(agent or _Script(scenario), controller, world, seen, say, timeout, link_say)
        seen.journal = controller.journal.path.read_text().splitlines()
        after: HostSnapshot = await asyncio.to_thread(snapshot_host, host)
        seen.balances_after = {n: after.balances[n] for n in watched if n in after.balances}
        seen.available_after = {n: after.available(n) for n in seen.balances_after}
        seen.held_after = {n: after.held.get(n, 0) for n in seen.balances_after}
        stacker: dict[int, int] = dict(getattr(notes, "stacker", None) or {})
        seen.stacked_cents = sum(cents * count for cents, count in stacker.items())
        seen.returned_cents = sum(atm.returned_taken)
        denominations = {i: d for i, (d, _) in loaded.items()}
        seen.taken_cents = sum(denominations[i] * n for i, n in dispenser.taken_total.items())
        seen.retracted_notes = dispenser.retracted
        seen.cards_retained = len(reader.captured)
        _report(scenario, seen, controller, dispenser, say)
        result.problems.extend(check_expectations(scenario, seen))
        if seen.completed:
            evidence = Evidence(
                terminal_id=setup.terminal_id,
                journal=seen.journal,
                loaded=dict(atm.loaded),
                remaining={i: c.count for i, c in enumerate(getattr(dispenser, "cassettes", []))},
                taken=dict(dispenser.taken_total),
                in_tray=_in_tray(dispenser),
                rejected=dict(getattr(dispenser, "reject_bin", None) or {}),
                retracted=dispenser.retracted,
                counters={i: replace(c) for i, c in controller.counters.cassettes.items()},
                pending_reversals=_pending(controller),
                counts_reported=not any(
                    f.device == "dispenser" and f.fault == "cassette_empty" for f in scenario.faults
                ),
                texts={
                    "journal": seen.journal,
                    "log": seen.logs,
                    "receipt": [line for receipt in seen.receipts for line in receipt],
                    "output": seen.output,
                    "host process log": process.log_lines() if process else [],
                    "ATM process output": child.log_lines() if child else [],
                },
                secrets=_secrets(scenario, device_config),
                stacker=stacker,
                jammed=list(getattr(notes, "jammed", None) or []),
                jammed_at_entry=list(atm.jammed_at_entry),
            )
            result.evidence = evidence
            if before is not None:
                policy = host.service.hold_policy
                result.problems.extend(check_invariants(before, after, [evidence], host, policy))
    finally:
        if process is not None:
            await process.stop()
        if relay is not None:
            await relay.close()
        if kit is not None:
            kit.close()
        if shared is None:
            await host.close()
    for problem in result.problems:
        say(f"!! {problem}")
    if result.ok:
        say("== outcome as expected; invariants hold")


def _host_env(config: HostConfig, settings: dict[str, Any]) -> dict[str, str]:
    """The environment of an ``atm host`` process with this scenario's settings."""
    env = {
        "DATABASE_URL": config.database_url,
        "BCRYPT_ROUNDS": str(config.bcrypt_rounds),
        "ENVIRONMENT": config.environment.value,
        "SECRET_KEY": config.secret_key,
        "PIN_PEPPER": config.pin_pepper,
        "LOG_LEVEL": "INFO",
        "ACCEPTED_CARD_RANGES": ",".join(config.accepted_card_ranges),
    }
    schemes = ",".join(f"{t}={s.value}" for t, s in config.link.schemes.items())
    if schemes:
        env["TERMINAL_KEY_SCHEMES"] = schemes
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


def _in_tray(dispenser: Any) -> dict[int, int]:
    tray = getattr(dispenser, "tray", None)
    if tray is None:
        tray = getattr(dispenser, "presented", {})
    return {i: n for i, n in dict(tray).items() if n}


def _pending(controller: AtmController) -> int:
    pending = getattr(controller.link, "pending_reversals", None)
    return int(pending()) if pending is not None else 0


def _card_accounts(scenario: Scenario) -> list[str]:
    return [a.number for card in scenario.setup.cards for a in card.accounts]


def _secrets(scenario: Scenario, config: DeviceConfig) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = [("terminal master key", config.terminal_master_key)]
    for name, track in scenario.tracks().items():
        pan = track.split("=")[0]
        found.append((f"PAN of card {name}", pan))
        found.append((f"track 2 of card {name}", track))
    for step in scenario.steps:
        if step.insert and "=" in step.insert:
            found.append(("PAN of an inserted card", step.insert.split("=")[0]))
    return found


def pins_of(scenario: Scenario) -> dict[str, str]:
    return {**SEED_PINS, **{card.name: card.pin for card in scenario.setup.cards}}


class Agent(Protocol):
    """Who acts at the ATM: for each new screen, the step to take (or None to wait)."""

    def step_for(self, screen: Screen) -> Step | None: ...

    @property
    def finished(self) -> bool: ...

    @property
    def waiting_for(self) -> str: ...


class _Script:
    """The scenario's steps, in order: each waits for its screen."""

    def __init__(self, scenario: Scenario) -> None:
        self.steps = list(scenario.steps)

    def step_for(self, screen: Screen) -> Step | None:
        if self.steps and screen.id == self.steps[0].screen:
            return self.steps.pop(0)
        return None

    @property
    def finished(self) -> bool:
        return not self.steps

    @property
    def waiting_for(self) -> str:
        if self.steps:
            return f"screen '{self.steps[0].screen}' (step at line {self.steps[0].line})"
        return "screen 'welcome' (after the last step)"


@dataclass(frozen=True)
class SharedHost:
    """A host several ATMs use at once (``atm scenario fuzz --terminals K``)."""

    host: Host
    port: int


async def _drive(
    agent: Agent,
    controller: AtmController,
    world: _World,
    seen: Observed,
    say: _Say,
    timeout: float,
    link_say: Callable[[str], None] | None = None,
) -> None:
    done = asyncio.Event()
    last: Screen | None = None
    actions: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    async def act(step: Step) -> None:
        try:
            await world.act(step)
        except Exception as exc:  # a step that cannot act ends the scenario with the reason
            failures.append(exc)
            done.set()

    def on_event(event: DeviceEvent) -> None:
        nonlocal last
        if isinstance(event, ScreenShown):
            screen = event.screen
            fresh = screen != last and not screen.input_value
            if screen != last:
                say(render_text(screen))
            last = screen
            seen.screens.append(screen.id)
            step = agent.step_for(screen) if fresh and not agent.finished else None
            if fresh:
                # Before the activity that showed the screen asks how long to wait.
                patience.on_screen(step)
            if step is not None:
                say(f"   [{step.describe()}]")
                task = asyncio.get_running_loop().create_task(act(step))
                actions.add(task)
                task.add_done_callback(actions.discard)
            elif agent.finished and screen.id == "welcome":
                done.set()
        elif isinstance(event, LinkMessage):
            arrow = "ATM -> HOST" if event.direction == "send" else "HOST -> ATM"
            line = f"-- {arrow}  {describe(event.message)}"
            if link_say is None:
                say(line)
            else:  # --link-log: elsewhere, or nowhere; still kept in the output
                seen.output.append(line)
                link_say(line)
            mti = str(event.message.get("t", ""))
            if event.direction != "send" and mti in {"0110", "0210"}:
                seen.response_codes.append(str(event.message.get("39", "")))
        elif isinstance(event, ReceiptPrinted):
            seen.receipts.append(list(event.lines))

    patience = CustomerPatience()
    controller.patience = patience
    controller.link.response_timeout = partial(
        answer_timeout, controller.config.response_timeout, world.answer_at_risk
    )
    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(done.wait(), timeout)
        if failures:
            raise failures[0]
        seen.completed = True
        await _settle(controller, timeout)
    except TimeoutError:
        seen.waiting_for = agent.waiting_for
        say(f"!! scenario stopped: still waiting for {seen.waiting_for}")
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        for task in list(actions):
            task.cancel()
        await asyncio.gather(*actions, return_exceptions=True)


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


def apply_setup(host: Host, scenario: Scenario, config: HostConfig) -> None:
    """Cards, accounts and balances of ``setup``, made the way ``atm db seed`` makes them."""
    setup = scenario.setup
    with host.sessions.begin() as session:
        equity = session.scalars(select(Account).where(Account.number == EQUITY_ACCOUNT)).one()

        def set_balance(account: Account, cents: int) -> None:
            change = cents - account.balance_cents
            if change:
                post(
                    session,
                    "opening",
                    [(account, change), (equity, -change)],
                    description="scenario opening balance",
                )

        for card_spec in setup.cards:
            if session.scalar(select(Card).where(Card.pan == card_spec.pan)) is not None:
                continue
            customer = Customer(name=card_spec.customer or card_spec.name.capitalize())
            session.add(customer)
            session.flush()
            card = Card(
                pan=card_spec.pan,
                customer=customer,
                expiry=card_spec.expiry,
                status=card_spec.status,
                pin_hash=hash_pin(card_spec.pin, config.pin_pepper, config.bcrypt_rounds),
            )
            session.add(card)
            session.flush()
            for spec in card_spec.accounts:
                account = session.scalar(select(Account).where(Account.number == spec.number))
                if account is None:
                    account = Account(
                        number=spec.number, kind=spec.type, customer=customer, balance_cents=0
                    )
                    session.add(account)
                    session.flush()
                if spec.balance_cents is not None:
                    set_balance(account, spec.balance_cents)
                session.add(
                    CardAccount(card=card, account=account, account_type=ACCOUNT_TYPES[spec.type])
                )
        for number, cents in setup.balances.items():
            account = session.scalar(select(Account).where(Account.number == number))
            if account is None:
                raise ValueError(f"setup.balances: no account {number}")
            set_balance(account, cents)
        session.flush()
        session.scalar(select(func.count(Posting.id)))


def _report(
    scenario: Scenario, seen: Observed, controller: AtmController, dispenser: Any, say: _Say
) -> None:
    for receipt in seen.receipts:
        say("== receipt")
        for line in receipt:
            say(f"   {line}")
    if not seen.receipts:
        say("== no receipt printed")
    for number in seen.balances_before:
        before, after = seen.balances_before[number], seen.balances_after.get(number, 0)
        say(f"== balance of {number} before: {money(before)}")
        held = seen.held_after.get(number, 0)
        if held:
            available = seen.available_after.get(number, after)
            say(
                f"== balance of {number} after:  {money(after)} "
                f"({money(available)} available, {money(held)} on hold)"
            )
        else:
            say(f"== balance of {number} after:  {money(after)}")
    cassettes = getattr(dispenser, "cassettes", [])
    counts = ", ".join(f"{money(c.denomination_cents)} x {c.count}" for c in cassettes)
    say(f"== dispenser cassettes: {counts}")
    say(
        f"== dispenser counters: taken by customers {money(seen.taken_cents)}, "
        f"notes retracted {seen.retracted_notes}"
    )
    for index, counters in sorted(controller.counters.cassettes.items()):
        say(
            f"== cassette {index} ({money(counters.denomination_cents)}): loaded "
            f"{counters.loaded}, dispensed {counters.dispensed}, rejected {counters.rejected}, "
            f"retracted {counters.retracted}, remaining {counters.remaining}"
        )
    if seen.stacked_cents or seen.returned_cents:
        say(
            f"== bill acceptor: notes stacked {money(seen.stacked_cents)}, given back and "
            f"taken {money(seen.returned_cents)}"
        )
    say(f"== cards retained: {seen.cards_retained}")


def check_expectations(scenario: Scenario, seen: Observed) -> list[str]:
    """The scenario's ``expect`` section against what was observed."""
    problems: list[str] = []
    if not seen.completed:
        problems.append(f"scenario did not finish: still waiting for {seen.waiting_for}")
        return problems
    expect = scenario.expect
    for number, change in expect.balance_changes.items():
        if number not in seen.balances_after:
            problems.append(f"expect.balance_changes: no account {number}")
            continue
        got = seen.balances_after[number] - seen.balances_before[number]
        if got != change:
            problems.append(
                f"balance of {number}: expected a change of {change} cents, saw {got} "
                f"({seen.balances_before[number]} -> {seen.balances_after[number]})"
            )
    journal = "\n".join(seen.journal)
    for wanted in map(partial(_shift_stans, seen.stan_base), expect.journal):
        if wanted not in journal:
            problems.append(f"journal has no line with {wanted!r}")
    for unwanted in map(partial(_shift_stans, seen.stan_base), expect.no_journal):
        if unwanted in journal:
            problems.append(f"journal has a line with {unwanted!r}")
    if expect.screens:
        position = 0
        for screen in seen.screens:
            if position < len(expect.screens) and screen == expect.screens[position]:
                position += 1
        if position < len(expect.screens):
            problems.append(
                f"screens: expected {' -> '.join(expect.screens)} in this order; "
                f"'{expect.screens[position]}' did not follow (shown: {' '.join(seen.screens)})"
            )
    if expect.response_codes is not None and tuple(seen.response_codes) != expect.response_codes:
        problems.append(
            f"response codes: expected {list(expect.response_codes)}, saw {seen.response_codes}"
        )
    if expect.taken_cents is not None and seen.taken_cents != expect.taken_cents:
        problems.append(
            f"expected notes worth {expect.taken_cents} cents taken, saw {seen.taken_cents}"
        )
    if expect.retracted_notes is not None and seen.retracted_notes != expect.retracted_notes:
        problems.append(
            f"expected {expect.retracted_notes} note(s) retracted, saw {seen.retracted_notes}"
        )
    if expect.cards_retained is not None and seen.cards_retained != expect.cards_retained:
        problems.append(
            f"expected {expect.cards_retained} card(s) retained, saw {seen.cards_retained}"
        )
    if expect.receipts is not None and len(seen.receipts) != expect.receipts:
        problems.append(f"expected {expect.receipts} receipt(s), saw {len(seen.receipts)}")
    for number, change in expect.available_changes.items():
        if number not in seen.available_after:
            problems.append(f"expect.available_changes: no account {number}")
            continue
        got = seen.available_after[number] - seen.available_before[number]
        if got != change:
            problems.append(
                f"available balance of {number}: expected a change of {change} cents, saw "
                f"{got} ({seen.available_before[number]} -> {seen.available_after[number]})"
            )
    for number, cents in expect.held_cents.items():
        if number not in seen.held_after:
            problems.append(f"expect.held_cents: no account {number}")
        elif seen.held_after[number] != cents:
            problems.append(
                f"held on {number}: expected {cents} cents on hold, saw {seen.held_after[number]}"
            )
    if expect.stacked_cents is not None and seen.stacked_cents != expect.stacked_cents:
        problems.append(
            f"expected notes worth {expect.stacked_cents} cents stacked in the bill acceptor, "
            f"saw {seen.stacked_cents}"
        )
    if expect.returned_cents is not None and seen.returned_cents != expect.returned_cents:
        problems.append(
            f"expected notes worth {expect.returned_cents} cents given back and taken, saw "
            f"{seen.returned_cents}"
        )
    lines = [line for receipt in seen.receipts for line in receipt]
    for wanted in expect.receipt_lines:
        if not any(wanted in line for line in lines):
            problems.append(f"no receipt line with {wanted!r}")
    return problems


__all__ += ["TRACKS", "apply_setup", "build_sim_devices", "check_expectations", "pins_of"]


def _shift_stans(base: int, text: str) -> str:
    """``stan=000002`` in an expectation is the terminal's second STAN of this run: with a
    reused host database the run's STANs start after ``base``."""
    if not base:
        return text
    return re.sub(
        r"stan=(\d{6})", lambda m: f"stan={(int(m[1]) + base - 1) % 999_999 + 1:06d}", text
    )


def _last_host_stan(host: Host, terminal_id: str) -> int:
    """The last STAN the host has on record from ``terminal_id`` (0: none)."""
    with host.sessions() as session:
        stans = [
            session.scalar(
                select(func.max(LinkRequest.stan)).where(LinkRequest.terminal_id == terminal_id)
            ),
            session.scalar(
                select(func.max(ReversalAdvice.stan)).where(
                    ReversalAdvice.terminal_id == terminal_id
                )
            ),
        ]
    return max((int(s) for s in stans if s and s.isdigit()), default=0)
