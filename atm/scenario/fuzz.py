"""Random sessions (``atm scenario fuzz``): K simulated ATMs on one host, each driven by a
seeded random customer who reacts to the screen shown (cards, PINs right and wrong,
withdrawals, inquiries, transfers, amounts, cash and cards left behind) while device and
link faults are injected between sessions. The invariants are checked at the end over every
terminal. On failure the run is written as scenario files (what each customer actually did,
step by step) and shrunk: sessions are removed while the replay still fails."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from atm.scenario.format import (
    SEED_PINS,
    TRACKS,
    AccountSpec,
    CardSpec,
    Expect,
    FaultSpec,
    Scenario,
    Setup,
    Step,
)
from atm.scenario.invariants import check_invariants, snapshot_host
from atm.scenario.runner import (
    ScenarioResult,
    SharedHost,
    apply_setup,
    run_scenario,
    scenario_host_config,
    sqlite_template,
)
from device.screens import Screen
from host.app import Host
from host.config import HostConfig

__all__ = ["FuzzAgent", "FuzzReport", "fuzz", "scenario_to_yaml", "shrink"]

# Short timeouts so that a customer walking away, or a lost reply, costs little. They decide
# nothing else: a customer who acts, and an answer no fault loses, get 60 s
# (atm.scenario.patience), so a loaded machine does not change a session's path.
DEVICE = {
    "cash_take_timeout": 0.3,
    "card_take_timeout": 0.3,
    "response_timeout": 1.0,
    "reconnect_delay": 0.1,
}
CARDS = (("alice", 4), ("bob", 3), ("charlie", 2), ("expired", 0.5), ("stolen", 0.5))
DEVICE_FAULTS = (
    FaultSpec("dispenser", "jam"),
    FaultSpec("dispenser", "partial"),
    FaultSpec("printer", "paper_out"),
    FaultSpec("reader", "unreadable"),
)
LINK_FAULTS = ("drop_reply", "duplicate_request", "corrupt_mac")
# Where a killed ATM process may die (``--kills``): after these journal events (or a save of
# the cash counters) of a withdrawal, or of a transfer.
WITHDRAWAL_KILLS = (
    "SESSION_START",
    "PIN_ENTERED",
    "TXN_REQUEST",
    "TXN_RESPONSE",
    "DISPENSE_START",
    "counters",
    "DISPENSE_RESULT",
    "CASH_TAKEN",
    "RECEIPT_PRINTED",
    "CARD_RETURNED",
)
TRANSFER_KILLS = (
    "SESSION_START",
    "PIN_ENTERED",
    "TXN_REQUEST",
    "TXN_RESPONSE",
    "RECEIPT_PRINTED",
    "CARD_RETURNED",
)


class FuzzAgent:
    """A random customer (and operator) for one ATM: ``sessions`` card sessions."""

    def __init__(self, rng: random.Random, sessions: int) -> None:
        self.rng = rng
        self.quota = sessions
        self.started = 0
        self.recorded: list[Step] = []
        self.faults_injected: list[str] = []
        self._done = False
        self._fault: FaultSpec | None = None
        self._card = "alice"
        self._tries = 0

    @property
    def finished(self) -> bool:
        return self._done

    @property
    def waiting_for(self) -> str:
        last = self.recorded[-1].screen if self.recorded else "-"
        return f"the next screen of session {self.started} (last step on '{last}')"

    def _key(self, screen: Screen, weights: dict[str, float]) -> str | None:
        """A soft key the screen offers, by weight (a key it does not offer does nothing)."""
        offered = {k: w for k, w in weights.items() if k in screen.soft_keys}
        if not offered:
            return None
        return self.rng.choices(list(offered), weights=list(offered.values()))[0]

    def _press(self, screen: Screen, weights: dict[str, float]) -> Step | None:
        key = self._key(screen, weights)
        return None if key is None else self._record(Step(screen.id, 0, press=(key,)))

    def _record(self, step: Step) -> Step:
        self.recorded.append(step)
        return step

    def step_for(self, screen: Screen) -> Step | None:
        r = self.rng
        sid = screen.id
        if sid == "welcome":
            if self.started >= self.quota:
                self._done = True
                return None
            self.started += 1
            names = [name for name, _ in CARDS]
            self._card = r.choices(names, weights=[w for _, w in CARDS])[0]
            self._tries = 0
            clear, self._fault = self._fault, None
            fault = link = None
            if r.random() < 0.12:
                fault = self._fault = r.choice(DEVICE_FAULTS)
                self.faults_injected.append(str(fault))
            if r.random() < 0.08:
                link = r.choice(LINK_FAULTS)
                self.faults_injected.append(f"link {link}")
            return self._record(
                Step(
                    "welcome",
                    0,
                    fault=fault,
                    clear=clear,
                    link=link,
                    insert=TRACKS[self._card],
                    insert_name=self._card,
                )
            )
        pin = SEED_PINS[self._card]
        if sid == "enter_pin":
            typed = pin if r.random() < 0.9 else f"{r.randrange(10000):04d}"
            return self._record(Step(sid, 0, type=typed))
        if sid == "pin_retry":
            if r.random() < 0.2:
                return self._record(Step(sid, 0, press=("CANCEL",)))
            typed = pin if r.random() < 0.6 else f"{r.randrange(10000):04d}"
            return self._record(Step(sid, 0, type=typed))
        if sid == "main_menu":
            return self._press(screen, {"F1": 55, "F2": 20, "F3": 15, "F8": 10})
        if sid == "select_account":
            return self._press(screen, {"F1": 2, "F2": 1})
        if sid == "select_to_account":
            return self._press(screen, {"F1": 1, "F2": 1})
        if sid == "select_amount":
            self._tries += 1
            if self._tries > 2 or r.random() < 0.7:
                return self._press(screen, {"F1": 3, "F2": 2, "F3": 2, "F4": 2, "F5": 1})
            return self._record(Step(sid, 0, type=str(r.randrange(1, 61) * 10)))
        if sid == "transfer_amount":
            return self._record(Step(sid, 0, type=str(r.randrange(1, 3000))))
        if sid == "take_cash":
            if r.random() < 0.9:
                return self._record(Step(sid, 0, take="cash"))
            return self._record(Step(sid, 0, wait=True))
        if sid == "take_card":
            if r.random() < 0.95:
                return self._record(Step(sid, 0, take="card"))
            return self._record(Step(sid, 0, wait=True))
        if sid == "another":
            return self._press(screen, {"F8": 4, "F4": 1})
        if sid == "balance":
            return self._press(screen, {"F8": 3, "F4": 2})
        if sid == "fault":
            self._fault = None
            return self._record(Step(sid, 0, operator="repair"))
        if sid == "supervisor":
            return self._record(Step(sid, 0, press=("F8",)))  # Leave
        return None


@dataclass
class FuzzReport:
    seed: int
    sessions: int
    terminals: int
    seconds: float = 0.0
    kills: int = 0
    problems: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    response_codes: dict[str, int] = field(default_factory=dict)
    replays: list[Path] = field(default_factory=list)
    shrunk: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _lane(terminal: int, seed: int) -> Scenario:
    terminal_id = f"ATM{terminal:05d}"
    return Scenario(
        name=f"fuzz-seed-{seed}-{terminal_id.lower()}",
        description=f"atm scenario fuzz --seed {seed}: the sessions of terminal {terminal_id}",
        path=Path(f"<fuzz seed {seed}>"),
        setup=Setup(terminal_id=terminal_id, device=dict(DEVICE)),
        faults=(),
        steps=(),
        expect=Expect(cards_retained=None),
        tags=("fuzz",),
    )


def _with_luhn(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = int(char) * (2 if index % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return digits + str((10 - total % 10) % 10)


def kill_lane(terminal: int, seed: int, number: int, folder: Path) -> Scenario:
    """A random session of Alice's on its own ATM process, killed at a random step and
    restarted (``atm: kill`` / ``atm: restart``), written to ``folder`` (the ATM process
    reads it)."""
    rng = random.Random(f"{seed}/kill/{number}")  # nosec B311 (seeded test data)
    terminal_id = f"ATM{terminal:05d}"
    # A card of its own (the random lanes may have locked Alice's or used her daily limit).
    owner = CardSpec(
        name=f"killed{number}",
        pan=_with_luhn(f"400000770000{number:03d}"),
        pin="2468",
        accounts=(
            AccountSpec(f"9000-{number:04d}-0001", "checking", 100_000),
            AccountSpec(f"9000-{number:04d}-0002", "savings", 100_000),
        ),
        customer=f"Killed ATM customer {number}",
    )
    card = Step("welcome", 0, insert=owner.track2, insert_name=owner.name, atm="kill")
    pin = Step("enter_pin", 0, type=owner.pin)
    if rng.random() < 0.6:
        point = rng.choice(WITHDRAWAL_KILLS)
        key = rng.choice(("F1", "F2", "F3", "F4"))
        middle = [
            Step("main_menu", 0, press=("F1",)),
            Step("select_account", 0, press=("F1",)),
            Step("select_amount", 0, press=(key,)),
            Step("take_cash", 0, take="cash"),
        ]
        what = f"a withdrawal ({key})"
    else:
        point = rng.choice(TRANSFER_KILLS)
        dollars = rng.randint(1, 500)
        middle = [
            Step("main_menu", 0, press=("F3",)),
            Step("select_account", 0, press=("F1",)),
            Step("select_to_account", 0, press=("F2",)),
            Step("transfer_amount", 0, type=str(dollars)),
            Step("another", 0, press=("F8",)),
        ]
        what = f"a ${dollars} transfer"
    steps = (
        replace(card, kill_at=point),
        pin,
        *middle,
        Step("take_card", 0, take="card"),
        Step("welcome", 0, atm="restart"),
    )
    name = f"fuzz-seed-{seed}-kill-{number}"
    path = folder / f"{name}.yaml"
    scenario = Scenario(
        name=name,
        description=f"atm scenario fuzz --seed {seed}: {what} on {terminal_id}, the ATM "
        f"process killed after {point}",
        path=path,
        setup=Setup(terminal_id=terminal_id, device=dict(DEVICE), cards=(owner,)),
        faults=(),
        steps=steps,
        expect=Expect(cards_retained=None),
        tags=("fuzz", "kill"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(scenario_to_yaml(scenario))
    return scenario


async def fuzz(
    seed: int,
    sessions: int,
    terminals: int = 1,
    *,
    kills: int = 0,
    host_config: HostConfig | None = None,
    replay_dir: Path | None = None,
    shrink_attempts: int = 40,
    say: Callable[[str], None] = lambda _text: None,
) -> FuzzReport:
    """Run ``sessions`` random sessions across ``terminals`` ATMs on one fresh host, then
    ``kills`` sessions on ATMs of their own (the terminals after those) whose process is
    killed at a random step and restarted."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = FuzzReport(seed, sessions, terminals, kills=kills)
    config = host_config or scenario_host_config()
    work = Path(tempfile.mkdtemp(prefix="atm-fuzz-"))
    try:
        template = await asyncio.to_thread(sqlite_template, config)
        shutil.copyfile(template, work / "host.db")
        config = replace(config, database_url=f"sqlite:///{work / 'host.db'}")
        host = Host(config)
        await asyncio.to_thread(host.upgrade_and_seed)
        before = await asyncio.to_thread(snapshot_host, host)
        port = await host.start("127.0.0.1", 0)
        shared = SharedHost(host, port)
        share = [
            sessions // terminals + (1 if i < sessions % terminals else 0) for i in range(terminals)
        ]
        # Seeded test data, not secrets: reproducible on purpose.
        agents = [
            FuzzAgent(random.Random(f"{seed}/{t + 1}"), share[t])  # nosec B311
            for t in range(terminals)
        ]
        lanes = [_lane(t + 1, seed) for t in range(terminals)]
        killed = [kill_lane(terminals + 1 + k, seed, k + 1, work / "kills") for k in range(kills)]
        timeout = 30.0 + 3.0 * max(share)
        results: Sequence[ScenarioResult] = await asyncio.gather(
            *(
                run_scenario(
                    lane,
                    host_config=config,
                    work_dir=work / lane.setup.terminal_id,
                    timeout=timeout,
                    shared=shared,
                    agent=agent,
                )
                for lane, agent in zip(lanes, agents, strict=True)
            )
        )
        # The killed ATMs one at a time (each is a process of its own, then a restart), each
        # with a card and accounts of its own.
        for lane in killed:
            await asyncio.to_thread(apply_setup, host, lane, config)
        kill_results = [
            await run_scenario(
                lane,
                host_config=config,
                work_dir=work / lane.setup.terminal_id,
                timeout=60.0,
                shared=shared,
            )
            for lane in killed
        ]
        after = await asyncio.to_thread(snapshot_host, host)
        evidence = [r.evidence for r in [*results, *kill_results] if r.evidence is not None]
        for lane, result in zip(killed, kill_results, strict=True):
            if not result.ok:
                report.problems += [f"{lane.name}: {p}" for p in result.problems] or [
                    f"{lane.name} stopped: still waiting for {result.observed.waiting_for}"
                ]
        for lane, result in zip(lanes, results, strict=True):
            if not result.observed.completed:
                report.problems.append(
                    f"{lane.setup.terminal_id} stopped: still waiting for "
                    f"{result.observed.waiting_for}"
                )
            for code in result.observed.response_codes:
                report.response_codes[code] = report.response_codes.get(code, 0) + 1
        report.problems += check_invariants(before, after, evidence, host)
        await host.close()
        for agent in agents:
            report.faults += agent.faults_injected
        say(
            f"== {sessions} sessions on {terminals} terminal(s): "
            f"{sum(a.started for a in agents)} started, response codes "
            f"{dict(sorted(report.response_codes.items()))}, {len(report.faults)} faults"
        )
        if report.problems:
            out = replay_dir or Path.cwd()
            out.mkdir(parents=True, exist_ok=True)
            replays = []
            for lane, agent in zip(lanes, agents, strict=True):
                replay = replace(lane, steps=tuple(agent.recorded))
                path = out / f"{replay.name}.yaml"
                path.write_text(scenario_to_yaml(replay))
                replays.append((replay, path))
                report.replays.append(path)
            for lane in killed:
                path = out / lane.path.name
                shutil.copyfile(lane.path, path)
                report.replays.append(path)
            for replay, _ in replays:
                shrunk = await shrink(replay, config, shrink_attempts, say)
                if shrunk is not None:
                    path = out / f"{replay.name}-min.yaml"
                    path.write_text(scenario_to_yaml(shrunk))
                    report.shrunk = path
                    break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = loop.time() - started
    return report


