"""What the demo (``atm demo``) and a device process playing a script (``atm device --script``)
share: the step driver that answers each screen with the script's next step, and the one-line
form of a host-link message. No host code here: ``atm device`` imports this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from atm.scripts import Customer, Step
from device.events import LinkMessage
from protocol.display import describe

__all__ = ["StepDriver", "link_line"]


def link_line(event: LinkMessage) -> str:
    """``-- ATM -> HOST  0200 withdrawal ...``: PAN masked, PIN block never shown."""
    arrow = "ATM -> HOST" if event.direction == "send" else "HOST -> ATM"
    return f"-- {arrow}  {describe(event.message)}"


class StepDriver:
    """Plays a script's steps: when the screen of the next step shows, the customer does what
    the step says (on the next turn of the loop, so the screen's own handlers run first). A run
    ends when every step was played and the welcome screen shows again; ``repeat`` runs (0:
    for ever), each starting on that same welcome screen. ``finished`` receives the number of
    each run as it ends."""

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
        self._actions: set[asyncio.Future[Any]] = set()

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
            self._say(f"   [{self._label}{step.says}]")
            asyncio.get_running_loop().call_soon(self._act, step)

    def _act(self, step: Step) -> None:
        outcome = step.action(self.customer)
        if outcome is not None:
            task = asyncio.ensure_future(outcome)
            self._actions.add(task)
            task.add_done_callback(self._actions.discard)

    def cancel(self) -> None:
        """Stop the actions still running (a world action of a script that timed out)."""
        for task in list(self._actions):
            task.cancel()
