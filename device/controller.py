"""The ATM controller: a ``transitions`` AsyncMachine driven by one event queue.

How it runs (STYLE, "transitions"): entering a state starts that state's *activity*, a task that
talks to drivers or the host and ends by posting one event to the queue. The run loop takes
events one at a time and fires them as triggers. No callback ever fires a trigger itself, and
timeouts live in the driver calls (their lengths per state are data: ``device.states.TIMEOUTS``),
so the machine never sees concurrent triggers.

Money safety: the electronic journal (fsync'd per line) records every step of a withdrawal
before it happens where it cannot be undone (``TXN_REQUEST`` before the request, ``DISPENSE_START``
with the cassette counts before the dispense command, the result right after it). On start,
``device.recovery`` reads it and every approved withdrawal whose cash did not (all) leave gets a
reversal through ``HostLink.queue_reversal``, journaled as ``REVERSAL_QUEUED`` so it is never
queued twice.

Supervisor mode: ``enter_supervisor()`` (for a console's supervisor switch) moves an idle, out of
service or faulted ATM into the ``supervisor`` state; the operator then uses the keypad: F1
replenish, F2 print counters, F3 reset counters, F4 journal, F5 balancing report, F8 leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from transitions.core import MachineError
from transitions.extensions.asyncio import AsyncMachine

from device import screens as S
from device.cash import CashCounters, Level, cassette_level, mix_notes, usable_cassettes, value_of
from device.config import DeviceConfig
from device.errors import CashError, DeviceError
from device.events import (
    EventBus,
    JournalLine,
    LinkMessage,
    ReceiptPrinted,
    ScreenShown,
    StateChanged,
)
from device.hostlink import HostLink, ReversalReason
from device.journal import Journal, JournalRecord, read_records
from device.receipt import ReceiptData, layout_receipt
from device.recovery import Suspect, find_suspects, find_unfinished, format_notes
from device.screens import Screen, money
from device.statement import StatementError, parse_mini_statement
from device.states import TIMEOUTS, TRANSITIONS, State
from drivers.errors import (
    CancelledByCustomer,
    CardReaderFault,
    DeviceTimeout,
    DispenserFault,
    DriverError,
)
from drivers.interfaces import (
    CardData,
    CardReader,
    CashDispenser,
    CassetteStatus,
    PinBlock,
    PinPad,
    ReceiptPrinter,
)
from protocol.errors import LinkError
from protocol.masking import mask_pan
from protocol.messages import (
    AccountType,
    Message,
    Mti,
    TransactionType,
    format_amount,
    format_processing_code,
    parse_balances,
)
from protocol.response_codes import ResponseCode
from protocol.stan import StanGenerator

__all__ = ["AtmController", "Devices", "Session"]

log = logging.getLogger(__name__)
_STOP = "__stop__"  # queued by stop(): not a trigger of the machine

Clock = Callable[[], dt.datetime]

ACCOUNT_NAMES = {AccountType.CHECKING: "Checking", AccountType.SAVINGS: "Savings"}
TRANSACTION_NAMES = {
    TransactionType.WITHDRAWAL: "WITHDRAWAL",
    TransactionType.BALANCE_INQUIRY: "BALANCE INQUIRY",
    TransactionType.TRANSFER: "TRANSFER",
    TransactionType.PIN_CHANGE: "PIN CHANGE",
}

_CARD_DECLINES = frozenset(
    {ResponseCode.PIN_TRIES_EXCEEDED, ResponseCode.EXPIRED_CARD, ResponseCode.INVALID_CARD}
)


@dataclass
class Devices:
    card_reader: CardReader
    pin_pad: PinPad
    dispenser: CashDispenser
    printer: ReceiptPrinter

    def all(self) -> list[CardReader | PinPad | CashDispenser | ReceiptPrinter]:
        return [self.card_reader, self.pin_pad, self.dispenser, self.printer]


@dataclass
class Session:
    """One card session: everything the controller knows about the customer at the ATM.

    ``card`` and ``pin_block`` live for the whole card session; the other fields describe the
    current transaction and are reset when the customer starts another one.
    """

    card: CardData | None = None
    pin_block: PinBlock | None = None
    transaction: TransactionType | None = None
    account: AccountType = AccountType.DEFAULT
    to_account: AccountType | None = None
    amount_cents: int = 0
    notes: dict[int, int] = field(default_factory=dict)
    new_pin_block: PinBlock | None = None
    stan: str = ""
    response: ResponseCode | None = None
    rrn: str = ""
    auth_code: str = ""
    balance_cents: int | None = None
    statement: tuple[str, ...] = ()
    message: str = ""
    dispensed_cents: int = 0
    presented: dict[int, int] = field(default_factory=dict)
    partial: bool = False
    receipt_note: str = ""
    receipt_wanted: bool = False
    end_session: bool = False
    # The dispense outcome is unknown and could not be established: left to the operator.
    suspect: bool = False
    original: Message = field(default_factory=dict)

    def new_transaction(self) -> None:
        fresh = Session(card=self.card, pin_block=self.pin_block)
        self.__dict__.update(fresh.__dict__)


class AtmController:
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
        )
        self.session = Session()
        self.screen: Screen | None = None
        # Why the ATM is in the fault state, and whether cash service is off after a
        # dispenser fault; both are cleared by the supervisor.
        self.fault_reason = ""
        self.cash_fault = ""
        self._levels: dict[int, Level] = {}
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._activity: asyncio.Task[None] | None = None
        self._state_waiters: list[tuple[State, asyncio.Future[None]]] = []
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
        self._activities: dict[State, Callable[[], Awaitable[None]]] = {
            state: getattr(self, f"_{state.value}") for state in State
        }

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
        try:
            await self.recover()
        except (DriverError, DeviceError) as exc:
            # Without a dispenser status or readable counters the cash cannot be trusted.
            log.exception("restart recovery failed")
            self.fault_reason = "recovery failed"
            self.journal.write("RECOVERY_FAILED", error=f"{type(exc).__name__}: {exc}")
            self.post("fault")
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
        """Turn what a killed predecessor left unfinished into reversals (once each)."""
        self.counters.load()
        status = await self.devices.dispenser.status()
        self.counters.ensure_loaded(status)
        for item in find_unfinished(self.journal_records(), status):
            if item.suspect:
                self.cash_fault = "dispense outcome unknown"
                self.journal.write(
                    "DISPENSE_SUSPECT",
                    stan=item.stan,
                    amount=item.amount_cents,
                    notes="-",
                    recovered="yes",
                    why=item.note,
                )
                continue
            if item.counted_out:
                self.counters.add("dispensed", item.counted_out)
            if not item.needs_reversal:
                self.journal.write(
                    "RECOVERY_NO_REVERSAL", stan=item.stan, amount=item.amount_cents, why=item.note
                )
                continue
            queued = self.link.queue_reversal(item.original, item.dispensed_cents, item.reason)
            self.journal.write(
                "REVERSAL_QUEUED",
                stan=item.stan,
                amount=item.amount_cents,
                dispensed=item.dispensed_cents,
                reason=item.reason,
                recovered="yes",
                why=item.note if queued else "already in the store-and-forward queue",
            )

    # -- conditions (pure checks) ---------------------------------------------------------
    def has_pending_transaction(self, _event: Any = None) -> bool:
        return (
            self.session.transaction is not None
            and self.session.response is ResponseCode.INCORRECT_PIN
        )

    def needs_amount(self, _event: Any = None) -> bool:
        return self.session.transaction in (TransactionType.WITHDRAWAL, TransactionType.TRANSFER)

    def is_transfer(self, _event: Any = None) -> bool:
        return self.session.transaction is TransactionType.TRANSFER

    def cash_session_over(self, _event: Any = None) -> bool:
        return self.session.end_session

    # -- machine plumbing -----------------------------------------------------------------
    async def _entered(self, event: Any) -> None:
        source = event.transition.source
        self.events.publish(StateChanged(source, self.state.value))
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
        self._activity = asyncio.create_task(self._guard(self._activities[self.state]))

    async def _guard(self, activity: Callable[[], Awaitable[None]]) -> None:
        try:
            await activity()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("activity of %s failed", self.state.value)
            self.fault_reason = f"{type(exc).__name__} in {self.state.value}"
            self.journal.write("FAULT", state=self.state.value, error=type(exc).__name__)
            self.post("fault")

    def _timeout(self) -> float:
        name, _ = TIMEOUTS[self.state]
        return float(getattr(self.config, name))

    def show(self, screen: Screen) -> None:
        self.screen = screen
        self.events.publish(ScreenShown(screen))

    def _on_link_message(self, direction: str, message: Message) -> None:
        self.events.publish(LinkMessage(direction, dict(message)))

    def _last_stan(self) -> int:
        for record in reversed(self.journal_records()):
            if record.get("stan", "").isdigit():
                return int(record["stan"])
        return 0

    # -- cash -------------------------------------------------------------------------------
    async def _cassettes(self) -> list[CassetteStatus]:
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
        return bool(usable_cassettes(await self._cassettes(), self.config.empty_notes))

    async def _cash_problem(self, cents: int) -> str:
        if cents > self.config.max_withdrawal_cents:
            return f"Maximum per withdrawal is {money(self.config.max_withdrawal_cents)}"
        cassettes = usable_cassettes(await self._cassettes(), self.config.empty_notes)
        try:
            self.session.notes = mix_notes(cents, cassettes)
        except CashError:
            return f"{money(cents)} cannot be dispensed; choose another amount"
        return ""

    # -- host requests --------------------------------------------------------------------
    def _request_message(self) -> Message:
        s = self.session
        assert s.card is not None and s.transaction is not None and s.pin_block is not None
        mti = (
            Mti.AUTHORIZATION_REQUEST
            if s.transaction is TransactionType.BALANCE_INQUIRY
            else Mti.FINANCIAL_REQUEST
        )
        s.stan = self.stan.next()
        message = self.link.base_message(mti, s.stan)
        if s.transaction is TransactionType.PIN_CHANGE:
            processing = format_processing_code(s.transaction)
        else:
            processing = format_processing_code(
                s.transaction, s.account, s.to_account or AccountType.DEFAULT
            )
        message.update(
            {
                "2": s.card.pan,
                "3": processing,
                "4": format_amount(s.amount_cents),
                "35": s.card.track2,
                "49": self.config.currency,
                "52": s.pin_block.ciphertext.hex().upper(),
            }
        )
        if s.transaction is TransactionType.PIN_CHANGE and s.new_pin_block is not None:
            message["48"] = s.new_pin_block.ciphertext.hex().upper()
        # What a reversal needs (and what the journal keeps): never the PAN or track data.
        s.original = {k: message[k] for k in ("t", "3", "4", "7", "11", "41", "42", "49")}
        return message

    def _queue_reversal(self, dispensed_cents: int, reason: str) -> None:
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

    # -- activities, one per state --------------------------------------------------------
    async def _out_of_service(self) -> None:
        self.show(S.out_of_service())
        # Retry with a fixed back-off until the host answers the sign-on (which, with the
        # store-and-forward queue, drains pending reversals first).
        while True:
            if await self.link.ensure_online():
                break
            await asyncio.sleep(self.config.reconnect_delay)
        self.journal.write("SIGNED_ON", host=f"{self.config.host}:{self.config.port}")
        self.post("signed_on")

    async def _idle(self) -> None:
        self.session = Session()
        self.show(S.welcome())
        card = asyncio.create_task(self.devices.card_reader.accept_card())
        try:
            while True:
                done, _ = await asyncio.wait({card}, timeout=self.config.idle_echo_interval)
                if done:
                    card.result()
                    self.post("card_inserted")
                    return
                if not await self.link.echo():
                    self.journal.write("LINK_DOWN", reason="echo test failed")
                    self.post("link_down")
                    return
        finally:
            if not card.done():
                card.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await card

    async def _reading_card(self) -> None:
        self.show(S.reading_card())
        try:
            card = await self.devices.card_reader.read_card()
        except CardReaderFault as exc:
            if exc.code == "jam":
                self.fault_reason = "card jam"
                self.journal.write("CARD_JAM", error=str(exc))
                self.post("card_jammed")
                return
            self.journal.write("CARD_UNREADABLE", error=exc.code or str(exc))
            self.session.message = "Your card cannot be read"
            self.post("read_failed")
            return
        self.session.card = card
        self.journal.write("SESSION_START", pan=mask_pan(card.pan))
        self.post("card_read")

    async def _pin_entry(self) -> None:
        assert self.session.card is not None
        retry = self.session.response is ResponseCode.INCORRECT_PIN
        self.show(S.enter_pin(0, retry))
        try:
            block = await self.devices.pin_pad.read_pin(
                self.session.card.pan,
                self._timeout(),
                on_key=lambda n: self.show(S.enter_pin(n, retry)),
            )
        except CancelledByCustomer:
            self.journal.write("CANCELLED", state=self.state.value)
            self.post("cancel")
            return
        except DeviceTimeout:
            self.journal.write("TIMEOUT", state=self.state.value)
            self.session.message = "No PIN entered in time"
            self.post("timeout")
            return
        self.session.pin_block = block
        self.journal.write("PIN_ENTERED", format=block.format)
        self.post("pin_entered")

    async def _read_choice(self, choices: dict[str, str]) -> str | None:
        """Wait for one of ``choices`` (key -> result); CANCEL and timeouts post themselves."""
        while True:
            try:
                key = await self.devices.pin_pad.read_key(self._timeout())
            except DeviceTimeout:
                self.journal.write("TIMEOUT", state=self.state.value)
                self.session.message = "No selection made in time"
                self.post("timeout")
                return None
            if key == "CANCEL":
                self.journal.write("CANCELLED", state=self.state.value)
                self.post("cancel")
                return None
            if key in choices:
                return choices[key]

    async def _main_menu(self) -> None:
        text = self.session.message
        self.session.new_transaction()
        cash = await self.cash_available()
        self.show(S.main_menu(cash, text))
        choices = {
            "F2": TransactionType.BALANCE_INQUIRY,
            "F3": TransactionType.TRANSFER,
            "F4": TransactionType.PIN_CHANGE,
            "F8": "cancel",
        }
        if cash:
            choices["F1"] = TransactionType.WITHDRAWAL
        choice = await self._read_choice(choices)
        if choice is None:
            return
        if choice == "cancel":
            self.journal.write("CANCELLED", state=self.state.value)
            self.post("cancel")
            return
        self.session.transaction = TransactionType(choice)
        self.post(
            {
                TransactionType.WITHDRAWAL: "select_withdrawal",
                TransactionType.BALANCE_INQUIRY: "select_balance",
                TransactionType.TRANSFER: "select_transfer",
                TransactionType.PIN_CHANGE: "select_pin_change",
            }[self.session.transaction]
        )

    async def _account_selection(self) -> None:
        transfer = self.session.transaction is TransactionType.TRANSFER
        self.show(S.select_account("Transfer from account" if transfer else "Select account"))
        choice = await self._read_choice({"F1": "20", "F2": "10"})
        if choice is None:
            return
        self.session.account = AccountType(choice)
        self.post("account_selected")

    async def _to_account_selection(self) -> None:
        self.show(S.select_to_account())
        while True:
            choice = await self._read_choice({"F1": "20", "F2": "10"})
            if choice is None:
                return
            if AccountType(choice) is not self.session.account:
                break
            self.show(S.message("Choose an account other than the one you transfer from"))
            self.show(S.select_to_account())
        self.session.to_account = AccountType(choice)
        self.post("to_account_selected")

    async def _read_amount(self, fast: dict[str, int], render: Callable[[str], Screen]) -> int:
        """Fast-cash key or typed dollars + ENTER; 0 when the activity already posted."""
        typed = ""
        self.show(render(typed))
        while True:
            try:
                key = await self.devices.pin_pad.read_key(self._timeout())
            except DeviceTimeout:
                self.journal.write("TIMEOUT", state=self.state.value)
                self.session.message = "No amount entered in time"
                self.post("timeout")
                return 0
            if key == "CANCEL":
                self.journal.write("CANCELLED", state=self.state.value)
                self.post("cancel")
                return 0
            if key in fast:
                return fast[key]
            if key == "ENTER" and typed and int(typed):
                return int(typed) * 100
            if key.isdigit() and len(typed) < 6:
                typed += key
            elif key == "CLEAR":
                typed = ""
            self.show(render(typed))

    async def _amount_entry(self) -> None:
        s = self.session
        if s.transaction is TransactionType.TRANSFER:
            message = s.message
            cents = await self._read_amount({}, lambda t: S.transfer_amount(t, message))
            if not cents:
                return
            if cents > self.config.max_transfer_cents:
                s.message = f"Maximum per transfer is {money(self.config.max_transfer_cents)}"
                self.post("amount_refused")
                return
        else:
            amounts = self.config.fast_cash_cents
            fast = {f"F{i + 1}": cents for i, cents in enumerate(amounts)}
            message = s.message
            cents = await self._read_amount(fast, lambda t: S.select_amount(amounts, t, message))
            if not cents:
                return
            problem = await self._cash_problem(cents)
            if problem:
                self.journal.write("AMOUNT_REFUSED", amount=cents, reason=problem)
                s.message = problem
                self.post("amount_refused")
                return
        s.message = ""
        s.amount_cents = cents
        self.post("amount_entered")

    async def _new_pin_entry(self) -> None:
        s = self.session
        assert s.card is not None
        text = ""
        while True:
            blocks: list[PinBlock] = []
            for confirm in (False, True):
                shown = text if not confirm else ""
                self.show(S.new_pin(0, confirm, shown))
                try:
                    blocks.append(
                        await self.devices.pin_pad.read_pin(
                            s.card.pan,
                            self._timeout(),
                            on_key=self._echo_new_pin(confirm, shown),
                        )
                    )
                except CancelledByCustomer:
                    self.journal.write("CANCELLED", state=self.state.value)
                    self.post("cancel")
                    return
                except DeviceTimeout:
                    self.journal.write("TIMEOUT", state=self.state.value)
                    s.message = "No PIN entered in time"
                    self.post("timeout")
                    return
            # Compared by the pad (format 4 blocks of one PIN differ: random fill).
            if await self.devices.pin_pad.same_pin(blocks[0], blocks[1], s.card.pan):
                break
            self.journal.write("NEW_PIN_MISMATCH")
            text = "The two PINs do not match. Try again"
        s.new_pin_block = blocks[0]
        self.journal.write("NEW_PIN_ENTERED")
        self.post("new_pin_confirmed")

    def _echo_new_pin(self, confirm: bool, text: str) -> Callable[[int], None]:
        def echo(digits: int) -> None:
            self.show(S.new_pin(digits, confirm, text))

        return echo

    async def _authorizing(self) -> None:
        s = self.session
        assert s.transaction is not None
        self.show(S.please_wait())
        message = self._request_message()
        assert s.card is not None
        self.journal.write(
            "TXN_REQUEST",
            stan=s.stan,
            type=s.transaction.name,
            mti=message["t"],
            proc=message["3"],
            amount=s.amount_cents,
            time=message["7"],
            currency=message["49"],
            acceptor=message["42"],
            pan=mask_pan(s.card.pan),
        )
        try:
            response = await self.link.request(message)
        except LinkError as exc:
            self.journal.write("TXN_NO_RESPONSE", stan=s.stan, error=str(exc) or type(exc).__name__)
            s.message = "The bank cannot be reached. Please try later"
            self.post("host_failed")
            return
        code = ResponseCode.parse(response.get("39", "")) or ResponseCode.MALFUNCTION
        s.response, s.rrn, s.auth_code = code, response.get("37", ""), response.get("38", "")
        balances = parse_balances(response["54"]) if "54" in response else []
        available = [b for b in balances if b.amount_type == "02"] or balances
        s.balance_cents = available[0].cents if available else None
        if "62" in response:
            try:
                s.statement = tuple(e.line() for e in parse_mini_statement(response["62"]))
            except StatementError as exc:
                log.warning("mini-statement ignored: %s", exc)
        self.journal.write("TXN_RESPONSE", stan=s.stan, code=code.value, rrn=s.rrn)
        if code.approved:
            if s.transaction is TransactionType.WITHDRAWAL:
                self.post("approved_cash")
            elif s.transaction is TransactionType.BALANCE_INQUIRY:
                self.post("approved_inquiry")
            else:
                if s.transaction is TransactionType.PIN_CHANGE and s.new_pin_block is not None:
                    # The host now knows only the new PIN: later transactions of this card
                    # session carry its block.
                    s.pin_block = s.new_pin_block
                s.message = (
                    "Your PIN has been changed"
                    if s.transaction is TransactionType.PIN_CHANGE
                    else f"{money(s.amount_cents)} transferred"
                )
                self.post("approved")
        elif code is ResponseCode.INCORRECT_PIN:
            self.post("wrong_pin")
        elif code.capture_card or (
            code is ResponseCode.PIN_TRIES_EXCEEDED
            and self.config.retain_card_on_pin_tries_exceeded
        ):
            s.message = code.text
            self.post("capture")
        else:
            s.message = code.text
            # A decline about the card itself ends the card session; others offer another try.
            s.end_session = code in _CARD_DECLINES
            self.post("declined")

    async def _dispensing(self) -> None:
        s = self.session
        s.end_session = True
        self.show(S.dispensing(s.amount_cents))
        try:
            before = await self.devices.dispenser.status()
        except DriverError as exc:
            # No dispense command was given: certainly no note left.
            self.journal.write("DISPENSE_NOT_STARTED", stan=s.stan, error=type(exc).__name__)
            self.cash_fault = "dispenser not answering"
            s.message = "Unable to dispense cash. Your account has not been charged"
            s.receipt_note = "NO CASH DISPENSED - REVERSED"
            self._queue_reversal(0, ReversalReason.NO_CASH)
            self.post("dispense_failed")
            return
        self.journal.write(
            "DISPENSE_START",
            stan=s.stan,
            amount=s.amount_cents,
            notes=format_notes(s.notes),
            before=format_notes({c.index: c.count for c in before}),
        )
        try:
            result = await self.devices.dispenser.dispense(s.notes)
        except DispenserFault as exc:
            s.presented = dict(exc.dispensed)
            s.dispensed_cents = value_of(s.presented, before)
            self.counters.add("dispensed", s.presented)
            self.journal.write(
                "DISPENSE_FAULT",
                stan=s.stan,
                code=exc.code,
                dispensed=s.dispensed_cents,
                notes=format_notes(s.presented),
            )
            self.cash_fault = f"dispenser fault {exc.code}"
            if s.dispensed_cents:
                s.partial = True
                self.post("dispensed")
                return
            s.message = "Unable to dispense cash. Your account has not been charged"
            s.receipt_note = "NO CASH DISPENSED - REVERSED"
            self._queue_reversal(0, ReversalReason.NO_CASH)
            self.post("dispense_failed")
            return
        except DriverError as exc:
            # Timeout, garbled reply or lost port mid-dispense: nobody knows yet what left.
            await self._dispense_unknown(before, exc)
            return
        s.presented = dict(result.dispensed)
        s.dispensed_cents = value_of(s.presented, before)
        self.counters.add("dispensed", s.presented)
        self.counters.add("rejected", result.rejected)
        self.journal.write(
            "DISPENSE_RESULT",
            stan=s.stan,
            dispensed=s.dispensed_cents,
            notes=format_notes(s.presented),
            rejected=format_notes(result.rejected),
        )
        self.post("dispensed")

    async def _dispense_unknown(self, before: list[CassetteStatus], error: DriverError) -> None:
        """The dispenser stopped answering (or answered nonsense) during a dispense. Journal
        that first; then ask the dispenser what it counted out. Known: carry on as a complete
        or partial dispense. Unknown: no reversal (the customer may hold the cash), the
        transaction is journaled as suspect for the operator to settle at balancing, the card
        goes back and cash service stops."""
        s = self.session
        self.journal.write(
            "DISPENSE_UNKNOWN",
            stan=s.stan,
            amount=s.amount_cents,
            notes=format_notes(s.notes),
            error=f"{type(error).__name__}: {error}",
        )
        self.cash_fault = "dispense outcome unknown"
        counted: dict[int, int] | None = None
        try:
            await self.devices.dispenser.status()
            reported = await self.devices.dispenser.counted_out()
            if reported is not None:
                counted = {i: n for i, n in reported.items() if n}
        except DriverError as exc:
            log.warning("dispenser does not answer after the dispense: %s", exc)
        if counted is not None:
            s.presented = counted
            s.dispensed_cents = value_of(counted, before)
            self.counters.add("dispensed", counted)
            if s.dispensed_cents >= s.amount_cents:
                self.journal.write(
                    "DISPENSE_RESULT",
                    stan=s.stan,
                    dispensed=s.dispensed_cents,
                    notes=format_notes(counted),
                    rejected="-",
                    established="yes",
                )
                self.post("dispensed")
                return
            self.journal.write(
                "DISPENSE_FAULT",
                stan=s.stan,
                code="timeout",
                dispensed=s.dispensed_cents,
                notes=format_notes(counted),
                established="yes",
            )
            if s.dispensed_cents:
                s.partial = True
                self.post("dispensed")
                return
            s.message = "Unable to dispense cash. Your account has not been charged"
            s.receipt_note = "NO CASH DISPENSED - REVERSED"
            self._queue_reversal(0, ReversalReason.NO_CASH)
            self.post("dispense_failed")
            return
        s.suspect = True
        self.journal.write(
            "DISPENSE_SUSPECT",
            stan=s.stan,
            amount=s.amount_cents,
            notes=format_notes(s.notes),
            why="dispenser did not report what it counted out; settle at balancing",
        )
        s.message = "We could not confirm your cash. The bank will check this transaction"
        s.receipt_note = "DISPENSE NOT CONFIRMED - UNDER REVIEW"
        self.post("dispense_unknown")

    async def _presenting_cash(self) -> None:
        s = self.session
        screen = S.take_cash(s.dispensed_cents)
        if s.partial:
            screen = Screen(
                screen.id,
                screen.title,
                (f"Only {money(s.dispensed_cents)} could be dispensed", *screen.lines),
            )
        self.show(screen)
        if await self.devices.dispenser.wait_taken(self._timeout()):
            self.journal.write("CASH_TAKEN", stan=s.stan, amount=s.dispensed_cents)
            if s.partial:
                s.receipt_note = f"DISPENSED {money(s.dispensed_cents)} ONLY"
                s.message = f"Only {money(s.dispensed_cents)} was dispensed; the rest is refunded"
                self._queue_reversal(s.dispensed_cents, ReversalReason.PARTIAL)
            self.post("cash_taken")
            return
        count = await self.devices.dispenser.retract()
        self.counters.move(s.presented, "dispensed", "retracted")
        self.journal.write("CASH_RETRACTED", stan=s.stan, notes=count)
        s.receipt_note = "CASH RETRACTED - REVERSED"
        s.message = "Cash not taken: retracted, your account has not been charged"
        s.dispensed_cents = 0
        self._queue_reversal(0, ReversalReason.CASH_NOT_TAKEN)
        self.post("cash_retracted")

    async def _balance_display(self) -> None:
        s = self.session
        can_print = (await self.devices.printer.status()).can_print
        name = ACCOUNT_NAMES.get(s.account, "Account")
        if s.statement:
            self.journal.write("STATEMENT_SHOWN", stan=s.stan, entries=len(s.statement))
        self.show(S.show_balance(name, s.balance_cents, s.statement, can_print))
        choices = {"F8": "finished"}
        if can_print:
            choices["F4"] = "receipt_requested"
        choice = await self._read_choice(choices)
        if choice is not None:
            s.receipt_wanted = choice == "receipt_requested"
            self.post(choice)

    def _receipt(self) -> list[str]:
        s = self.session
        assert s.card is not None
        with_amount = s.transaction in (TransactionType.WITHDRAWAL, TransactionType.TRANSFER)
        return layout_receipt(
            ReceiptData(
                terminal_id=self.config.terminal_id,
                moment=self._clock(),
                pan=s.card.pan,
                stan=s.stan,
                transaction=TRANSACTION_NAMES.get(s.transaction, "") if s.transaction else "",
                response_text=(s.response.text if s.response else ""),
                amount_cents=s.amount_cents if with_amount else None,
                balance_cents=s.balance_cents,
                account=(
                    ACCOUNT_NAMES.get(s.account, "")
                    if s.transaction is not TransactionType.PIN_CHANGE
                    else ""
                ),
                to_account=ACCOUNT_NAMES.get(s.to_account, "") if s.to_account else "",
                rrn=s.rrn,
                auth_code=s.auth_code,
                note=s.receipt_note,
                statement=s.statement if s.receipt_wanted else (),
            )
        )

    async def _printing(self) -> None:
        s = self.session
        if s.message:
            self.show(S.message(s.message))
        wanted = s.card is not None and (
            s.transaction is not TransactionType.BALANCE_INQUIRY or s.receipt_wanted
        )
        if not wanted:
            self.post("printed")
            return
        status = await self.devices.printer.status()
        if not status.can_print:
            self.journal.write("RECEIPT_SKIPPED", stan=s.stan, reason=f"paper {status.paper}")
            self.post("printed")
            return
        lines = self._receipt()
        try:
            await self.devices.printer.print_receipt(lines)
        except DriverError as exc:
            self.journal.write("RECEIPT_FAILED", stan=s.stan, error=str(exc))
        else:
            self.journal.write("RECEIPT_PRINTED", stan=s.stan)
            self.events.publish(ReceiptPrinted(tuple(lines)))
        self.post("printed")

    async def _another_transaction(self) -> None:
        self.show(S.another_transaction(self.session.message))
        choice = await self._read_choice({"F4": "another_yes", "F8": "another_no"})
        if choice is not None:
            self.session.message = ""
            self.post(choice)

    async def _returning_card(self) -> None:
        self.show(S.take_card(self.session.message))
        try:
            taken = await self.devices.card_reader.eject(self._timeout())
        except CardReaderFault as exc:
            if self.session.suspect:
                # After a suspect dispense the card is not left in a faulted reader: keep it.
                self.journal.write("CARD_NOT_RETURNED", error=exc.code or str(exc))
                self.session.message = "Your card could not be returned; it has been retained"
                self.post("card_not_taken")
                return
            self.fault_reason = "card jam"
            self.journal.write("CARD_JAM", error=exc.code or str(exc))
            self.post("card_jammed")
            return
        if taken:
            self.journal.write("CARD_RETURNED")
            self.post("card_taken")
        else:
            self.journal.write("CARD_NOT_TAKEN")
            self.session.message = "Card not taken in time"
            self.post("card_not_taken")

    async def _capturing_card(self) -> None:
        self.show(S.card_retained(self.session.message))
        await self.devices.card_reader.capture()
        self.journal.write("CARD_CAPTURED", reason=self.session.message or "not taken")
        self.post("captured")

    async def _session_end(self) -> None:
        self.journal.write("SESSION_END", stan=self.session.stan or "-")
        self.show(S.thank_you())
        self.post("session_closed" if self.link.online else "link_down")

    async def _fault(self) -> None:
        reason = self.fault_reason or "device fault"
        self.show(S.fault(reason))
        # Only the supervisor leaves this state (supervisor_requested cancels this wait).
        await asyncio.Event().wait()

    # -- supervisor mode ------------------------------------------------------------------
    async def _supervisor(self) -> None:
        self.journal.write("SUPERVISOR_ENTER")
        self.show(S.supervisor(await self._cash_summary()))
        while True:
            try:
                key = await self.devices.pin_pad.read_key(self._timeout())
            except DeviceTimeout:
                key = "F8"
            if key == "F1":
                status = await self._cassettes()
                self.counters.replenish(status)
                self.cash_fault = ""
                self.journal.write(
                    "REPLENISH", counts=format_notes({c.index: c.count for c in status})
                )
                self.show(S.supervisor(("Cassettes replenished", *await self._cash_summary())))
            elif key == "F2":
                lines = await self.counters_report()
                await self._print_report("COUNTERS", lines)
                self.show(S.supervisor(("Counters printed", *lines)))
            elif key == "F3":
                self.counters.reset()
                self.journal.write("COUNTERS_RESET")
                self.show(S.supervisor(("Counters reset", *await self._cash_summary())))
            elif key == "F4":
                tail = self.journal.path.read_text().splitlines()[-8:]
                view = tuple(_short(line) for line in tail)
                self.show(S.supervisor(view, "Journal (latest)"))
            elif key == "F5":
                lines = await self.balancing_report()
                await self._print_report("BALANCING", lines)
                self.journal.write("BALANCING", result=lines[-1])
                self.show(S.supervisor(tuple(lines), "Balancing"))
            elif key in ("F6", "F7"):
                lines = self.settle_suspects(dispensed=key == "F7")
                self.show(S.supervisor(tuple(lines) or ("No suspect transaction",)))
            elif key == "F8":
                break
        self.cash_fault = ""
        self.fault_reason = ""
        self.journal.write("SUPERVISOR_EXIT")
        self.post("supervisor_left")

    async def _cash_summary(self) -> tuple[str, ...]:
        status = await self._cassettes()
        return tuple(
            f"Cassette {c.index} {money(c.denomination_cents)} x {c.count} "
            f"{cassette_level(c, self.config.near_empty_notes, self.config.empty_notes)}"
            for c in status
        )

    async def counters_report(self) -> list[str]:
        """Per cassette: loaded, dispensed, rejected, retracted (the supervisor's F2)."""
        lines = []
        for i, c in sorted(self.counters.cassettes.items()):
            lines.append(
                f"C{i} {money(c.denomination_cents)} L{c.loaded} D{c.dispensed} "
                f"RJ{c.rejected} RT{c.retracted}"
            )
        total = sum(c.denomination_cents * c.dispensed for c in self.counters.cassettes.values())
        lines.append(f"DISPENSED TOTAL {money(total)}")
        return lines

    def suspects(self) -> list[Suspect]:
        """Withdrawals whose dispense outcome is unknown and not yet settled (journal)."""
        return find_suspects(self.journal_records())

    async def balancing_report(self) -> list[str]:
        """loaded - dispensed - rejected - retracted = remaining, against the dispenser; then
        every suspect withdrawal (dispense outcome unknown) the operator must settle."""
        rows = self.counters.balancing(await self.devices.dispenser.status())
        lines = []
        for row in rows:
            c = row.counters
            lines.append(
                f"C{row.index} {c.loaded}-{c.dispensed}-{c.rejected}-{c.retracted}"
                f"={c.remaining} count {row.reported}"
            )
        suspects = self.suspects()
        for suspect in suspects:
            lines.append(
                f"SUSPECT STAN {suspect.stan} {money(suspect.amount_cents)} "
                f"notes {format_notes(suspect.notes)}"
            )
        off = [row for row in rows if row.difference]
        result = (
            "BALANCED"
            if not off
            else "DIFFERENCE " + ", ".join(f"C{r.index} {r.difference:+d}" for r in off)
        )
        if suspects:
            total = sum(x.amount_cents for x in suspects)
            result += f"; SUSPECT {money(total)} TO SETTLE ({len(suspects)})"
        lines.append(result)
        return lines

    def settle_suspects(self, *, dispensed: bool) -> list[str]:
        """The operator's decision on every open suspect, after counting the cassettes: F6
        "not dispensed" (the notes are all there: the withdrawal is reversed, 4017) or F7
        "dispensed" (notes are missing: the counters book them as dispensed). Each suspect is
        settled once (``SUSPECT_SETTLED``); settling again finds nothing."""
        lines = []
        for suspect in self.suspects():
            if dispensed:
                self.counters.add("dispensed", suspect.notes)
                self.journal.write(
                    "SUSPECT_SETTLED",
                    stan=suspect.stan,
                    amount=suspect.amount_cents,
                    outcome="dispensed",
                    notes=format_notes(suspect.notes),
                )
                lines.append(f"STAN {suspect.stan} settled as dispensed")
                continue
            queued = self.link.queue_reversal(dict(suspect.original), 0, ReversalReason.NO_CASH)
            if queued:
                self.journal.write(
                    "REVERSAL_QUEUED",
                    stan=suspect.stan,
                    amount=suspect.amount_cents,
                    dispensed=0,
                    reason=ReversalReason.NO_CASH,
                    why="suspect settled by the operator: not dispensed",
                )
            self.journal.write(
                "SUSPECT_SETTLED",
                stan=suspect.stan,
                amount=suspect.amount_cents,
                outcome="not_dispensed",
                reversal=ReversalReason.NO_CASH if queued else "already queued",
            )
            lines.append(f"STAN {suspect.stan} settled: reversed")
        return lines

    async def _print_report(self, title: str, lines: list[str]) -> None:
        if not (await self.devices.printer.status()).can_print:
            self.journal.write("REPORT_NOT_PRINTED", report=title, reason="printer unavailable")
            return
        text = [title, self._clock().strftime("%Y-%m-%d %H:%M:%S"), self.config.terminal_id]
        try:
            await self.devices.printer.print_receipt([*text, *lines])
        except DriverError as exc:
            self.journal.write("REPORT_NOT_PRINTED", report=title, reason=str(exc))
            return
        self.events.publish(ReceiptPrinted(tuple([*text, *lines])))
        self.journal.write("REPORT_PRINTED", report=title)


def _short(line: str) -> str:
    """A journal line for a 40-column screen: time of day, event and first fields."""
    parts = line.split(" | ")
    if len(parts) < 3:
        return line
    return " ".join([parts[0][11:19], parts[2], *parts[3:]])
