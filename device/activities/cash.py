"""Activities of the cash states: ``dispensing`` (including a dispense whose outcome is
unknown) and ``presenting_cash`` (taken, or retracted and reversed).

The money rules live here: the journal line goes to disk before the dispense command and right
after its result, the counters follow every note, and every path that leaves the customer
without (all) the cash queues a reversal through ``AtmController.reverse_session``. The note mix
and counters themselves are ``device.cash`` (no I/O). A deposit's escrow and stacking would sit
beside these in a module of its own (``device.activities.deposit``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from device import restart
from device import screens as S
from device.cash import value_of
from device.recovery import format_notes
from device.screens import Screen, money
from drivers.errors import DispenserFault, DriverError
from drivers.interfaces import CassetteStatus
from protocol.response_codes import ReversalReason

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = ["dispensing", "presenting_cash"]

log = logging.getLogger(__name__)


def _not_dispensed(atm: AtmController) -> None:
    """No note left the dispenser: say so, reverse in full and print."""
    s = atm.session
    s.message = "Unable to dispense cash. Your account has not been charged"
    s.receipt_note = "NO CASH DISPENSED - REVERSED"
    atm.reverse_session(0, ReversalReason.NO_CASH)
    atm.post("dispense_failed")


async def dispensing(atm: AtmController) -> None:
    s = atm.session
    s.end_session = True
    atm.show(S.dispensing(s.amount_cents))
    try:
        before = await atm.devices.dispenser.status()
    except DriverError as exc:
        # No dispense command was given: certainly no note left.
        atm.journal.write("DISPENSE_NOT_STARTED", stan=s.stan, error=type(exc).__name__)
        atm.cash_fault = "dispenser not answering"
        _not_dispensed(atm)
        return
    try:
        if await atm.devices.dispenser.notes_in_tray():
            # Notes nobody took must not go to this customer (issue 12 item 3).
            await restart.purge_tray(atm.journal, atm.counters, atm.devices.dispenser, None)
    except DriverError as exc:
        atm.journal.write("DISPENSE_NOT_STARTED", stan=s.stan, error=type(exc).__name__)
        atm.cash_fault = "exit tray cannot be cleared"
        _not_dispensed(atm)
        return
    atm.journal.write(
        "DISPENSE_START",
        stan=s.stan,
        amount=s.amount_cents,
        notes=format_notes(s.notes),
        before=format_notes({c.index: c.count for c in before}),
    )
    try:
        result = await atm.devices.dispenser.dispense(s.notes)
    except DispenserFault as exc:
        s.presented = dict(exc.dispensed)
        s.dispensed_cents = value_of(s.presented, before)
        atm.counters.add("dispensed", s.presented, key=f"{s.stan}:dispensed")
        atm.journal.write(
            "DISPENSE_FAULT",
            stan=s.stan,
            code=exc.code,
            dispensed=s.dispensed_cents,
            notes=format_notes(s.presented),
        )
        atm.cash_fault = f"dispenser fault {exc.code}"
        if s.dispensed_cents:
            s.partial = True
            atm.post("dispensed")
            return
        _not_dispensed(atm)
        return
    except DriverError as exc:
        # Timeout, garbled reply or lost port mid-dispense: nobody knows yet what left.
        await _dispense_unknown(atm, before, exc)
        return
    s.presented = dict(result.dispensed)
    s.dispensed_cents = value_of(s.presented, before)
    # Booked under the transaction's keys: recovery replays the journal's bookings and a
    # key already booked is skipped, so a kill before DISPENSE_RESULT counts nothing twice.
    atm.counters.add("dispensed", s.presented, key=f"{s.stan}:dispensed")
    atm.counters.add("rejected", result.rejected, key=f"{s.stan}:rejected")
    atm.journal.write(
        "DISPENSE_RESULT",
        stan=s.stan,
        dispensed=s.dispensed_cents,
        notes=format_notes(s.presented),
        rejected=format_notes(result.rejected),
    )
    atm.post("dispensed")


async def _dispense_unknown(
    atm: AtmController, before: list[CassetteStatus], error: DriverError
) -> None:
    """The dispenser stopped answering (or answered nonsense) during a dispense. Journal
    that first; then ask the dispenser what it counted out. Known: carry on as a complete
    or partial dispense. Unknown: no reversal (the customer may hold the cash), the
    transaction is journaled as suspect for the operator to settle at balancing, the card
    goes back and cash service stops."""
    s = atm.session
    atm.journal.write(
        "DISPENSE_UNKNOWN",
        stan=s.stan,
        amount=s.amount_cents,
        notes=format_notes(s.notes),
        error=f"{type(error).__name__}: {error}",
    )
    atm.cash_fault = "dispense outcome unknown"
    counted: dict[int, int] | None = None
    try:
        await atm.devices.dispenser.status()
        reported = await atm.devices.dispenser.counted_out()
        if reported is not None:
            counted = {i: n for i, n in reported.items() if n}
    except DriverError as exc:
        log.warning("dispenser does not answer after the dispense: %s", exc)
    if counted is not None:
        s.presented = counted
        s.dispensed_cents = value_of(counted, before)
        atm.counters.add("dispensed", counted, key=f"{s.stan}:dispensed")
        if s.dispensed_cents >= s.amount_cents:
            atm.journal.write(
                "DISPENSE_RESULT",
                stan=s.stan,
                dispensed=s.dispensed_cents,
                notes=format_notes(counted),
                rejected="-",
                established="yes",
            )
            atm.post("dispensed")
            return
        atm.journal.write(
            "DISPENSE_FAULT",
            stan=s.stan,
            code="timeout",
            dispensed=s.dispensed_cents,
            notes=format_notes(counted),
            established="yes",
        )
        if s.dispensed_cents:
            s.partial = True
            atm.post("dispensed")
            return
        _not_dispensed(atm)
        return
    s.suspect = True
    atm.journal.write(
        "DISPENSE_SUSPECT",
        stan=s.stan,
        amount=s.amount_cents,
        notes=format_notes(s.notes),
        why="dispenser did not report what it counted out; settle at balancing",
    )
    s.message = "We could not confirm your cash. The bank will check this transaction"
    s.receipt_note = "DISPENSE NOT CONFIRMED - UNDER REVIEW"
    atm.post("dispense_unknown")


async def presenting_cash(atm: AtmController) -> None:
    s = atm.session
    screen = S.take_cash(s.dispensed_cents)
    if s.partial:
        screen = Screen(
            screen.id,
            screen.title,
            (f"Only {money(s.dispensed_cents)} could be dispensed", *screen.lines),
        )
    atm.show(screen)
    if await atm.devices.dispenser.wait_taken(atm.person_timeout()):
        atm.journal.write("CASH_TAKEN", stan=s.stan, amount=s.dispensed_cents)
        if s.partial:
            s.receipt_note = f"DISPENSED {money(s.dispensed_cents)} ONLY"
            s.message = f"Only {money(s.dispensed_cents)} was dispensed; the rest is refunded"
            atm.reverse_session(s.dispensed_cents, ReversalReason.PARTIAL)
        atm.post("cash_taken")
        return
    # Journaled as intended before the device is told (issue 12 item 1): a kill around the
    # retract command is resolved at restart from the dispenser's own retract count.
    before_count = await atm.devices.dispenser.retracted_count()
    atm.journal.write(
        "RETRACT_INTENDED",
        stan=s.stan,
        amount=s.dispensed_cents,
        notes=format_notes(s.presented),
        count_before="-" if before_count is None else before_count,
    )
    count = await atm.devices.dispenser.retract()
    atm.counters.move(s.presented, "dispensed", "retracted", key=f"{s.stan}:retracted")
    atm.journal.write("CASH_RETRACTED", stan=s.stan, notes=count, moved=format_notes(s.presented))
    s.receipt_note = "CASH RETRACTED - REVERSED"
    s.message = "Cash not taken: retracted, your account has not been charged"
    s.dispensed_cents = 0
    atm.reverse_session(0, ReversalReason.CASH_NOT_TAKEN)
    atm.post("cash_retracted")
