"""The ATM controller: the machine's model and the owner of its one event queue.

How it runs (STYLE, "transitions"): the states and transitions are data (``device.states``);
entering a state starts that state's *activity* (``device.activities.ACTIVITIES``), a task that
talks to drivers or the host and ends by posting one event to the queue. The run loop takes
events one at a time and fires them as triggers. No callback ever fires a trigger itself, and
timeouts live in the driver calls (their lengths per state are data: ``device.states.TIMEOUTS``),
so the machine never sees concurrent triggers.

This module keeps what every activity shares: the session, the journal, the cash counters, the
host link, the current screen, the conditions the table checks, restart recovery, and the
public API (``post``, ``run``, ``wait_for_state``, ``enter_supervisor``, ``recover``, the
supervisor's reports). What a state *does* is in ``device.activities``.

Money safety: the electronic journal (fsync'd per line) records every step of a withdrawal
before it happens where it cannot be undone (``TXN_REQUEST`` before the request, ``DISPENSE_START``
with the cassette counts before the dispense command, the result right after it). On start,
``device.recovery`` reads it and every approved withdrawal whose cash did not (all) leave gets a
reversal through ``HostLink.queue_reversal``, journaled as ``REVERSAL_QUEUED`` so it is never
queued twice.

Supervisor mode: ``enter_supervisor()`` (for a console's supervisor switch) moves an idle, out of
service or faulted ATM into the ``supervisor`` state; the operator then uses the keypad
(``device.states.SUPERVISOR_KEYS``): F1 replenish, F2 print counters, F3 reset counters, F4
journal, F5 balancing report, F6/F7 settle suspects, F8 leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from transitions.core import MachineError
from transitions.extensions.asyncio import AsyncMachine

from device import restart
from device.activities import ACTIVITIES, Activity, operator
from device.cash import CashCounters, Level, cassette_level, usable_cassettes
from device.config import DeviceConfig
from device.errors import DeviceError
from device.events import EventBus, JournalLine, LinkMessage, ScreenShown, StateChanged
from device.hostlink import HostLink
from device.journal import Journal, JournalDamaged, JournalRecord, read_records
from device.recovery import Suspect
from device.saf import SafDamaged, SafQueue
from device.screens import Screen
from device.session import Session
from device.states import TIMEOUTS, TRANSITIONS, State
from drivers.errors import DriverError
from drivers.interfaces import (
    BillAcceptor,
    CardReader,
    CashDispenser,
    CassetteStatus,
    EnvelopeDepository,
    PinPad,
    ReceiptPrinter,
)
from protocol.messages import Message, TransactionType
from protocol.response_codes import ResponseCode, ReversalReason
from protocol.stan import StanGenerator

__all__ = ["AtmController", "Devices", "Session"]

Device = CardReader | PinPad | CashDispenser | ReceiptPrinter | BillAcceptor | EnvelopeDepository

log = logging.getLogger(__name__)
_STOP = "__stop__"  # queued by stop(): not a trigger of the machine

Clock = Callable[[], dt.datetime]


def _configured(_state: State, seconds: float) -> float:
    return seconds


@dataclass
class Devices:
    card_reader: CardReader
    pin_pad: PinPad
    dispenser: CashDispenser
    printer: ReceiptPrinter
    # The fifth device, for deposits; an ATM without one offers no cash deposit.
    bill_acceptor: BillAcceptor | None = None
    # The envelope slot for check deposits; an ATM without one offers no check deposit.
    depository: EnvelopeDepository | None = None

    def all(self) -> list[Device]:
        fitted: list[Device] = [
            self.card_reader,
            self.pin_pad,
            self.dispenser,
            self.printer,
        ]
        if self.bill_acceptor is not None:
            fitted.append(self.bill_acceptor)
        if self.depository is not None:
            fitted.append(self.depository)
        return fitted


class AtmController:
    """The machine's model: the state, the session and what every activity shares (journal,
    counters, host link, screen), and the one event queue that fires every trigger."""

    def __init__(
        self,
        config: DeviceConfig,
        devices: Devices,
        *,
        clock: Clock | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.config = config
        self.devices = devices
        self.events = events or EventBus()
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.journal = Journal(config.journal_path, config.terminal_id, self._clock)
        self.journal.listeners.append(lambda line: self.events.publish(JournalLine(line)))
        self.counters = CashCounters(config.counters_path, load=False)  # loaded by recover()
        self.stan = StanGenerator(self._last_stan())
        self.link = HostLink(
            config,
            self.stan,
            clock=self._clock,
            tap=self._on_link_message,
            on_pin_key=devices.pin_pad.load_working_key,
            on_reversal_queued=self._link_reversed,
            # A damaged line does not stop the constructor: run() reports it (fault state).
            saf=SafQueue(config.saf_path, tolerant=True),
        )
        # A damaged journal or store-and-forward line the operator has not accepted yet.
        self.damage: JournalDamaged | SafDamaged | None = None
        self.session = Session()
        self.screen: Screen | None = None
        # Why the ATM is in the fault state, and whether cash service is off after a
        # dispenser fault; both are cleared by the supervisor.
        self.fault_reason = ""
        self.cash_fault = ""
        # Why cash deposits are off (acceptor fault, notes left at the entrance); cleared by
        # the supervisor like ``cash_fault``.
        self.deposit_fault = ""
        self.depository_fault = ""
        # How long a person gets in a state, from the configured seconds: those seconds unless
        # whoever drives the ATM knows better (a scenario runner lends a customer who is about
        # to act all the time in the world, so that a slow machine cannot turn "takes the
        # cash" into "walked away": atm.scenario.patience).
        self.patience: Callable[[State, float], float] = _configured
        self._levels: dict[int, Level] = {}
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._activity: asyncio.Task[None] | None = None
        self._state_waiters: list[tuple[State, asyncio.Future[None]]] = []
        # The state the machine came from (None before the first transition): an activity
        # may behave differently when re-entered from one of its own sub-states.
        self.previous_state: State | None = None
        self.state: State
        # Added to the model by AsyncMachine; declared for the type checker.
        self.trigger: Callable[..., Awaitable[bool]]
        self.machine = AsyncMachine(
            model=self,
            states=State,
            transitions=TRANSITIONS,
            initial=State.out_of_service,
            auto_transitions=False,
            send_event=True,
            after_state_change="_entered",
        )
        missing = [state.value for state in State if state not in ACTIVITIES]
        if missing:
            raise DeviceError(f"states without an activity: {', '.join(missing)}")

    # -- public API ----------------------------------------------------------------------
    def post(self, event: str, **data: Any) -> None:
        """Queue an event for the machine (the only way anything fires a trigger)."""
        self._queue.put_nowait((event, data))

    def stop(self) -> None:
        """End ``run()`` between two events (never inside a trigger, where transitions would
        log the cancellation as an error): the running activity is cancelled, the link and
        devices closed, SHUTDOWN journaled. A transaction cut short is settled by restart
        recovery at the next start, as after a power cut."""
        self._queue.put_nowait((_STOP, {}))

    def enter_supervisor(self) -> None:
        """The supervisor switch: honoured when idle, out of service or in a fault."""
        self.post("supervisor_requested")

    async def run(self) -> None:
        """Run until cancelled."""
        for device in self.devices.all():
            await device.open()
        self.journal.write("STARTUP", state=self.state.value)
        for line in self.config.widened:
            log.warning("production-safety guard: %s", line)
            self.journal.write("GUARD_WIDENED", detail=line)
        await self.recover_or_fault()
        self._start_activity()
        try:
            while True:
                event, data = await self._queue.get()
                if event == _STOP:
                    break
                source = self.state
                try:
                    await self.trigger(event, **data)
                except MachineError as exc:
                    log.warning("event %s ignored in state %s: %s", event, source.value, exc)
        finally:
            if self._activity is not None:
                self._activity.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._activity
            await self.link.close()
            for device in self.devices.all():
                await device.close()
            self.journal.write("SHUTDOWN")
            self.journal.close()

    async def wait_for_state(self, state: State) -> None:
        """Resolve when the machine next enters ``state`` (or now, if it is there)."""
        if self.state is state:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._state_waiters.append((state, future))
        await future

    def journal_records(self) -> list[JournalRecord]:
        return read_records(self.config.journal_path)

    async def recover(self) -> None:
        """Settle what a killed predecessor left (``device.restart``): counters replayed
        once, a card left inside retained or ejected, notes in the tray retracted, an
        unconfirmed retract resolved, then reversals (once each) and suspects. A damaged
        journal or store-and-forward line raises ``JournalDamaged``/``SafDamaged``."""
        if self.link.saf.damage:
            raise self.link.saf.damage[0]
        outcome = await restart.recover(
            self.config,
            self.journal,
            self.counters,
            self.devices.dispenser,
            self.devices.card_reader,
            self.link.queue_reversal,
            self.devices.bill_acceptor,
        )
        if outcome.cash_fault:
            self.cash_fault = outcome.cash_fault
        if outcome.deposit_fault:
            self.deposit_fault = outcome.deposit_fault
        if outcome.fault:
            self.fault_reason = outcome.fault
            self.post("fault")

    async def recover_or_fault(self) -> None:
        """``recover``, and the fault state (with one clear line) when it cannot."""
        self.damage = None
        try:
            await self.recover()
        except (JournalDamaged, SafDamaged) as exc:
            # One line naming the file and line (no traceback): nothing more to see.
            log.error("%s", exc)
            self.damage = exc
            kind = "journal" if isinstance(exc, JournalDamaged) else "store-and-forward"
            self.fault_reason = f"{kind} line {exc.line} damaged"
            self.journal.write(
                "FILE_DAMAGED", file=exc.path.name, line=exc.line, why=exc.why, digest=exc.digest
            )
            # No "fault" here: out_of_service sends an ATM with unaccepted damage there.
        except (DriverError, DeviceError) as exc:
            # Without a dispenser status or readable counters the cash cannot be trusted.
            log.exception("restart recovery failed")
            self.fault_reason = "recovery failed"
            self.journal.write("RECOVERY_FAILED", error=f"{type(exc).__name__}: {exc}")
            self.post("fault")

    def accept_damage(self) -> str:
        """The operator accepted the damaged line (supervisor ENTER): it is skipped from now
        on and stays in its file; after a store-and-forward line, every reversal the journal
        records is queued again. What the operator is told."""
        damage = self.damage
        if damage is None:
            return "No damaged file"
        if isinstance(damage, JournalDamaged):
            self.journal.accept_damage(damage)
        else:
            SafQueue.accept_damage(damage)
            self.link.saf.damage.remove(damage)
            self.journal.write(
                "SAF_DAMAGE_ACCEPTED", line=damage.line, digest=damage.digest, by="operator"
            )
            restart.requeue_reversals(self.journal, self.link.queue_reversal)
        self.damage = None
        return f"Line {damage.line} accepted (kept in file)"

    # -- reports (supervisor mode; see device.activities.operator) -------------------------
    async def counters_report(self) -> list[str]:
        """Per cassette: loaded, dispensed, rejected, retracted (the supervisor's F2)."""
        return await operator.counters_report(self)

    def suspects(self) -> list[Suspect]:
        """Withdrawals whose dispense outcome is unknown and not yet settled (journal)."""
        return operator.suspects(self)

    async def balancing_report(self) -> list[str]:
        """loaded - dispensed - rejected - retracted = remaining, against the dispenser; then
        every suspect withdrawal the operator must settle (the supervisor's F5)."""
        return await operator.balancing_report(self)

    async def settle_suspects(self, *, dispensed: bool) -> list[str]:
        """Settle every open suspect as dispensed (F7) or not dispensed, reversed (F6)."""
        return await operator.settle_suspects(self, dispensed=dispensed)

    # -- what activities use ---------------------------------------------------------------
    def show(self, screen: Screen) -> None:
        self.screen = screen
        self.events.publish(ScreenShown(screen))

    def now(self) -> dt.datetime:
        return self._clock()

    def person_timeout(self) -> float:
        """How long the current state waits for a person (``device.states.TIMEOUTS``)."""
        name, _ = TIMEOUTS[self.state]
        return self.patience(self.state, float(getattr(self.config, name)))

    async def cassettes(self) -> list[CassetteStatus]:
        """The dispenser's cassettes; a change of fill level is journaled once."""
        status = await self.devices.dispenser.status()
        for c in status:
            level = cassette_level(c, self.config.near_empty_notes, self.config.empty_notes)
            if self._levels.get(c.index, Level.OK) is not level:
                self.journal.write("CASSETTE_LEVEL", cassette=c.index, level=level, count=c.count)
            self._levels[c.index] = level
        return status

    async def cash_available(self) -> bool:
        if self.cash_fault:
            return False
        return bool(usable_cassettes(await self.cassettes(), self.config.empty_notes))

    def reverse_session(self, dispensed_cents: int, reason: str) -> None:
        """Queue a reversal of the session's transaction (once) and journal it."""
        s = self.session
        if not self.link.queue_reversal(dict(s.original), dispensed_cents, reason):
            self.journal.write("REVERSAL_NOT_REPEATED", stan=s.stan, why="already queued")
            return
        self.journal.write(
            "REVERSAL_QUEUED",
            stan=s.stan,
            amount=s.amount_cents,
            dispensed=dispensed_cents,
            reason=reason,
        )

    # -- conditions (pure checks) ---------------------------------------------------------
    def has_pending_transaction(self, _event: Any = None) -> bool:
        return (
            self.session.transaction is not None
            and self.session.response is ResponseCode.INCORRECT_PIN
        )

    def needs_amount(self, _event: Any = None) -> bool:
        return self.session.transaction in (TransactionType.WITHDRAWAL, TransactionType.TRANSFER)

    def is_cash_deposit(self, _event: Any = None) -> bool:
        return self.session.transaction is TransactionType.DEPOSIT

    def deposit_available(self) -> bool:
        return self.devices.bill_acceptor is not None and not self.deposit_fault

    def check_deposit_available(self) -> bool:
        return self.devices.depository is not None and not self.depository_fault

    def is_check_deposit(self, _event: Any = None) -> bool:
        return self.session.transaction is TransactionType.CHECK_DEPOSIT

    def is_transfer(self, _event: Any = None) -> bool:
        return self.session.transaction is TransactionType.TRANSFER

    def cash_session_over(self, _event: Any = None) -> bool:
        return self.session.end_session

    def offers_more_time(self, _event: Any = None) -> bool:
        return self.config.more_time_seconds > 0

    # -- machine plumbing -----------------------------------------------------------------
    async def _entered(self, event: Any) -> None:
        source = event.transition.source
        self.previous_state = State(source)
        self.events.publish(StateChanged(source, self.state.value, event.event.name))
        for waiter in list(self._state_waiters):
            if waiter[0] is self.state:
                self._state_waiters.remove(waiter)
                if not waiter[1].done():
                    waiter[1].set_result(None)
        self._start_activity()

    def _start_activity(self) -> None:
        previous = self._activity
        if previous is not None and not previous.done():
            previous.cancel()
        self._activity = asyncio.create_task(self._guard(ACTIVITIES[self.state]))

    async def _guard(self, activity: Activity) -> None:
        try:
            await activity(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("activity of %s failed", self.state.value)
            self.fault_reason = f"{type(exc).__name__} in {self.state.value}"
            self.journal.write("FAULT", state=self.state.value, error=type(exc).__name__)
            self.post("fault")

    def _on_link_message(self, direction: str, message: Message) -> None:
        self.events.publish(LinkMessage(direction, dict(message)))

    def _last_stan(self) -> int:
        # Damaged lines are left out here; recovery reports them.
        for record in reversed(read_records(self.config.journal_path, tolerant=True)):
            if record.get("stan", "").isdigit():
                return int(record["stan"])
        return 0

    def _link_reversed(self, original: Message, dispensed_cents: int, reason: str) -> None:
        """HostLink reversed a request by itself (no answer in time, or an approval that came
        too late): the journal tells it like the controller's own reversals (DESIGN 7.5)."""
        why = {
            ReversalReason.TIMEOUT: "no valid answer in time",
            ReversalReason.LATE_RESPONSE: "approval arrived too late",
        }.get(reason, "reversed by the host link")
        amount = original.get("4", "0")
        self.journal.write(
            "REVERSAL_QUEUED",
            stan=original.get("11", ""),
            amount=int(amount) if amount.isdigit() else 0,
            dispensed=dispensed_cents,
            reason=reason,
            by="link",
            why=why,
        )