def _sessions(steps: Sequence[Step]) -> list[list[Step]]:
    groups: list[list[Step]] = []
    for step in steps:
        if (step.screen == "welcome" and step.insert is not None) or not groups:
            groups.append([])
        groups[-1].append(step)
    return groups


async def _fails(scenario: Scenario, config: HostConfig) -> bool:
    """Does the replay fail, other than by having been cut short (a lane that was stopped
    mid-session leaves an unfinished last session behind)?"""
    result = await run_scenario(scenario, host_config=config, timeout=30.0)
    cut_short = "after the last step" in result.observed.waiting_for
    return not result.ok and not (cut_short and len(result.problems) == 1)


async def _fails_again(scenario: Scenario, config: HostConfig) -> bool:
    """``_fails`` twice in a row: a shrinking step keeps a candidate only when its failure
    repeats. The replay's timers act only where the scenario means them to
    (atm.scenario.patience), so a replay takes the same path on a busy machine; the second run
    guards what that does not cover, so that a "shrunk replay" never passes when the user
    runs it."""
    return await _fails(scenario, config) and await _fails(scenario, config)


async def shrink(
    scenario: Scenario, config: HostConfig, attempts: int, say: Callable[[str], None]
) -> Scenario | None:
    """The smallest replay (by whole sessions) that still fails, every step of the way failing
    twice in a row (``_fails_again``), or None if the lane alone does not fail (the failure
    needed the other terminals)."""
    base = replace(config, database_url="sqlite:///:memory:")
    if not await _fails(scenario, base):
        say(f"== {scenario.name}: does not fail on its own")
        return None
    groups = _sessions(scenario.steps)
    chunk = max(1, len(groups) // 2)
    tries = 0
    while chunk >= 1 and tries < attempts:
        index, removed = 0, False
        while index < len(groups) and tries < attempts:
            candidate = groups[:index] + groups[index + chunk :]
            if not candidate:
                index += chunk
                continue
            tries += 1
            trial = replace(scenario, steps=tuple(s for g in candidate for s in g))
            if await _fails_again(trial, base):
                groups, removed = candidate, True
            else:
                index += chunk
        if not removed:
            chunk //= 2
    say(f"== {scenario.name}: shrunk to {len(groups)} session(s) in {tries} tries")
    return replace(scenario, steps=tuple(s for g in groups for s in g))


def _step_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"screen": step.screen}
    if step.clear is not None:
        out["clear"] = {"device": step.clear.device, "fault": step.clear.fault}
    if step.fault is not None:
        out["fault"] = {"device": step.fault.device, "fault": step.fault.fault}
    if step.link is not None:
        out["link"] = step.link
    if step.operator is not None:
        out["operator"] = step.operator
    if step.insert is not None:
        out["insert"] = step.insert_name or {"track2": step.insert}
    if step.type is not None:
        out["type"] = step.type
    if step.press:
        out["press"] = step.press[0] if len(step.press) == 1 else list(step.press)
    if step.take is not None:
        out["take"] = step.take
    if step.wait:
        out["wait"] = True
    if step.atm is not None:
        out["atm"] = step.atm
    if step.atm == "kill":
        out["at"] = step.kill_at
        if step.kill_nth != 1:
            out["nth"] = step.kill_nth
    return out


