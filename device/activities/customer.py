"""Activities of the states where the customer is at the keyboard: the card is read, then PIN,
menus, account and amount entry, new PIN, the balance shown and "another transaction?".

Each activity shows a screen, waits for the customer (bounded by ``AtmController.person_timeout``)
and ends by posting one trigger; CANCEL and "no key in time" post ``cancel`` and ``timeout``,
which the state table turns into returning the card; a timeout first asks "Do you need more
time?" (``more_time``) unless ``DeviceConfig.more_time_seconds`` is 0. A new customer-facing
screen goes here (a new ``State`` in ``device.states``, its screen in ``device.screens``, its
activity here and a line in ``device.activities.ACTIVITIES``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from device import screens as S
from device.cash import mix_notes, usable_cassettes
from device.errors import CashError
from device.screens import Screen, money
from device.session import ACCOUNT_NAMES
from device.states import State
from drivers.errors import CancelledByCustomer, CardReaderFault, DeviceTimeout
from drivers.interfaces import PinBlock
from protocol.masking import mask_pan
from protocol.messages import AccountType, TransactionType
from protocol.response_codes import ResponseCode

if TYPE_CHECKING:
    from device.controller import AtmController

log = logging.getLogger(__name__)

__all__ = [
    "account_selection",
    "amount_entry",
    "another_transaction",
    "balance_display",
    "main_menu",
    "more_time",
    "new_pin_entry",
    "pin_entry",
    "read_amount",
    "read_choice",
    "reading_card",
    "to_account_selection",
]


async def reading_card(atm: AtmController) -> None:
    atm.show(S.reading_card())
    try:
        card = await atm.devices.card_reader.read_card()
    except CardReaderFault as exc:
        if exc.code == "jam":
            atm.fault_reason = "card jam"
            atm.journal.write("CARD_JAM", error=str(exc))
            atm.post("card_jammed")
            return
        atm.journal.write("CARD_UNREADABLE", error=exc.code or str(exc))
        atm.session.message = "Your card cannot be read"
        atm.post("read_failed")
        return
    if not atm.config.accepts_card(card.pan):
        # The production-safety guard: a card outside the configured (test) ranges never
        # reaches the PIN pad or the link.
        log.warning("card %s refused: outside the configured card ranges", mask_pan(card.pan))
        atm.journal.write("CARD_REFUSED", pan=mask_pan(card.pan), reason="card range")
        atm.session.message = "This card is not accepted here (test cards only)"
        atm.post("read_failed")
        return
    atm.session.card = card
    atm.journal.write("SESSION_START", pan=mask_pan(card.pan))
    atm.post("card_read")


async def pin_entry(atm: AtmController) -> None:
    assert atm.session.card is not None
    retry = atm.session.response is ResponseCode.INCORRECT_PIN
    atm.show(S.enter_pin(0, retry))
    try:
        block = await atm.devices.pin_pad.read_pin(
            atm.session.card.pan,
            atm.person_timeout(),
            on_key=lambda n: atm.show(S.enter_pin(n, retry)),
        )
    except CancelledByCustomer:
        atm.journal.write("CANCELLED", state=atm.state.value)
        atm.post("cancel")
        return
    except DeviceTimeout:
        atm.journal.write("TIMEOUT", state=atm.state.value)
        atm.session.message = "No PIN entered in time"
        atm.post("timeout")
        return
    atm.session.pin_block = block
    atm.journal.write("PIN_ENTERED", format=block.format)
    atm.post("pin_entered")


async def read_choice(atm: AtmController, choices: dict[str, str]) -> str | None:
    """Wait for one of ``choices`` (key -> result); CANCEL and timeouts post themselves."""
    while True:
        try:
            key = await atm.devices.pin_pad.read_key(atm.person_timeout())
        except DeviceTimeout:
            atm.journal.write("TIMEOUT", state=atm.state.value)
            atm.session.message = "No selection made in time"
            atm.post("timeout")
            return None
        if key == "CANCEL":
            atm.journal.write("CANCELLED", state=atm.state.value)
            atm.post("cancel")
            return None
        if key in choices:
            return choices[key]


async def main_menu(atm: AtmController) -> None:
    text = atm.session.message
    atm.session.new_transaction()
    cash = await atm.cash_available()
    deposit = atm.deposit_available()
    check_deposit = atm.check_deposit_available()
    atm.show(S.main_menu(cash, text, deposit, check_deposit))
    choices = {
        "F2": TransactionType.BALANCE_INQUIRY,
        "F3": TransactionType.TRANSFER,
        "F4": TransactionType.PIN_CHANGE,
        "F8": "cancel",
    }
    if cash:
        choices["F1"] = TransactionType.WITHDRAWAL
    if deposit:
        choices["F5"] = TransactionType.DEPOSIT
    if check_deposit:
        choices["F6"] = TransactionType.CHECK_DEPOSIT
    choice = await read_choice(atm, choices)
    if choice is None:
        return
    if choice == "cancel":
        atm.journal.write("CANCELLED", state=atm.state.value)
        atm.post("cancel")
        return
    atm.session.transaction = TransactionType(choice)
    atm.post(
        {
            TransactionType.WITHDRAWAL: "select_withdrawal",
            TransactionType.BALANCE_INQUIRY: "select_balance",
            TransactionType.TRANSFER: "select_transfer",
            TransactionType.PIN_CHANGE: "select_pin_change",
            TransactionType.DEPOSIT: "select_deposit",
            TransactionType.CHECK_DEPOSIT: "select_deposit",
        }[atm.session.transaction]
    )


async def account_selection(atm: AtmController) -> None:
    transfer = atm.session.transaction is TransactionType.TRANSFER
    deposit = atm.session.transaction in (TransactionType.DEPOSIT, TransactionType.CHECK_DEPOSIT)
    title = "Transfer from account" if transfer else "Deposit to account" if deposit else ""
    atm.show(S.select_account(title or "Select account"))
    choice = await read_choice(atm, {"F1": "20", "F2": "10"})
    if choice is None:
        return
    atm.session.account = AccountType(choice)
    atm.post("account_selected")


async def to_account_selection(atm: AtmController) -> None:
    atm.show(S.select_to_account())
    while True:
        choice = await read_choice(atm, {"F1": "20", "F2": "10"})
        if choice is None:
            return
        if AccountType(choice) is not atm.session.account:
            break
        atm.show(S.message("Choose an account other than the one you transfer from"))
        atm.show(S.select_to_account())
    atm.session.to_account = AccountType(choice)
    atm.post("to_account_selected")


async def read_amount(
    atm: AtmController, fast: dict[str, int], render: Callable[[str], Screen]
) -> int:
    """Fast-cash key or typed dollars + ENTER; 0 when the activity already posted."""
    typed = ""
    atm.show(render(typed))
    while True:
        try:
            key = await atm.devices.pin_pad.read_key(atm.person_timeout())
        except DeviceTimeout:
            atm.journal.write("TIMEOUT", state=atm.state.value)
            atm.session.message = "No amount entered in time"
            atm.post("timeout")
            return 0
        if key == "CANCEL":
            atm.journal.write("CANCELLED", state=atm.state.value)
            atm.post("cancel")
            return 0
        if key in fast:
            return fast[key]
        if key == "ENTER" and typed and int(typed):
            return int(typed) * 100
        if key.isdigit() and len(typed) < 6:
            typed += key
        elif key == "CLEAR":
            typed = ""
        atm.show(render(typed))


async def _cash_problem(atm: AtmController, cents: int) -> str:
    """Why ``cents`` cannot be dispensed now ("" if it can); sets the session's note mix."""
    if cents > atm.config.max_withdrawal_cents:
        return f"Maximum per withdrawal is {money(atm.config.max_withdrawal_cents)}"
    cassettes = usable_cassettes(await atm.cassettes(), atm.config.empty_notes)
    try:
        atm.session.notes = mix_notes(cents, cassettes)
    except CashError:
        return f"{money(cents)} cannot be dispensed; choose another amount"
    return ""


