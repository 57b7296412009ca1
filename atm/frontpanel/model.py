"""The front-panel model: everything a person sees and does at one ATM, as a plain Python
object that any view renders (the Textual console, a web front panel, tests).

It observes the controller's events (screens, state changes, host-link messages, receipts,
journal lines) and the devices' customer sides (``atm.frontpanel.sides``), keeps what a view
shows (the screen, the card slot, the cash tray by denomination, the receipt roll, the decoded
link log with PAN masked and no PIN block, the journal tail, the controller state and the
transition that led to it, device status and cash counters), and turns a person's actions
(a key, a card inserted or taken, cash taken, a fault injected or cleared, the supervisor
switch, link faults) into device actions and controller events.

Views subscribe with ``subscribe(callback)``; the callback gets the ``Change`` and must not
block. ``wait_for(check)`` resolves once ``check(panel)`` holds (for tests and scripts: no
sleeps). Nothing here knows about any UI toolkit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from atm.frontpanel.sides import DeviceSide, LocalSide, SideState
from atm.steps import TRACKS
from device.controller import AtmController
from device.events import DeviceEvent, JournalLine, LinkMessage, ReceiptPrinted, ScreenShown
from device.events import StateChanged as StateChangedEvent
from device.screens import Screen, money
from device.states import CUSTOMER_STATES, State
from protocol.display import describe, safe_fields
from protocol.masking import mask_pan

__all__ = [
    "KEYS",
    "NOTES",
    "SEEDED_CARDS",
    "SUPERVISOR_KEYS",
    "Change",
    "FrontPanel",
    "LinkControls",
    "LinkEntry",
    "NoteSlot",
    "Notice",
    "PanelError",
    "Transition",
    "track2_for",
]

log = logging.getLogger(__name__)

KEYS = (
    *"0123456789",
    "ENTER",
    "CLEAR",
    "CANCEL",
    *(f"F{i}" for i in range(1, 9)),
)

# The notes the note slot offers a person (cents): the bill acceptor recognises these.
NOTES = (100, 500, 1000, 2000, 5000, 10000)

# The seeded cards (``atm db seed``), by the name ``insert`` takes; label for pickers.
SEEDED_CARDS: dict[str, str] = {
    "alice": "Alice Johnson (PIN 1234)",
    "bob": "Bob Williams (PIN 5678)",
    "charlie": "Charlie Davis (PIN 9012)",
    "expired": "Expired test card",
    "stolen": "Stolen test card",
}

# Supervisor keys (the controller's supervisor mode, ``device.states.SUPERVISOR_KEYS``), for
# the operator's view: every key the controller honours there, with its label.
SUPERVISOR_KEYS: dict[str, str] = {
    "F1": "Replenish",
    "F2": "Print counters",
    "F3": "Reset counters",
    "F4": "Journal",
    "F5": "Balancing",
    "F6": "Suspect: not paid",
    "F7": "Suspect: paid",
    "ENTER": "Accept damaged line",
    "F8": "Leave",
}

# States the console leaves the ATM in when it quits: no card inside, no cash in the tray.
AT_REST = frozenset({State.idle, State.out_of_service, State.fault})


class PanelError(Exception):
    """A person's action that cannot be done (bad card number, unknown fault, no host here)."""


class Change(enum.Enum):
    SCREEN = "screen"
    STATE = "state"
    LINK = "link"
    JOURNAL = "journal"
    RECEIPT = "receipt"
    DEVICES = "devices"
    NOTICE = "notice"


@dataclass(frozen=True)
class LinkEntry:
    number: int
    at: dt.datetime
    direction: str  # send | recv
    mti: str
    summary: str  # one line
    text: str  # every field, decoded; PAN masked, PIN block and MAC hidden

    def matches(self, needle: str) -> bool:
        needle = needle.strip().lower()
        return not needle or needle in self.summary.lower() or needle in self.text.lower()


