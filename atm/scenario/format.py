"""The scenario as data: what a scenario file says once the loader has checked it.

A scenario is a set-up (cards, balances, cassettes, terminal, host settings), device faults
injected before the start, steps ("when screen X shows, do this") and expectations. The file
format (YAML) and its JSON Schema are described in ``docs/scenarios.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "HOST_CRASHES",
    "TRACKS",
    "AccountSpec",
    "CardSpec",
    "CassetteSpec",
    "Expect",
    "FaultSpec",
    "Scenario",
    "Setup",
    "Step",
]

# ``host: crash-POINT`` arms the host process to SIGKILL itself at that point of the next
# financial request (received, posted, sent: atm.scenario.hostcrash).
HOST_CRASHES = ("crash-received", "crash-posted", "crash-sent")

# The seeded cards (``atm db seed``) by the names scenarios use.
TRACKS: dict[str, str] = {
    "alice": "4000001234567899=30121010000000000000",
    "bob": "4000009876543219=30121010000000000000",
    "charlie": "4000005555555557=30121010000000000000",
    "expired": "4000001111222238=24011010000000000000",
    "stolen": "4000009999999991=30121010000000000000",
}
SEED_PINS = {"alice": "1234", "bob": "5678", "charlie": "9012", "expired": "9012", "stolen": "9012"}


@dataclass(frozen=True)
class FaultSpec:
    device: str  # reader | pinpad | dispenser | printer | acceptor | depository
    fault: str
    arg: str | float | int | None = None

    def __str__(self) -> str:
        return f"{self.device} {self.fault}" + (f" {self.arg}" if self.arg is not None else "")


@dataclass(frozen=True)
class AccountSpec:
    number: str
    type: str  # checking | savings
    balance_cents: int | None = None


@dataclass(frozen=True)
class CardSpec:
    name: str
    pan: str
    pin: str
    accounts: tuple[AccountSpec, ...]
    expiry: str = "3012"
    status: str = "active"
    customer: str = ""

    @property
    def track2(self) -> str:
        return f"{self.pan}={self.expiry}1010000000000000"


@dataclass(frozen=True)
class CassetteSpec:
    denomination_cents: int
    count: int


@dataclass(frozen=True)
class Setup:
    terminal_id: str = "ATM00001"
    key_scheme: str = "T"
    devices: str = "sim"
    device: dict[str, Any] = field(default_factory=dict)
    host: dict[str, int] = field(default_factory=dict)
    host_down_at_start: bool = False
    cassettes: tuple[CassetteSpec, ...] = ()
    balances: dict[str, int] = field(default_factory=dict)
    cards: tuple[CardSpec, ...] = ()


@dataclass(frozen=True)
class Step:
    """When screen ``screen`` shows: first the world's actions (clear, fault, host, link,
    operator, pause), then the customer's (insert, type, press, take, wait)."""

    screen: str
    line: int
    says: str = ""
    fault: FaultSpec | None = None
    clear: FaultSpec | None = None
    host: str | None = None
    link: str | None = None
    link_delay: float = 0.0
    operator: str | None = None
    insert: str | None = None  # a track 2
    insert_name: str = ""
    type: str | None = None
    then: str = "ENTER"
    notes: tuple[int, ...] = ()  # notes pushed into the bill acceptor, cents each
    envelope: bool = False  # an envelope pushed into the depository
    press: tuple[str, ...] = ()
    take: str | None = None  # cash | card | notes (returned by the bill acceptor)
    wait: bool = False
    pause: float = 0.0  # seconds the world waits before the customer acts
    # The ATM process: "kill" arms a SIGKILL right after the ``kill_nth`` journal record
    # ``kill_at`` from this step on (``counters``: a save of the cash counters); "restart"
    # starts it again (the step is done when the restarted ATM shows its screen).
    atm: str | None = None
    kill_at: str = ""
    kill_nth: int = 1

    def describe(self) -> str:
        if self.says:
            return self.says
        parts: list[str] = []
        if self.clear:
            parts.append(f"clear {self.clear}")
        if self.fault:
            parts.append(f"fault {self.fault}")
        if self.pause:
            parts.append(f"{self.pause:g} s pass")
        if self.host:
            parts.append(f"host: {self.host}")
        if self.link:
            parts.append(f"link {self.link}")
        if self.operator:
            parts.append(f"operator: {self.operator.replace('_', ' ')}")
        if self.atm == "kill":
            nth = f" #{self.kill_nth}" if self.kill_nth != 1 else ""
            parts.append(f"the ATM process dies right after {self.kill_at}{nth}")
        elif self.atm == "restart":
            parts.append("the ATM process starts again")
        if self.insert:
            parts.append(f"inserts {self.insert_name or 'a'} card")
        if self.type is not None:
            parts.append(f"types {'*' * len(self.type)} and {self.then}")
        if self.notes:
            parts.append("inserts notes " + " + ".join(f"${n / 100:g}" for n in self.notes))
        if self.envelope:
            parts.append("inserts the envelope")
        if self.press:
            parts.append(f"presses {' '.join(self.press)}")
        if self.take:
            parts.append(f"takes the {self.take}")
        if self.wait:
            parts.append("does nothing")
        return "; ".join(parts)

    @property
    def uses_relay(self) -> bool:
        return self.link is not None


@dataclass(frozen=True)
class Expect:
    balance_changes: dict[str, int] = field(default_factory=dict)
    journal: tuple[str, ...] = ()
    no_journal: tuple[str, ...] = ()
    screens: tuple[str, ...] = ()
    response_codes: tuple[str, ...] | None = None
    taken_cents: int | None = None
    retracted_notes: int | None = None
    cards_retained: int | None = 0  # None: not checked (fuzz replays)
    receipts: int | None = None
    receipt_lines: tuple[str, ...] = ()
    # Deposits: the change of each account's available balance (ledger less holds), the
    # cents on hold per account at the end, the notes stacked in the bill acceptor.
    available_changes: dict[str, int] = field(default_factory=dict)
    held_cents: dict[str, int] = field(default_factory=dict)
    stacked_cents: int | None = None
    returned_cents: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: Path
    setup: Setup
    faults: tuple[FaultSpec, ...]
    steps: tuple[Step, ...]
    expect: Expect
    tags: tuple[str, ...] = ()

    @property
    def via_relay(self) -> bool:
        return any(step.uses_relay for step in self.steps)

    @property
    def host_process(self) -> bool:
        """The host runs as its own ``atm host`` process (a step kills it)."""
        return any(step.host in {"kill", "restart", *HOST_CRASHES} for step in self.steps)

    @property
    def host_crash(self) -> bool:
        """The host process has crash points (``atm.scenario.hostcrash``): a step arms one."""
        return any(step.host in HOST_CRASHES for step in self.steps)

    @property
    def atm_process(self) -> bool:
        """The ATM runs as its own process until a step kills it."""
        return any(step.atm == "kill" for step in self.steps)

    @property
    def restart_index(self) -> int:
        """The index of the ``atm: restart`` step (the number of steps the first ATM plays)."""
        for index, step in enumerate(self.steps):
            if step.atm == "restart":
                return index
        return len(self.steps)

    def tracks(self) -> dict[str, str]:
        """Card name -> track 2, the seeded cards and this scenario's own."""
        return {**TRACKS, **{card.name: card.track2 for card in self.setup.cards}}