async def amount_entry(atm: AtmController) -> None:
    s = atm.session
    if s.transaction is TransactionType.TRANSFER:
        message = s.message
        cents = await read_amount(atm, {}, lambda t: S.transfer_amount(t, message))
        if not cents:
            return
        if cents > atm.config.max_transfer_cents:
            s.message = f"Maximum per transfer is {money(atm.config.max_transfer_cents)}"
            atm.post("amount_refused")
            return
    else:
        amounts = atm.config.fast_cash_cents
        fast = {f"F{i + 1}": cents for i, cents in enumerate(amounts)}
        message = s.message
        cents = await read_amount(atm, fast, lambda t: S.select_amount(amounts, t, message))
        if not cents:
            return
        problem = await _cash_problem(atm, cents)
        if problem:
            atm.journal.write("AMOUNT_REFUSED", amount=cents, reason=problem)
            s.message = problem
            atm.post("amount_refused")
            return
    s.message = ""
    s.amount_cents = cents
    atm.post("amount_entered")


async def new_pin_entry(atm: AtmController) -> None:
    s = atm.session
    assert s.card is not None
    # After a PIN reset the host sent the customer here (77): say why.
    text = s.response.text if s.response is ResponseCode.PIN_CHANGE_REQUIRED else ""
    while True:
        blocks: list[PinBlock] = []
        for confirm in (False, True):
            shown = text if not confirm else ""
            atm.show(S.new_pin(0, confirm, shown))
            try:
                blocks.append(
                    await atm.devices.pin_pad.read_pin(
                        s.card.pan,
                        atm.person_timeout(),
                        on_key=_echo_new_pin(atm, confirm, shown),
                    )
                )
            except CancelledByCustomer:
                atm.journal.write("CANCELLED", state=atm.state.value)
                atm.post("cancel")
                return
            except DeviceTimeout:
                atm.journal.write("TIMEOUT", state=atm.state.value)
                s.message = "No PIN entered in time"
                atm.post("timeout")
                return
        # Compared by the pad (format 4 blocks of one PIN differ: random fill).
        if await atm.devices.pin_pad.same_pin(blocks[0], blocks[1], s.card.pan):
            break
        atm.journal.write("NEW_PIN_MISMATCH")
        text = "The two PINs do not match. Try again"
    s.new_pin_block = blocks[0]
    atm.journal.write("NEW_PIN_ENTERED")
    atm.post("new_pin_confirmed")


