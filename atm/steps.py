"""What the demo (``atm demo``), the scenario runner and a device process playing a built-in
scenario (``atm device --script``) share: the customer at the ATM (``Customer``), the step
driver that answers each screen with the next step, and the one-line form of a host-link
message. No host code here: ``atm device`` imports this."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from atm.devices import CardSlot, CashSlot, Faultable, Keypad, NoteSlot
from atm.errors import EXIT_USAGE, CommandFailed
from atm.scenario.format import TRACKS, Step
from device.controller import AtmController
from device.events import LinkMessage
from protocol.display import describe

__all__ = [
    "ALICE_CHECKING",
    "LINK_LOG_HELP",
    "SESSION_OVER",
    "TRACKS",
    "Customer",
    "StepDriver",
    "add_link_log_option",
    "link_line",
    "open_link_log",
    "stop_controller",
    "world_steps",
]

ALICE_CHECKING = "1000-0001-0001"

LINK_LOG_HELP = (
    "where the decoded host-link messages go: - (standard output, mixed with the screens; "
    "the default), off, or a FILE they are appended to (follow it with tail -f), so the "
    "screens stay readable. PAN masked, PIN block and MAC hidden, response codes with their "
    "meaning"
)

log = logging.getLogger(__name__)

#: Screens after which a script with steps left cannot go on: the session is over.
SESSION_OVER = frozenset({"welcome", "out_of_service", "fault"})


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
    # The bill acceptor's note slot (cash deposits), where the ATM has one.
    notes: NoteSlot | None = None
    # The envelope depository's slot (check deposits), where the ATM has one.
    depository: Any = None

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

    def insert_notes(self, *cents: int) -> None:
        """Push notes into the bill acceptor, one after another."""
        if self.notes is None:
            raise ValueError("this ATM has no bill acceptor")
        for value in cents:
            self.notes.insert_note(value)

    def take_notes(self) -> list[int]:
        """Take the notes the bill acceptor gave back."""
        if self.notes is None:
            raise ValueError("this ATM has no bill acceptor")
        return self.notes.take_returned()

    def insert_envelope(self) -> None:
        if self.depository is None:
            raise ValueError("this ATM has no envelope depository")
        self.depository.insert_envelope()

    def act(self, step: Step) -> None:
        """The customer's part of a step (the world's part needs the scenario runner), in
        this order: card, digits, notes, envelope, keys, take."""
        if step.insert is not None:
            self.card_reader.insert(step.insert)
        if step.type is not None:
            self.type(step.type, step.then)
        if step.notes:
            self.insert_notes(*step.notes)
        if step.envelope:
            self.insert_envelope()
        if step.press:
            self.keys(*step.press)
        if step.take == "cash":
            self.take_cash()
        elif step.take == "card":
            self.take_card()
        elif step.take == "notes":
            self.take_notes()


def world_steps(steps: Sequence[Step]) -> list[Step]:
    """Steps that act on the host, the link, the devices' faults or the ATM process (not the
    customer's)."""
    return [
        s for s in steps if s.fault or s.clear or s.host or s.link or s.operator or s.pause or s.atm
    ]


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
        #: Set when a run went wrong ("got screen 'welcome' while waiting for 'take_cash'");
        #: ``finished`` then receives 0, at once, instead of waiting for a timeout.
        self.failure: str | None = None
        self._in_run = False
        self._actions: set[asyncio.Future[Any]] = set()

    @property
    def waiting_for(self) -> str:
        """The screen the script waits for."""
        return self.steps[0].screen if self.steps else "welcome"

    def on_screen(self, screen_id: str, *, fresh: bool = True) -> None:
        """A screen was shown; ``fresh``: a new screen, not an update of the one before (a
        step is played only on a fresh one)."""
        if self.failure is not None:
            return
        if (
            self._in_run
            and self.steps
            and screen_id in SESSION_OVER
            and screen_id != self.steps[0].screen
        ):
            # The session ended (or the ATM went out of service) with steps still to play:
            # the script cannot go on, so say so now rather than after the timeout.
            self.failure = f"got screen {screen_id!r} while waiting for {self.steps[0].screen!r}"
            self.finished.put_nowait(0)
            return
        if not self.steps and screen_id == "welcome":
            self._in_run = False
            self.runs += 1
            self.finished.put_nowait(self.runs)
            if self._repeat == 0 or self.runs < self._repeat:
                self.steps[:] = self._script  # the next run starts on this same screen
        if self.steps and fresh and screen_id == self.steps[0].screen:
            step = self.steps.pop(0)
            self._in_run = True
            self._say(f"   [{self._label}{step.describe()}]")
            asyncio.get_running_loop().call_soon(self._act, step)

    def _act(self, step: Step) -> None:
        self.customer.act(step)

    def cancel(self) -> None:
        """Stop the actions still running (a world action of a script that timed out)."""
        for task in list(self._actions):
            task.cancel()


async def stop_controller(controller: AtmController, runner: asyncio.Task[None]) -> None:
    """Stop a running controller cleanly: ``stop()`` ends its loop between two events (no
    CancelledError inside a transitions trigger, which transitions would log as an error);
    only if it does not end within a few seconds is the task cancelled."""
    controller.stop()
    await asyncio.wait({runner}, timeout=5)
    # transitions 0.9.3 swallows a CancelledError that lands inside a trigger, so one
    # cancel() may not stop the controller: repeat until the task has ended.
    while not runner.done():
        runner.cancel()
        await asyncio.wait({runner}, timeout=0.1)
    if not runner.cancelled() and runner.exception() is not None:
        log.error("controller stopped with %r", runner.exception())


def add_link_log_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--link-log", default="-", metavar="-|off|FILE", help=LINK_LOG_HELP)


@contextlib.contextmanager
def open_link_log(spec: str, command: str) -> Iterator[Callable[[str], None]]:
    """The writer for ``--link-log``: standard output, nothing, or a file (appended, one line
    flushed at a time); a file that cannot be written is one line, exit 2."""
    if spec == "-":
        yield lambda line: print(line, flush=True)
        return
    if spec == "off":
        yield lambda line: None
        return
    try:
        handle = open(spec, "a", encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(
            f"{command}: cannot write the link log {spec}: {exc.strerror}", EXIT_USAGE
        ) from None
    with handle:

        def write(line: str) -> None:
            handle.write(line + "\n")
            handle.flush()

        yield write