@dataclass(frozen=True)
class Transition:
    source: str
    dest: str
    at: dt.datetime
    trigger: str = ""

    def __str__(self) -> str:
        via = f" ({self.trigger})" if self.trigger else ""
        return f"{self.source} -> {self.dest}{via}"


def _by_note(notes: Iterable[int]) -> list[tuple[int, int]]:
    counted: dict[int, int] = {}
    for cents in notes:
        counted[cents] = counted.get(cents, 0) + 1
    return sorted(counted.items(), reverse=True)


@dataclass(frozen=True)
class NoteSlot:
    """The note slot, by denomination (cents, notes), largest first."""

    escrow: list[tuple[int, int]] = field(default_factory=list)
    returned: list[tuple[int, int]] = field(default_factory=list)  # at the slot: take them
    stacked: list[tuple[int, int]] = field(default_factory=list)

    @staticmethod
    def total(notes: list[tuple[int, int]]) -> int:
        return sum(c * n for c, n in notes)

    def describe(self) -> str:
        def show(notes: list[tuple[int, int]]) -> str:
            items = ", ".join(f"{n} x {money(c)}" for c, n in notes)
            return f"{items} = {money(self.total(notes))}"

        parts = []
        if self.escrow:
            parts.append(f"in escrow: {show(self.escrow)}")
        if self.returned:
            parts.append(f"given back, take them: {show(self.returned)}")
        if not parts:
            parts.append("empty")
        return "; ".join(parts)


@dataclass(frozen=True)
class Notice:
    text: str
    error: bool = False


_MTI_NAMES = {
    "0100": "authorization",
    "0110": "authorization response",
    "0200": "financial request",
    "0210": "financial response",
    "0420": "reversal advice",
    "0421": "reversal advice repeat",
    "0430": "reversal response",
    "0800": "network management",
    "0810": "network management response",
}


def _summary(direction: str, message: Mapping[str, str]) -> str:
    mti = message.get("t", "????")
    arrow = "ATM -> HOST" if direction == "send" else "HOST -> ATM"
    parts = [arrow, mti, _MTI_NAMES.get(mti, "")]
    fields = safe_fields(dict(message))
    if "3" in fields:
        parts.append(f"proc {fields['3']}")
    if "11" in fields:
        parts.append(f"STAN {fields['11']}")
    if fields.get("4", "").isdigit() and int(fields["4"]):
        parts.append(money(int(fields["4"])))
    if "2" in fields:
        parts.append(fields["2"])
    if "39" in fields:
        parts.append(f"RC {fields['39']}")
    if "70" in fields:
        parts.append(f"code {fields['70']}")
    return " ".join(p for p in parts if p)


def _state_is_not(state: str) -> Callable[[FrontPanel], bool]:
    return lambda panel: panel.state != state


def track2_for(pan: str, expiry: str) -> str:
    """Track 2 for any card: PAN (12 to 19 digits) and expiry as YYMM or MM/YY."""
    pan = pan.replace(" ", "")
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise PanelError(f"a card number is 12 to 19 digits, got {len(pan)} characters")
    expiry = expiry.strip()
    if "/" in expiry:
        month, _, year = expiry.partition("/")
        expiry = f"{year.strip()[-2:]}{month.strip().zfill(2)}"
    if len(expiry) != 4 or not expiry.isdigit() or not 1 <= int(expiry[2:]) <= 12:
        raise PanelError("expiry is YYMM (e.g. 3012) or MM/YY (e.g. 12/30)")
    return f"{pan}={expiry}1010000000000000"


@dataclass
class LinkControls:
    """What the bench offers to disturb the host link (``atm.frontpanel.bench``)."""

    host_down: Callable[[], Awaitable[None]] | None = None
    host_up: Callable[[], Awaitable[None]] | None = None
    set_holding: Callable[[bool], None] | None = None  # requests lost on the way
    set_replies_held: Callable[[bool], None] | None = None  # answers kept back
    set_reply_delay: Callable[[float], None] | None = None  # a slow host