def _echo_new_pin(atm: AtmController, confirm: bool, text: str) -> Callable[[int], None]:
    def echo(digits: int) -> None:
        atm.show(S.new_pin(digits, confirm, text))

    return echo


async def balance_display(atm: AtmController) -> None:
    s = atm.session
    can_print = (await atm.devices.printer.status()).can_print
    name = ACCOUNT_NAMES.get(s.account, "Account")
    if s.statement:
        atm.journal.write("STATEMENT_SHOWN", stan=s.stan, entries=len(s.statement))
    atm.show(S.show_balance(name, s.balance_cents, s.statement, can_print))
    choices = {"F8": "finished"}
    if can_print:
        choices["F4"] = "receipt_requested"
    choice = await read_choice(atm, choices)
    if choice is not None:
        s.receipt_wanted = choice == "receipt_requested"
        atm.post(choice)


async def another_transaction(atm: AtmController) -> None:
    atm.show(S.another_transaction(atm.session.message))
    choice = await read_choice(atm, {"F4": "another_yes", "F8": "another_no"})
    if choice is not None:
        atm.session.message = ""
        atm.post(choice)


# How often the "more time?" countdown looks at the clock (real seconds); the screen changes
# only when the whole seconds left change.
COUNTDOWN_TICK = 0.25


async def more_time(atm: AtmController) -> None:
    """ "Do you need more time?": the customer's wait ran out in ``atm.previous_state``. A
    countdown of ``more_time_seconds`` (by the controller's clock, ``atm.now()``) on the
    screen; Yes (F4 or ENTER) goes back to that state, No (F8 or CANCEL) ends the session, and
    so does the end of the countdown (``timeout``: the card is returned)."""
    resume = atm.previous_state or State.main_menu
    pending = atm.session.message  # what the take-card screen says if the time runs out
    atm.session.message = ""
    seconds = atm.config.more_time_seconds
    atm.journal.write("MORE_TIME_ASKED", state=resume.value, seconds=f"{seconds:g}")
    deadline = atm.now() + dt.timedelta(seconds=seconds)
    loop = asyncio.get_running_loop()
    shown = -1
    while True:
        left = (deadline - atm.now()).total_seconds()
        if left <= 0:
            break
        if math.ceil(left) != shown:
            shown = math.ceil(left)
            atm.show(S.more_time(shown))
        wait = min(COUNTDOWN_TICK, left)
        started = loop.time()
        try:
            key = await atm.devices.pin_pad.read_key(wait)
        except DeviceTimeout:
            if loop.time() - started < wait / 2:
                break  # the pad gives up at once (no key can come): do not spin
            continue
        if key in ("F4", "ENTER"):
            atm.journal.write("MORE_TIME_GIVEN", state=resume.value)
            atm.post(f"resume_{resume.value}")
            return
        if key in ("F8", "CANCEL"):
            atm.journal.write("CANCELLED", state=atm.state.value)
            atm.post("cancel")
            return
    atm.journal.write("TIMEOUT", state=atm.state.value)
    atm.session.message = pending or "No key pressed in time"
    atm.post("timeout")
