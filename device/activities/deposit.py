"""Activities of a cash deposit: ``deposit_inserting`` (notes counted into the acceptor's
escrow while the customer may press ENTER or CANCEL), ``deposit_confirming`` (the count shown,
confirm or return), ``deposit_stacking`` (after the host approved) and ``deposit_returning``.

The money rules: the counted notes are journaled (``DEPOSIT_COUNTED``) before the host is
asked; notes are stacked only after an approval; every other way out gives them back, and the
host has nothing to undo (a declined request moved nothing; one the link gave up on is
reversed by the link). If stacking fails after the approval, the deposit is reversed in full;
notes still in escrow go back, notes the acceptor kept (stacked or jammed) are journaled as
suspect (``DEPOSIT_SUSPECT``) for the operator to settle at balancing, so that the notes in
the stacker always equal the deposits credited plus the suspects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import TYPE_CHECKING

from device import screens as S
from device.recovery import format_deposit_notes
from device.screens import money
from drivers.errors import BillAcceptorFault, DepositoryFault, DeviceTimeout, DriverError
from drivers.interfaces import BillAcceptor, NoteEscrowed
from protocol.response_codes import ReversalReason

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = [
    "check_entry",
    "deposit_confirming",
    "deposit_inserting",
    "deposit_returning",
    "deposit_stacking",
    "envelope_taking",
    "format_deposit_notes",
]

log = logging.getLogger(__name__)


def _acceptor(atm: AtmController) -> BillAcceptor:
    acceptor = atm.devices.bill_acceptor
    assert acceptor is not None, "deposit states need a bill acceptor"
    return acceptor


def _give_back(atm: AtmController, message: str) -> None:
    atm.session.message = message
    atm.post("notes_to_return")


async def deposit_inserting(atm: AtmController) -> None:
    s = atm.session
    acceptor = _acceptor(atm)
    text = ""
    try:
        await acceptor.enable()
    except DriverError as exc:
        atm.deposit_fault = f"bill acceptor: {exc}"
        atm.journal.write("DEPOSIT_UNAVAILABLE", error=type(exc).__name__)
        _give_back(atm, "Deposits are not available now")
        return
    while True:
        atm.show(S.insert_notes(len(s.escrow), sum(s.escrow), text))
        timeout = atm.person_timeout()
        note = asyncio.ensure_future(acceptor.wait_note(timeout))
        key = asyncio.ensure_future(atm.devices.pin_pad.read_key(timeout))
        try:
            done, _ = await asyncio.wait({note, key}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (note, key):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, DriverError):
                        await task
        timed_out = got_note = False
        if note in done:
            try:
                event = note.result()
            except DeviceTimeout:
                timed_out = True
            except BillAcceptorFault as exc:
                _acceptor_fault(atm, exc)
                return
            except DriverError as exc:
                atm.deposit_fault = f"bill acceptor: {exc}"
                atm.journal.write("DEPOSIT_UNAVAILABLE", error=type(exc).__name__)
                _give_back(atm, "The note reader failed; your notes are returned")
                return
            else:
                got_note = True
                if isinstance(event, NoteEscrowed):
                    s.escrow.append(event.denomination_cents)
                    atm.journal.write("NOTE_ESCROWED", cents=event.denomination_cents)
                    text = ""
                else:
                    atm.journal.write("NOTE_REJECTED", reason=event.reason)
                    text = "A note was not accepted: please take it"
        if key in done:
            try:
                pressed = key.result()
            except DeviceTimeout:
                timed_out = True
            else:
                if pressed == "ENTER" and s.escrow:
                    if await _settle(atm, acceptor):
                        atm.post("notes_counted")
                    return
                if pressed == "CANCEL":
                    atm.journal.write("CANCELLED", state=atm.state.value)
                    if s.escrow:
                        _give_back(atm, "Deposit cancelled")
                    else:
                        atm.post("cancel")
                    return
        if timed_out and not got_note:
            atm.journal.write("TIMEOUT", state=atm.state.value)
            if s.escrow:
                _give_back(atm, "No answer in time: your notes are returned")
            else:
                s.message = "No notes inserted in time"
                atm.post("timeout")
            return


# After ENTER: how long to wait for notes already on their way through the acceptor.
SETTLE_SECONDS = 0.2


async def _settle(atm: AtmController, acceptor: BillAcceptor) -> bool:
    """Count the notes inserted before ENTER that the acceptor has not reported yet (it
    reports them one poll at a time); the acceptor stops accepting when none is left. False
    when a fault ended the deposit (the activity has posted)."""
    s = atm.session
    while True:
        try:
            event = await acceptor.wait_note(SETTLE_SECONDS)
        except DeviceTimeout:
            return True
        except BillAcceptorFault as exc:
            _acceptor_fault(atm, exc)
            return False
        except DriverError as exc:
            atm.deposit_fault = f"bill acceptor: {exc}"
            atm.journal.write("DEPOSIT_UNAVAILABLE", error=type(exc).__name__)
            _give_back(atm, "The note reader failed; your notes are returned")
            return False
        if isinstance(event, NoteEscrowed):
            s.escrow.append(event.denomination_cents)
            atm.journal.write("NOTE_ESCROWED", cents=event.denomination_cents)
        else:
            atm.journal.write("NOTE_REJECTED", reason=event.reason)


def _acceptor_fault(atm: AtmController, exc: BillAcceptorFault) -> None:
    s = atm.session
    atm.deposit_fault = f"bill acceptor {exc.code}"
    if exc.code == "jam":
        # The jammed note was never counted: nobody is credited for it; the operator
        # clears it (it is recorded here, with the escrow the customer gets back).
        atm.journal.write("NOTE_JAM", held=format_deposit_notes(s.escrow), error=str(exc))
        s.receipt_note = "NOTE JAMMED - NOT CREDITED"
        _give_back(atm, "A note jammed and was not counted. The bank will check it")
        return
    atm.journal.write("DEPOSIT_UNAVAILABLE", error=exc.code or str(exc))
    _give_back(atm, "Deposits are not available now")


async def deposit_confirming(atm: AtmController) -> None:
    s = atm.session
    cents = sum(s.escrow)
    atm.show(S.confirm_deposit(dict(Counter(s.escrow)), cents))
    while True:
        try:
            pressed = await atm.devices.pin_pad.read_key(atm.person_timeout())
        except DeviceTimeout:
            atm.journal.write("TIMEOUT", state=atm.state.value)
            _give_back(atm, "No answer in time: your notes are returned")
            return
        if pressed == "F1":
            s.amount_cents = cents
            # On disk before the host hears of it: a restart knows what was in escrow.
            atm.journal.write("DEPOSIT_COUNTED", amount=cents, notes=format_deposit_notes(s.escrow))
            atm.post("deposit_confirmed")
            return
        if pressed in ("F8", "CANCEL"):
            atm.journal.write("CANCELLED", state=atm.state.value)
            _give_back(atm, "Deposit cancelled")
            return


async def deposit_stacking(atm: AtmController) -> None:
    s = atm.session
    s.end_session = True
    acceptor = _acceptor(atm)
    atm.show(S.stacking(s.amount_cents))
    atm.journal.write(
        "DEPOSIT_STACK_START",
        stan=s.stan,
        amount=s.amount_cents,
        notes=format_deposit_notes(s.escrow),
    )
    error = ""
    try:
        stacked = await acceptor.stack()
    except BillAcceptorFault as exc:
        stacked, error = exc.stacked, exc.code or "fault"
    except DriverError as exc:
        stacked, error = {}, f"{type(exc).__name__}"
    stacked_cents = sum(cents * count for cents, count in stacked.items())
    if not error and stacked_cents == s.amount_cents:
        atm.journal.write(
            "DEPOSIT_STACKED",
            stan=s.stan,
            amount=s.amount_cents,
            notes=format_deposit_notes(s.escrow),
        )
        s.escrow = []
        if s.deposit_held_cents is not None:  # the host said how much of this deposit
            held = s.deposit_held_cents
        else:  # a host that does not: what the account has on hold
            held = (
                s.ledger_cents - s.balance_cents
                if s.ledger_cents is not None and s.balance_cents is not None
                else 0
            )
        held = max(0, min(held, s.amount_cents))
        # One line on the screen; the receipt gives the available balance as well.
        s.message = f"{money(s.amount_cents)} deposited"
        if held > 0:
            s.message += f": {money(s.amount_cents - held)} available now, {money(held)} on hold"
            s.receipt_note = f"ON HOLD {money(held)}"
        atm.post("stacked")
        return
    await _stacking_failed(atm, acceptor, error or "short", stacked)


async def _stacking_failed(
    atm: AtmController, acceptor: BillAcceptor, error: str, stacked: dict[int, int]
) -> None:
    """The host credited the deposit but the acceptor did not stack it all: reverse it in
    full, give back what is still in escrow, and journal the notes the acceptor kept."""
    s = atm.session
    atm.deposit_fault = f"bill acceptor {error}"
    atm.journal.write(
        "DEPOSIT_STACK_FAULT",
        stan=s.stan,
        code=error,
        stacked=format_deposit_notes(c for c, n in stacked.items() for _ in range(n)),
    )
    atm.reverse_session(0, ReversalReason.DEVICE_FAILED)
    remaining: list[int] = []
    try:
        remaining = list((await acceptor.status()).escrow)
    except DriverError as exc:
        log.warning("bill acceptor does not answer after a failed stack: %s", exc)
    kept = Counter(s.escrow) - Counter(remaining)
    kept_notes = [cents for cents, count in kept.items() for _ in range(count)]
    if kept_notes:
        atm.journal.write(
            "DEPOSIT_SUSPECT",
            stan=s.stan,
            amount=sum(kept_notes),
            notes=format_deposit_notes(kept_notes),
            why="kept by the acceptor after a failed stack; settle at balancing",
        )
    s.escrow = remaining
    s.receipt_note = "DEPOSIT NOT COMPLETED - REVERSED"
    text = "Your deposit could not be completed; your account has not been credited"
    if kept_notes:
        text += f". Notes kept by the machine ({money(sum(kept_notes))}) will be checked"
    _give_back(atm, text)


async def deposit_returning(atm: AtmController) -> None:
    s = atm.session
    acceptor = _acceptor(atm)
    if s.escrow:
        try:
            returned = await acceptor.return_notes()
        except DriverError as exc:
            atm.deposit_fault = f"bill acceptor: {exc}"
            atm.journal.write(
                "DEPOSIT_SUSPECT",
                stan=s.stan or "-",
                amount=sum(s.escrow),
                notes=format_deposit_notes(s.escrow),
                why=f"could not be returned ({type(exc).__name__}); settle at balancing",
            )
            returned = {}
        else:
            notes = [c for c, n in returned.items() for _ in range(n)]
            atm.journal.write(
                "NOTES_RETURNED",
                stan=s.stan or "-",
                amount=sum(notes),
                notes=format_deposit_notes(notes),
            )
        s.escrow = []
        if returned:
            atm.show(S.take_notes(s.message))
            if await acceptor.wait_returned_taken(atm.person_timeout()):
                atm.journal.write("NOTES_TAKEN")
            else:
                # A validator cannot pull them back in: they wait at the entrance, and
                # deposits stop until the operator has looked.
                atm.deposit_fault = "returned notes not taken"
                atm.journal.write("NOTES_NOT_TAKEN")
    if s.capture_after_notes:
        atm.post("capture")
        return
    atm.post("notes_returned")


# -- check (envelope) deposits ------------------------------------------------------------


async def check_entry(atm: AtmController) -> None:
    """The check's amount (dollars) and number, keyed; CANCEL and timeouts end the session."""
    from device.activities.customer import read_amount

    s = atm.session
    message = s.message
    cents = await read_amount(atm, {}, lambda typed: S.check_amount(typed, message))
    if not cents:
        return
    if cents > atm.config.max_check_deposit_cents:
        s.message = f"Maximum per check is {money(atm.config.max_check_deposit_cents)}"
        atm.post("cancel")
        return
    number = ""
    atm.show(S.check_number(number))
    while True:
        try:
            key = await atm.devices.pin_pad.read_key(atm.person_timeout())
        except DeviceTimeout:
            atm.journal.write("TIMEOUT", state=atm.state.value)
            s.message = "No check number entered in time"
            atm.post("timeout")
            return
        if key == "CANCEL":
            atm.journal.write("CANCELLED", state=atm.state.value)
            atm.post("cancel")
            return
        if key == "ENTER" and number:
            break
        if key.isdigit() and len(number) < 10:
            number += key
        elif key == "CLEAR":
            number = ""
        atm.show(S.check_number(number))
    s.message = ""
    s.amount_cents = cents
    s.check_number = number
    atm.post("check_entered")