def _card_dict(card: CardSpec) -> dict[str, Any]:
    return {
        "name": card.name,
        "pan": card.pan,
        "pin": card.pin,
        "customer": card.customer,
        "accounts": [
            {"number": a.number, "type": a.type, "balance": a.balance_cents} for a in card.accounts
        ],
    }


def scenario_to_yaml(scenario: Scenario) -> str:
    """A scenario file ``atm scenario run`` reads back."""
    data: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "tags": list(scenario.tags),
        "setup": {
            "terminal": {"id": scenario.setup.terminal_id},
            "device": dict(scenario.setup.device),
            **(
                {"cards": [_card_dict(c) for c in scenario.setup.cards]}
                if scenario.setup.cards
                else {}
            ),
        },
        "expect": {"cards_retained": None},
        "steps": [_step_dict(step) for step in scenario.steps],
    }
    head: str = yaml.safe_dump(
        {k: v for k, v in data.items() if k not in {"steps", "expect"}},
        sort_keys=False,
        width=100,
    )
    steps = "".join(
        "  - " + str(yaml.safe_dump(s, default_flow_style=True, width=200)).strip() + "\n"
        for s in data["steps"]
    )
    expect = "expect:\n  cards_retained: null  # random sessions: only the invariants count\n"
    return head + expect + "steps:\n" + steps
