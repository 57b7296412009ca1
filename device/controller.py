"""The ATM controller: a ``transitions`` AsyncMachine driven by one event queue.

How it runs (STYLE, "transitions"): entering a state starts that state's *activity*, a task that
talks to drivers or the host and ends by posting one event to the queue. The run loop takes
events one at a time and fires them as triggers. No callback ever fires a trigger itself, and
timeouts live in the driver calls, so the machine never sees concurrent triggers.
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
from device.cash import mix_notes
from device.config import DeviceConfig
from device.errors import CashError
from device.events import (
    EventBus,
    JournalLine,
    LinkMessage,
    ReceiptPrinted,
    ScreenShown,
    StateChanged,
)
from device.hostlink import HostLink, ReversalReason
from device.journal import Journal
from device.receipt import ReceiptData, layout_receipt
from device.screens import Screen, money
from device.states import TRANSITIONS, State
from drivers.errors import (
    CancelledByCustomer,
    CardReaderFault,
    DeviceTimeout,
    DispenserFault,
    DriverError,
)
from drivers.interfaces import CardData, CardReader, CashDispenser, PinBlock, PinPad, ReceiptPrinter
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

Clock = Callable[[], dt.datetime]

ACCOUNT_NAMES = {AccountType.CHECKING: "Checking", AccountType.SAVINGS: "Savings"}


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
    """One card session: everything the controller knows about the customer at the ATM."""

    card: CardData | None = None
    pin_block: PinBlock | None = None
    transaction: TransactionType | None = None
    account: AccountType = AccountType.DEFAULT
    amount_cents: int = 0
    notes: dict[int, int] = field(default_factory=dict)
    stan: str = ""
    response: ResponseCode | None = None
    rrn: str = ""
    auth_code: str = ""
    balance_cents: int | None = None
    message: str = ""
    dispensed_cents: int = 0
    receipt_note: str = ""


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
        self.stan = StanGenerator(self._last_stan())
        self.link = HostLink(
            config,
            self.stan,
            clock=self._clock,
            tap=self._on_link_message,
            on_pin_key=devices.pin_pad.load_working_key,
        )
        self.session = Session()
        self._last_request: Message = {}
        self.screen: Screen | None = None
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
            State.out_of_service: self._out_of_service,
            State.idle: self._idle,
            State.reading_card: self._reading_card,
            State.pin_entry: self._pin_entry,
            State.main_menu: self._main_menu,
            State.account_selection: self._account_selection,
            State.amount_entry: self._amount_entry,
            State.authorizing: self._authorizing,
            State.dispensing: self._dispensing,
            State.presenting_cash: self._presenting_cash,
            State.balance_display: self._balance_display,
            State.printing: self._printing,
            State.returning_card: self._returning_card,
            State.capturing_card: self._capturing_card,
            State.session_end: self._session_end,
        }

    # -- public API ----------------------------------------------------------------------
    def post(self, event: str, **data: Any) -> None:
        """Queue an event for the machine (the only way anything fires a trigger)."""
        self._queue.put_nowait((event, data))

    async def run(self) -> None:
        """Run until cancelled."""
        for device in self.devices.all():
            await device.open()
        self.journal.write("STARTUP", state=self.state.value)
        self._start_activity()
        try:
            while True:
                event, data = await self._queue.get()
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

    # -- conditions (pure checks) ---------------------------------------------------------
    def has_pending_transaction(self, _event: Any = None) -> bool:
        return self.session.transaction is not None and self.session.response is not None

    def needs_amount(self, _event: Any = None) -> bool:
        return self.session.transaction is TransactionType.WITHDRAWAL

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
            self.journal.write("FAULT", state=self.state.value, error=type(exc).__name__)
            self.post("fault")

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

    def journal_records(self) -> list[Any]:
        from device.journal import read_records

        return read_records(self.config.journal_path)

    # -- host requests --------------------------------------------------------------------
    def _financial_message(self) -> Message:
        s = self.session
        assert s.card is not None and s.transaction is not None and s.pin_block is not None
        mti = (
            Mti.AUTHORIZATION_REQUEST
            if s.transaction is TransactionType.BALANCE_INQUIRY
            else Mti.FINANCIAL_REQUEST
        )
        s.stan = self.stan.next()
        message = self.link.base_message(mti, s.stan)
        message.update(
            {
                "2": s.card.pan,
                "3": format_processing_code(s.transaction, s.account),
                "4": format_amount(s.amount_cents),
                "35": s.card.track2,
                "49": self.config.currency,
                "52": s.pin_block.ciphertext.hex().upper(),
            }
        )
        return message

    # -- activities, one per state --------------------------------------------------------
    async def _out_of_service(self) -> None:
        self.show(S.out_of_service())
        # Retry with a fixed back-off until the host answers the sign-on.
        while True:
            if await self.link.ensure_online():
                break
            await asyncio.sleep(self.config.reconnect_delay)
        self.journal.write("SIGNED_ON", host=f"{self.config.host}:{self.config.port}")
        self.post("signed_on")

    async def _idle(self) -> None:
        self.session = Session()
        self.show(S.welcome())
        await self.devices.card_reader.accept_card()
        self.post("card_inserted")

    async def _reading_card(self) -> None:
        self.show(S.reading_card())
        try:
            card = await self.devices.card_reader.read_card()
        except CardReaderFault as exc:
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
                self.config.key_timeout,
                on_key=lambda n: self.show(S.enter_pin(n, retry)),
            )
        except CancelledByCustomer:
            self.post("cancel")
            return
        except DeviceTimeout:
            self.session.message = "No PIN entered in time"
            self.post("timeout")
            return
        self.session.pin_block = block
        self.journal.write("PIN_ENTERED")
        self.post("pin_entered")

    async def _read_choice(self, choices: dict[str, str]) -> str | None:
        """Wait for one of ``choices`` (key -> event); CANCEL and timeouts post themselves."""
        while True:
            try:
                key = await self.devices.pin_pad.read_key(self.config.key_timeout)
            except DeviceTimeout:
                self.session.message = "No selection made in time"
                self.post("timeout")
                return None
            if key == "CANCEL":
                self.post("cancel")
                return None
            if key in choices:
                return choices[key]

    async def _main_menu(self) -> None:
        self.show(S.main_menu())
        choice = await self._read_choice({"F1": "select_withdrawal", "F2": "select_balance"})
        if choice is None:
            return
        self.session.transaction = (
            TransactionType.WITHDRAWAL
            if choice == "select_withdrawal"
            else TransactionType.BALANCE_INQUIRY
        )
        self.post(choice)

    async def _account_selection(self) -> None:
        self.show(S.select_account())
        choice = await self._read_choice({"F1": "20", "F2": "10"})
        if choice is None:
            return
        self.session.account = AccountType(choice)
        self.post("account_selected")

    async def _amount_entry(self) -> None:
        amounts = self.config.fast_cash_cents
        keys = {f"F{i + 1}": cents for i, cents in enumerate(amounts)}
        typed = ""
        self.show(S.select_amount(amounts, typed, self.session.message))
        while True:
            try:
                key = await self.devices.pin_pad.read_key(self.config.key_timeout)
            except DeviceTimeout:
                self.session.message = "No amount entered in time"
                self.post("timeout")
                return
            if key == "CANCEL":
                self.post("cancel")
                return
            if key in keys or (key == "ENTER" and typed):
                cents = keys[key] if key in keys else int(typed) * 100
                break
            if key.isdigit() and len(typed) < 5:
                typed += key
            elif key == "CLEAR":
                typed = ""
            self.show(S.select_amount(amounts, typed, self.session.message))
        problem = await self._cash_problem(cents)
        if problem:
            self.session.message = problem
            self.post("amount_refused")
            return
        self.session.message = ""
        self.session.amount_cents = cents
        self.post("amount_entered")

    async def _cash_problem(self, cents: int) -> str:
        if cents > self.config.max_withdrawal_cents:
            return f"Maximum per withdrawal is {money(self.config.max_withdrawal_cents)}"
        try:
            self.session.notes = mix_notes(cents, await self.devices.dispenser.status())
        except CashError:
            return f"{money(cents)} cannot be dispensed; choose another amount"
        return ""

    async def _authorizing(self) -> None:
        s = self.session
        self.show(S.please_wait())
        message = self._financial_message()
        self._last_request = message
        self.journal.write(
            "TXN_REQUEST",
            stan=s.stan,
            type=s.transaction.name if s.transaction else "?",
            account=s.account.value,
            amount=s.amount_cents,
        )
        try:
            response = await self.link.request(message)
        except LinkError as exc:
            self.journal.write("TXN_NO_RESPONSE", stan=s.stan, error=str(exc))
            s.message = "The bank cannot be reached. Please try later"
            self.post("host_failed")
            return
        code = ResponseCode.parse(response.get("39", "")) or ResponseCode.MALFUNCTION
        s.response, s.rrn, s.auth_code = code, response.get("37", ""), response.get("38", "")
        balances = parse_balances(response["54"]) if "54" in response else []
        available = [b for b in balances if b.amount_type == "02"] or balances
        s.balance_cents = available[0].cents if available else None
        self.journal.write("TXN_RESPONSE", stan=s.stan, code=code.value, rrn=s.rrn)
        if code.approved:
            cash = s.transaction is TransactionType.WITHDRAWAL
            self.post("approved_cash" if cash else "approved_inquiry")
        elif code is ResponseCode.INCORRECT_PIN:
            self.post("wrong_pin")
        elif code.capture_card:
            s.message = code.text
            self.post("capture")
        else:
            s.message = code.text
            self.post("declined")

    async def _dispensing(self) -> None:
        s = self.session
        self.show(S.dispensing(s.amount_cents))
        self.journal.write("DISPENSE_START", stan=s.stan, amount=s.amount_cents, notes=s.notes)
        try:
            result = await self.devices.dispenser.dispense(s.notes)
            dispensed = dict(result.dispensed)
        except DispenserFault as exc:
            dispensed = exc.dispensed
            s.dispensed_cents = await self._value(dispensed)
            self.journal.write(
                "DISPENSE_FAULT", stan=s.stan, code=exc.code, dispensed=s.dispensed_cents
            )
            s.message = "Unable to dispense cash"
            s.receipt_note = f"DISPENSED {money(s.dispensed_cents)}"
            reason = ReversalReason.PARTIAL if s.dispensed_cents else ReversalReason.NO_CASH
            self.link.queue_reversal(self._last_request, s.dispensed_cents, reason)
            self.post("dispense_failed")
            return
        s.dispensed_cents = await self._value(dispensed)
        self.journal.write("DISPENSE_RESULT", stan=s.stan, dispensed=s.dispensed_cents)
        self.post("dispensed")

    async def _value(self, notes: dict[int, int]) -> int:
        cassettes = {c.index: c for c in await self.devices.dispenser.status()}
        return sum(cassettes[i].denomination_cents * n for i, n in notes.items())

    async def _presenting_cash(self) -> None:
        self.show(S.take_cash(self.session.dispensed_cents))
        if await self.devices.dispenser.wait_taken(self.config.cash_take_timeout):
            self.journal.write("CASH_TAKEN", stan=self.session.stan)
            self.post("cash_taken")
            return
        count = await self.devices.dispenser.retract()
        self.journal.write("CASH_RETRACTED", stan=self.session.stan, notes=count)
        self.session.receipt_note = "CASH RETRACTED"
        self.link.queue_reversal(self._last_request, 0, ReversalReason.CASH_NOT_TAKEN)
        self.post("cash_retracted")

    async def _balance_display(self) -> None:
        s = self.session
        self.show(S.show_balance(ACCOUNT_NAMES.get(s.account, "Account"), s.balance_cents))
        choice = await self._read_choice({"F4": "receipt_requested", "F8": "finished"})
        if choice is not None:
            self.post(choice)

    async def _printing(self) -> None:
        s = self.session
        status = await self.devices.printer.status()
        if s.message:
            self.show(S.message(s.message))
        if not status.can_print or s.card is None:
            self.journal.write("RECEIPT_SKIPPED", reason=f"paper {status.paper.value}")
            self.post("printed")
            return
        lines = layout_receipt(
            ReceiptData(
                terminal_id=self.config.terminal_id,
                moment=self._clock(),
                pan=s.card.pan,
                stan=s.stan,
                transaction=(s.transaction.name.replace("_", " ") if s.transaction else ""),
                response_text=(s.response.text if s.response else ""),
                amount_cents=(
                    s.amount_cents if s.transaction is TransactionType.WITHDRAWAL else None
                ),
                balance_cents=s.balance_cents,
                account=ACCOUNT_NAMES.get(s.account, ""),
                rrn=s.rrn,
                auth_code=s.auth_code,
                note=s.receipt_note,
            )
        )
        try:
            await self.devices.printer.print_receipt(lines)
        except DriverError as exc:
            self.journal.write("RECEIPT_FAILED", error=str(exc))
        else:
            self.journal.write("RECEIPT_PRINTED", stan=s.stan)
            self.events.publish(ReceiptPrinted(tuple(lines)))
        self.post("printed")

    async def _returning_card(self) -> None:
        self.show(S.take_card(self.session.message))
        try:
            taken = await self.devices.card_reader.eject(self.config.card_take_timeout)
        except CardReaderFault as exc:
            self.journal.write("CARD_EJECT_FAILED", error=exc.code or str(exc))
            self.post("fault")
            return
        if taken:
            self.journal.write("CARD_RETURNED")
            self.post("card_taken")
        else:
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