class FrontPanel:
    def __init__(
        self,
        controller: AtmController,
        sides: Mapping[str, DeviceSide],
        *,
        link: LinkControls | None = None,
        balance: Callable[[str], int] | None = None,
        host_label: str = "",
        log_size: int = 500,
        journal_size: int = 200,
    ) -> None:
        self.controller = controller
        self.sides = dict(sides)
        self.link_controls = link or LinkControls()
        self._balance = balance
        self.host_label = host_label or f"{controller.config.host}:{controller.config.port}"
        self.screen: Screen | None = controller.screen
        self.state: str = controller.state.value
        self.last_transition: Transition | None = None
        self.transitions: deque[Transition] = deque(maxlen=50)
        self.link_log: deque[LinkEntry] = deque(maxlen=log_size)
        self.journal_tail: deque[str] = deque(maxlen=journal_size)
        self.receipts: list[tuple[str, ...]] = []
        # The text of the QR code under each receipt ("" for none), receipt by receipt.
        self.receipt_qr: list[str] = []
        self.notices: deque[Notice] = deque(maxlen=50)
        self.host_down = False
        self.requests_held = False
        self.replies_held = False
        self.reply_delay = 0.0
        self.balances: dict[str, int] = {}
        self._link_number = 0
        self._subscribers: list[Callable[[Change], None]] = []
        self._waiters: list[tuple[Callable[[FrontPanel], bool], asyncio.Future[None]]] = []
        self._unsubscribe = controller.events.subscribe(self._on_event)

    # -- observing ------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def detach(self) -> None:
        """Stop observing the controller (the panel keeps what it saw); once is enough."""
        unsubscribe, self._unsubscribe = self._unsubscribe, lambda: None
        unsubscribe()

    async def wait_for(self, check: Callable[[FrontPanel], bool], timeout: float = 10.0) -> None:
        """Resolve once ``check(self)`` is true (checked now and after every change)."""
        if check(self):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (check, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def wait_for_screen(self, screen_id: str, timeout: float = 10.0) -> Screen:
        await self.wait_for(lambda p: p.screen is not None and p.screen.id == screen_id, timeout)
        assert self.screen is not None
        return self.screen

    def _changed(self, change: Change) -> None:
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:  # a broken view must not stop the ATM
                log.exception("front-panel subscriber failed on %s", change.value)
        for check, future in list(self._waiters):
            if not future.done() and check(self):
                future.set_result(None)

    def _on_event(self, event: DeviceEvent) -> None:
        now = dt.datetime.now(dt.UTC)
        if isinstance(event, ScreenShown):
            self.screen = event.screen
            self._changed(Change.SCREEN)
        elif isinstance(event, StateChangedEvent):
            self.state = event.dest
            self.last_transition = Transition(event.source, event.dest, now, event.trigger)
            self.transitions.append(self.last_transition)
            if event.dest == State.out_of_service.value and not self.controller.link.online:
                self.notify(
                    f"Host link down ({self.host_label}): the ATM is out of service and "
                    f"signs on again every {self.controller.config.reconnect_delay:g} s"
                )
            self._changed(Change.STATE)
        elif isinstance(event, LinkMessage):
            self._link_number += 1
            message = dict(event.message)
            self.link_log.append(
                LinkEntry(
                    self._link_number,
                    now,
                    event.direction,
                    message.get("t", "????"),
                    _summary(event.direction, message),
                    describe(message),
                )
            )
            self._changed(Change.LINK)
        elif isinstance(event, ReceiptPrinted):
            self.receipts.append(tuple(event.lines))
            self.receipt_qr.append(event.qr)
            self._changed(Change.RECEIPT)
            self._changed(Change.DEVICES)
        elif isinstance(event, JournalLine):
            self.journal_tail.append(event.line.rstrip("\n"))
            self._changed(Change.JOURNAL)
            # Journal lines mark every device step: cash, card and counters may have moved.
            self._changed(Change.DEVICES)

    def notify(self, text: str, *, error: bool = False) -> None:
        self.notices.append(Notice(text, error))
        self._changed(Change.NOTICE)

    # -- what a view shows ----------------------------------------------------------------
    @property
    def state_enum(self) -> State:
        return State(self.state)

    @property
    def in_supervisor_mode(self) -> bool:
        """The supervisor state, or one of its one-job states."""
        return self.state.startswith(State.supervisor.value)

    def side(self, kind: str) -> DeviceSide:
        try:
            return self.sides[kind]
        except KeyError:
            raise PanelError(f"no device {kind!r}; known: {', '.join(self.sides)}") from None

    def device_state(self, kind: str) -> SideState:
        return self.side(kind).state()

    def card_slot(self) -> str:
        """The card slot in words."""
        reader = self.side("card-reader")
        if not reader.acts:
            return "real card reader: insert and take cards at the device"
        position = reader.state().card_position
        return {
            "none": "empty",
            "": "unknown",
            "inside": "card inside the reader",
            "gate": "card at the slot: take it",
            "captured": "card captured",
        }.get(position, position)

    def cash_tray(self) -> list[tuple[int, int]]:
        """Notes in the exit tray: (denomination cents, count), largest first."""
        state = self.side("dispenser").state()
        denominations = dict(enumerate(d for d, _ in state.cassettes))
        if not denominations:
            denominations = {
                i: c.denomination_cents for i, c in enumerate(self.controller.config.cassettes)
            }
        notes: dict[int, int] = {}
        for index, count in state.tray.items():
            cents = denominations.get(index, 0)
            notes[cents] = notes.get(cents, 0) + count
        return sorted(notes.items(), reverse=True)

    def cash_tray_cents(self) -> int:
        return sum(d * n for d, n in self.cash_tray())

    @property
    def has_note_slot(self) -> bool:
        side = self.sides.get("bill-acceptor")
        return side is not None and side.acts

    @property
    def has_envelope_slot(self) -> bool:
        return "depository" in self.sides

    def note_slot(self) -> NoteSlot:
        """The bill acceptor's note slot: notes in escrow, notes given back at the entrance
        (to take), notes in the stacker."""
        side = self.sides.get("bill-acceptor")
        if side is None:
            return NoteSlot()
        state = side.state()
        return NoteSlot(
            _by_note(state.escrow),
            _by_note(state.returned),
            sorted(state.stacker.items(), reverse=True),
        )

    def envelope_slot(self) -> str:
        side = self.sides.get("depository")
        if side is None:
            return "no envelope slot on this ATM"
        state = side.state()
        faults = f" (faults {', '.join(state.faults)})" if state.faults else ""
        return f"{state.envelopes} envelope(s) in the bin{faults}"

    def counters(self) -> list[str]:
        """Per cassette: loaded, dispensed, rejected, retracted and remaining notes."""
        lines = []
        for index, c in sorted(self.controller.counters.cassettes.items()):
            lines.append(
                f"C{index} {money(c.denomination_cents)}: loaded {c.loaded}, dispensed "
                f"{c.dispensed}, rejected {c.rejected}, retracted {c.retracted}, "
                f"remaining {c.remaining}"
            )
        return lines

    def link_status(self) -> str:
        link = self.controller.link
        status = "online" if link.online else "offline"
        pending = link.pending_reversals()
        extra = [f"{pending} reversal(s) waiting"] if pending else []
        if self.host_down:
            extra.append("host stopped")
        if self.requests_held:
            extra.append("requests lost")
        if self.replies_held:
            extra.append("answers held")
        if self.reply_delay:
            extra.append(f"answers {self.reply_delay:g} s late")
        return f"{self.host_label} {status}" + (f" ({', '.join(extra)})" if extra else "")

    def link_entries(self, needle: str = "") -> list[LinkEntry]:
        return [e for e in self.link_log if e.matches(needle)]

    def balance(self, account: str) -> int | None:
        """An account's balance on the host now, when the host runs in this process (a
        database read: views use ``balances``, kept by ``refresh_balances``)."""
        return self._balance(account) if self._balance is not None else None

    async def refresh_balances(self, accounts: Iterable[str]) -> None:
        """Read the balances of ``accounts`` from the host (off the event loop)."""
        if self._balance is None:
            return
        wanted = list(accounts)
        read = self._balance
        found = await asyncio.to_thread(lambda: {a: read(a) for a in wanted})
        if found != self.balances:
            self.balances = found
            self._changed(Change.DEVICES)

    @property
    def has_host(self) -> bool:
        return self._balance is not None

    # -- a person's actions ---------------------------------------------------------------
    async def _act(self, kind: str, line: str) -> str:
        reply = await self.side(kind).command(line)
        if reply.startswith("error"):
            self.notify(f"{kind}: {reply}", error=True)
        self._changed(Change.DEVICES)
        return reply

    async def press(self, *keys: str) -> str:
        """Keys on the PIN pad: digits, ENTER, CLEAR, CANCEL, F1..F8."""
        for key in keys:
            if key.upper() not in KEYS:
                raise PanelError(f"no key {key!r} on the PIN pad; keys: {' '.join(KEYS)}")
        return await self._act("pin-pad", "press " + " ".join(k.upper() for k in keys))

    async def type_pin(self, digits: str) -> str:
        if not digits.isdigit():
            raise PanelError("a PIN is digits only")
        return await self.press(*digits, "ENTER")

    async def insert_card(self, name: str) -> str:
        """A seeded card by name (alice, bob, charlie, expired, stolen)."""
        if name not in TRACKS:
            raise PanelError(f"no seeded card {name!r}; known: {', '.join(TRACKS)}")
        return await self._act("card-reader", f"insert {TRACKS[name]}")

    async def insert_pan(self, pan: str, expiry: str) -> str:
        """Any card: PAN and expiry (YYMM or MM/YY)."""
        track2 = track2_for(pan, expiry)
        self.notify(f"card {mask_pan(track2.split('=')[0])} inserted")
        return await self._act("card-reader", f"insert {track2}")

    async def take_card(self) -> str:
        return await self._act("card-reader", "take card")

    async def take_cash(self) -> str:
        return await self._act("dispenser", "take cash")

    async def insert_notes(self, *cents: int) -> str:
        """Notes pushed into the bill acceptor's slot, one after the other (cents each)."""
        if not cents or any(not isinstance(c, int) or c <= 0 for c in cents):
            raise PanelError("notes are given as positive amounts in cents (2000 = $20)")
        if not self.has_note_slot:
            raise PanelError("this ATM has no note slot the customer can use from here")
        return await self._act("bill-acceptor", "note " + " ".join(str(c) for c in cents))

    async def take_notes(self) -> str:
        """Take the notes the bill acceptor gave back at its slot."""
        if not self.has_note_slot:
            raise PanelError("this ATM has no note slot the customer can use from here")
        return await self._act("bill-acceptor", "take notes")

    async def insert_envelope(self) -> str:
        """An envelope into the depository's slot (check deposits)."""
        if not self.has_envelope_slot:
            raise PanelError("this ATM has no envelope slot")
        return await self._act("depository", "envelope")

    async def inject(self, kind: str, fault: str, arg: str | None = None) -> str:
        side = self.side(kind)
        if side.fault_names and fault not in side.fault_names:
            raise PanelError(
                f"the {kind} has no fault {fault!r}; known: {', '.join(side.fault_names)}"
            )
        reply = await self._act(kind, f"inject {fault}" + (f" {arg}" if arg else ""))
        if reply.startswith("ok"):
            self.notify(f"{kind}: fault {fault} injected")
        return reply

    async def clear(self, kind: str, fault: str | None = None) -> str:
        reply = await self._act(kind, "clear" + (f" {fault}" if fault else ""))
        if reply.startswith("ok"):
            self.notify(f"{kind}: {reply[3:]}")
        return reply

    async def supervisor_switch(self) -> None:
        """Turn the supervisor key: in (honoured when idle, out of service or in a fault) or,
        in supervisor mode, out (the same as F8)."""
        if self.in_supervisor_mode:
            await self.press("F8")
            return
        if self.state_enum not in (State.idle, State.out_of_service, State.fault):
            self.notify(f"supervisor mode starts once the ATM is idle (now {self.state})")
        self.controller.enter_supervisor()

    async def replenish(self) -> str:
        """The operator refills the cassettes to their configured load, then presses F1."""
        dispenser = self.side("dispenser")
        if isinstance(dispenser, LocalSide) and hasattr(dispenser.device, "cassettes"):
            for cassette, loaded in zip(
                dispenser.device.cassettes, self.controller.config.cassettes, strict=False
            ):
                cassette.count = loaded.count
        else:
            self.notify("the cassettes of this dispenser are filled at the device")
        return await self.press("F1")

    # -- link faults ----------------------------------------------------------------------
    async def set_host_down(self, down: bool) -> None:
        action = self.link_controls.host_down if down else self.link_controls.host_up
        if action is None:
            raise PanelError("stopping the host needs the host to run in this console")
        await action()
        self.host_down = down
        self.notify("host stopped" if down else "host started")
        self._changed(Change.DEVICES)

    def set_requests_held(self, held: bool) -> None:
        if self.link_controls.set_holding is None:
            raise PanelError("losing requests needs the console's link relay")
        self.link_controls.set_holding(held)
        self.requests_held = held
        self.notify("requests to the host are lost" if held else "requests reach the host")
        self._changed(Change.DEVICES)

    def set_replies_held(self, held: bool) -> None:
        if self.link_controls.set_replies_held is None:
            raise PanelError("holding answers needs the console's link relay")
        self.link_controls.set_replies_held(held)
        self.replies_held = held
        self.notify("the host's answers are held back" if held else "the host's answers flow")
        self._changed(Change.DEVICES)

    def set_reply_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise PanelError("a delay is 0 seconds or more")
        if self.link_controls.set_reply_delay is None:
            raise PanelError("a slow host needs the console's link relay")
        self.link_controls.set_reply_delay(seconds)
        self.reply_delay = seconds
        self.notify(f"the host answers {seconds:g} s late" if seconds else "the host answers")
        self._changed(Change.DEVICES)

    async def refresh_devices(self) -> None:
        for side in self.sides.values():
            await side.refresh()
        self._changed(Change.DEVICES)

    # -- quitting -------------------------------------------------------------------------
    async def settle(self, timeout: float | None = None) -> bool:
        """Bring the ATM to rest before quitting, as the customer walking away would: a PIN
        or menu is cancelled, a card at the slot is taken back, supervisor mode is left, and
        cash in the tray is left to the ATM, which retracts it and reverses the withdrawal
        when its timeout runs out. Returns whether the ATM came to rest in time."""
        config = self.controller.config
        if timeout is None:
            timeout = (
                config.cash_take_timeout
                + config.card_take_timeout
                + config.key_timeout
                + config.response_timeout
                + 10.0
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        told_cash = False
        while self.state_enum not in AT_REST:
            state = self.state_enum
            if state in CUSTOMER_STATES:
                await self.press("CANCEL")
            elif state is State.returning_card:
                await self.take_card()
            elif state is State.supervisor or state is State.more_time:
                await self.press("F8")
            elif state is State.presenting_cash and not told_cash:
                told_cash = True
                self.notify(
                    "Quitting: the cash was not taken; the ATM retracts it and reverses the "
                    f"withdrawal within {config.cash_take_timeout:g} s"
                )
            before = self.state
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await self.wait_for(_state_is_not(before), min(left, 5.0))
            except TimeoutError:
                continue
        return True

    def summary(self) -> list[str]:
        """A few lines for the terminal after the console closes."""
        lines = [f"ATM {self.controller.config.terminal_id}: {self.state}"]
        pending = self.controller.link.pending_reversals()
        if pending:
            lines.append(f"{pending} reversal(s) still queued (sent at the next start)")
        return lines