async def envelope_taking(atm: AtmController) -> None:
    """Take the envelope in before the host is asked: no envelope, nothing deposited."""
    s = atm.session
    depository = atm.devices.depository
    assert depository is not None, "check deposits need a depository"
    s.end_session = True
    atm.show(S.insert_envelope(s.amount_cents))
    imprint = f"{atm.config.terminal_id} {atm.now():%Y%m%d%H%M} CHK {s.check_number}"
    try:
        taken = await depository.take_envelope(imprint, atm.person_timeout())
    except (DepositoryFault, DriverError) as exc:
        atm.depository_fault = f"depository: {exc}"
        atm.journal.write("DEPOSITORY_FAULT", error=getattr(exc, "code", "") or str(exc))
        s.message = "Check deposits are not available now; nothing was deposited"
        atm.post("no_envelope")
        return
    if not taken:
        atm.journal.write("NO_ENVELOPE", amount=s.amount_cents, check=s.check_number)
        s.message = "No envelope was received; nothing was deposited"
        s.receipt_note = "NO ENVELOPE - NOTHING DEPOSITED"
        atm.post("no_envelope")
        return
    s.receipt_note = f"CHECK NO {s.check_number}"
    # On disk before the host hears of it, as with counted notes.
    atm.journal.write(
        "ENVELOPE_TAKEN", amount=s.amount_cents, check=s.check_number, imprint=imprint
    )
    atm.post("envelope_taken")
