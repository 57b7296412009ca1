"""What the demo (``atm demo``), the scenario runner and a device process playing a built-in
scenario (``atm device --script``) share: the customer at the ATM (``Customer``), the step
driver that answers each screen with the next step, and the one-line form of a host-link
message. No host code here: ``atm device`` imports this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from atm.devices import CardSlot, CashSlot, Faultable, Keypad
from atm.scenario.format import TRACKS, Step
from device.events import LinkMessage
from protocol.display import describe

__all__ = ["ALICE_CHECKING", "TRACKS", "Customer", "StepDriver", "link_line"]

ALICE_CHECKING = "1000-0001-0001"


def link_line(event: LinkMessage) -> str:
    """``-- ATM -> HOST  0200 withdrawal ...``: PAN masked, PIN block never shown."""
    arrow = "ATM -> HOST" if event.direction == "send" else "HOST -> ATM"
    return f"-- {arrow}  {describe(event.message)}"


@dataclass
class Customer:
    """The person at the ATM, acting on the customer side of the simulated devices."""

    card_reader: CardSlot
    pin_pad: Keypad
    dispenser: CashSlot
    printer: Faultable | None = None

    def insert(self, who: str) -> None:
        self.card_reader.insert(TRACKS.get(who, who))

    def keys(self, *keys: str) -> None:
        self.pin_pad.press(*keys)

    def type(self, digits: str, then: str = "ENTER") -> None:
        self.pin_pad.type_digits(digits)
        self.pin_pad.press(then)

    def take_cash(self) -> None:
        self.dispenser.take_cash()

    def take_card(self) -> None:
        self.card_reader.take_card()

    def act(self, step: Step) -> None:
        """The customer's part of a step (the world's part needs the scenario runner)."""
        if step.insert is not None:
            self.card_reader.insert(step.insert)
        if step.type is not None:
            self.type(step.type, step.then)
        if step.press:
            self.keys(*step.press)
        if step.take == "cash":
            self.take_cash()
        elif step.take == "card":
            self.take_card()


def world_steps(steps: Sequence[Step]) -> list[Step]:
    """Steps that act on the host, the link or the devices' faults (not the customer's)."""
    return [s for s in steps if s.fault or s.clear or s.host or s.link or s.operator or s.pause]


class StepDriver:
    """Plays a scenario's customer steps: when the screen of the next step shows, the
    customer does what the step says (on the next turn of the loop, so the screen's own
    handlers run first). A run ends when every step was played and the welcome screen shows
    again; ``repeat`` runs (0: for ever), each starting on that same welcome screen.
    ``finished`` receives the number of each run as it ends."""

    def __init__(
        self,
        steps: Sequence[Step],
        customer: Customer,
        say: Callable[[str], None],
        *,
        label: str = "",
        repeat: int = 1,
    ) -> None:
        self._script = tuple(steps)
        self.steps = list(steps)
        self.customer = customer
        self._say = say
        self._label = label
        self._repeat = repeat
        self.runs = 0
        self.finished: asyncio.Queue[int] = asyncio.Queue()

    @property
    def waiting_for(self) -> str:
        """The screen the script waits for."""
        return self.steps[0].screen if self.steps else "welcome"

    def on_screen(self, screen_id: str, *, fresh: bool = True) -> None:
        """A screen was shown; ``fresh``: a new screen, not an update of the one before (a
        step is played only on a fresh one)."""
        if not self.steps and screen_id == "welcome":
            self.runs += 1
            self.finished.put_nowait(self.runs)
            if self._repeat == 0 or self.runs < self._repeat:
                self.steps[:] = self._script  # the next run starts on this same screen
        if self.steps and fresh and screen_id == self.steps[0].screen:
            step = self.steps.pop(0)
            self._say(f"   [{self._label}{step.describe()}]")
            asyncio.get_running_loop().call_soon(self.customer.act, step)

    def cancel(self) -> None:
        """Nothing runs in the background: customer actions are immediate."""


__all__ += ["world_steps"]
