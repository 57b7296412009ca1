"""Restart recovery, the part that acts: what a killed predecessor left in the devices and in
the journal, settled once, in an order that a second crash during recovery cannot spoil.

``device.recovery`` decides from the journal alone; this module also asks the devices (the
card reader, the exit tray, the dispenser's own retract count) and writes the outcome to the
journal, the counters and the store-and-forward queue. Every step is idempotent: run twice
(the process died during recovery), it books nothing twice.

1. The journal's counters bookings of the interrupted withdrawal are replayed with keys
   (``CashCounters``): notes are counted once whether the process died before or after the
   counters file was saved.
2. A card left inside the reader is retained (captured) or ejected, as
   ``DeviceConfig.card_left_at_restart`` says; journaled ``CARD_LEFT_INSIDE``.
3. Notes in the exit tray are never left for the next customer: they are retracted into the
   reject bin (``RETRACT_INTENDED`` first, then the command, then ``CASH_RETRACTED`` with the
   notes per cassette, or ``TRAY_PURGED`` when no journaled presentation explains them).
4. A retract journaled as intended but not confirmed, with an empty tray: the dispenser's own
   retract count, against the count journaled before the command, tells whether it happened
   (retracted: reversed) or not (the customer took the notes). A dispenser that keeps no such
   count makes it a suspect for the operator.
5. ``device.recovery.find_unfinished``: reversals (once each) and suspects.
6. Deposits (``device.recovery``'s deposit policy): an approved cash deposit's notes still in
   escrow are stacked and the deposit completed (or, if stacking fails, reversed with the
   escrow returned and the kept notes suspect); the notes of any other deposit are returned
   to the entrance, and if nobody takes them at once deposits stay off until the operator
   has looked (``deposit_fault``); an envelope in the bin without an answer to its request is
   journaled ``ENVELOPE_UNCREDITED``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from device.cash import CashCounters
from device.config import DeviceConfig
from device.journal import Journal, JournalRecord
from device.recovery import (
    OpenDeposit,
    Presentation,
    counter_steps,
    find_unfinished,
    format_deposit_notes,
    format_notes,
    journaled_reversals,
    open_deposit,
    open_envelope,
    open_presentation,
)
from drivers.errors import BillAcceptorFault, DriverError
from drivers.interfaces import AcceptorState, BillAcceptor, CardReader, CashDispenser
from protocol.messages import Message
from protocol.response_codes import ReversalReason

__all__ = ["RestartOutcome", "purge_tray", "recover", "requeue_reversals"]

log = logging.getLogger(__name__)

QueueReversal = Callable[[Message, int, str], bool]

RETAIN, EJECT = "retain", "eject"


@dataclass
class RestartOutcome:
    # Non-empty: cash service stays off until the operator has looked (suspects).
    cash_fault: str = ""
    # Non-empty: the ATM cannot serve at all (a card it could neither capture nor return).
    fault: str = ""
    # Non-empty: cash deposits stay off until the operator has looked.
    deposit_fault: str = ""
    notes: list[str] = field(default_factory=list)


async def recover(
    config: DeviceConfig,
    journal: Journal,
    counters: CashCounters,
    dispenser: CashDispenser,
    card_reader: CardReader,
    queue_reversal: QueueReversal,
    acceptor: BillAcceptor | None = None,
) -> RestartOutcome:
    """Settle what a killed predecessor left. ``JournalDamaged`` when the journal cannot be
    trusted (nothing is done then); ``DriverError`` when the dispenser does not answer."""
    outcome = RestartOutcome()
    records = journal.records()
    counters.load()
    status = await dispenser.status()
    counters.ensure_loaded(status)

    # 1. counters: the journal is the record of truth for the interrupted withdrawal.
    for key, kind, notes in counter_steps(records):
        if kind == "retracted":
            counters.move(notes, "dispensed", "retracted", key=key)
        else:
            counters.add(kind, notes, key=key)

    # 2. a card left inside
    await _card_left_inside(config, journal, card_reader, outcome)

    # 3 and 4. the exit tray and an unconfirmed retract
    presentation = open_presentation(records, status if dispenser.counts_physical else None)
    if await dispenser.notes_in_tray():
        await purge_tray(journal, counters, dispenser, presentation)
    elif presentation is not None and presentation.intent is not None:
        await _settle_retract(journal, counters, dispenser, presentation, outcome)
    records = journal.records()

    # 5. reversals and suspects
    for item in find_unfinished(records, status, counts_physical=dispenser.counts_physical):
        if item.suspect:
            outcome.cash_fault = "dispense outcome unknown"
            journal.write(
                "DISPENSE_SUSPECT",
                stan=item.stan,
                amount=item.amount_cents,
                notes="-",
                recovered="yes",
                why=item.note,
            )
            continue
        if item.counted_out:
            counters.add("dispensed", item.counted_out, key=f"{item.stan}:dispensed")
        if not item.needs_reversal:
            journal.write(
                "RECOVERY_NO_REVERSAL", stan=item.stan, amount=item.amount_cents, why=item.note
            )
            continue
        queued = queue_reversal(item.original, item.dispensed_cents, item.reason)
        journal.write(
            "REVERSAL_QUEUED",
            stan=item.stan,
            amount=item.amount_cents,
            dispensed=item.dispensed_cents,
            reason=item.reason,
            recovered="yes",
            why=item.note if queued else "already in the store-and-forward queue",
        )

    # 6. deposits
    if acceptor is not None:
        await _settle_deposit(journal, acceptor, records, queue_reversal, outcome)
    envelope = open_envelope(records)
    if envelope is not None:
        journal.write(
            "ENVELOPE_UNCREDITED",
            stan=envelope.stan or "-",
            amount=envelope.amount_cents,
            check=envelope.check,
            recovered="yes",
            why="in the bin, no answer journaled (a sent request is reversed); process by hand",
        )
    return outcome


async def _settle_deposit(
    journal: Journal,
    acceptor: BillAcceptor,
    records: list[JournalRecord],
    queue_reversal: QueueReversal,
    outcome: RestartOutcome,
) -> None:
    deposit = open_deposit(records)
    try:
        status = await acceptor.status()
    except DriverError as exc:
        log.warning("bill acceptor does not answer at restart: %s", exc)
        outcome.deposit_fault = "bill acceptor does not answer"
        return
    # ID003 does not say which notes it holds after a restart, only that it holds some.
    holding = bool(status.escrow) or status.state is AcceptorState.ESCROW
    if (
        deposit is not None
        and deposit.approved
        and not deposit.reversed
        and not deposit.stack_fault
        and deposit.original is not None
    ):
        # The host credited it: the notes are the bank's. Notes not in escrow any more were
        # stacked before the crash (stacking is the only step after an approval).
        error = "jam" if status.state is AcceptorState.JAM else ""
        stacked: dict[int, int] = {}
        if holding and not error:
            journal.write(
                "DEPOSIT_STACK_START",
                stan=deposit.stan,
                amount=deposit.amount_cents,
                notes=format_deposit_notes(status.escrow),
                recovered="yes",
            )
            try:
                stacked = await acceptor.stack()
            except BillAcceptorFault as exc:
                stacked, error = exc.stacked, exc.code or "fault"
            except DriverError as exc:
                error = type(exc).__name__
        if not error:
            journal.write(
                "DEPOSIT_STACKED",
                stan=deposit.stan,
                amount=deposit.amount_cents,
                notes=format_deposit_notes(deposit.notes),
                recovered="yes",
                why="approved before the restart",
            )
            return
        outcome.deposit_fault = f"bill acceptor {error}"
        journal.write(
            "DEPOSIT_STACK_FAULT",
            stan=deposit.stan,
            code=error,
            stacked=format_deposit_notes(c for c, n in stacked.items() for _ in range(n)),
            recovered="yes",
        )
        deposit = OpenDeposit(
            deposit.notes, deposit.stan, deposit.original, approved=True, stack_fault=True
        )
    if deposit is not None and deposit.stack_fault and not deposit.reversed:
        assert deposit.original is not None
        queued = queue_reversal(dict(deposit.original), 0, ReversalReason.DEVICE_FAILED)
        journal.write(
            "REVERSAL_QUEUED",
            stan=deposit.stan,
            amount=deposit.amount_cents,
            dispensed=0,
            reason=ReversalReason.DEVICE_FAILED,
            recovered="yes",
            why="deposit not stacked" if queued else "already in the store-and-forward queue",
        )
    returned: list[int] = []
    if holding:
        try:
            back = await acceptor.return_notes()
        except DriverError as exc:
            log.warning("bill acceptor cannot return the notes in escrow: %s", exc)
            outcome.deposit_fault = "notes in escrow not returned"
            back = {}
        returned = [c for c, n in back.items() for _ in range(n)]
    if deposit is not None and deposit.stack_fault:
        if not deposit.suspect:
            kept = list((Counter(deposit.notes) - Counter(returned)).elements())
            if kept:
                journal.write(
                    "DEPOSIT_SUSPECT",
                    stan=deposit.stan,
                    amount=sum(kept),
                    notes=format_deposit_notes(kept),
                    recovered="yes",
                    why="kept by the acceptor, not credited; settle at balancing",
                )
    elif deposit is not None and not returned and not holding:
        # Never credited and no longer in escrow: given back before the crash.
        returned = list(deposit.notes)
    if deposit is None and not holding:
        return
    journal.write(
        "NOTES_RETURNED",
        stan=(deposit.stan if deposit is not None else "") or "-",
        amount=sum(returned),
        notes=format_deposit_notes(returned),
        recovered="yes",
        why="deposit not completed before the restart",
    )
    if holding and not await acceptor.wait_returned_taken(0.0):
        # Nobody may be there to take them: deposits stop until the operator has looked.
        outcome.deposit_fault = outcome.deposit_fault or "returned notes not taken"
        journal.write("NOTES_NOT_TAKEN", recovered="yes")


async def _card_left_inside(
    config: DeviceConfig, journal: Journal, reader: CardReader, outcome: RestartOutcome
) -> None:
    try:
        if not await reader.card_inside():
            return
    except DriverError as exc:
        log.warning("card reader does not say whether a card is inside: %s", exc)
        return
    policy = config.card_left_at_restart
    journal.write("CARD_LEFT_INSIDE", policy=policy)
    try:
        if policy == EJECT:
            if await reader.eject(config.card_take_timeout):
                journal.write("CARD_RETURNED", why="left inside at restart")
                return
        await reader.capture()
    except DriverError as exc:
        outcome.fault = "card left inside the reader"
        journal.write("CARD_JAM", error=f"{type(exc).__name__}: {exc}", why="left at restart")
        return
    journal.write("CARD_CAPTURED", reason="left inside at restart")


async def purge_tray(
    journal: Journal,
    counters: CashCounters,
    dispenser: CashDispenser,
    presentation: Presentation | None,
) -> None:
    """Retract what lies in the exit tray into the reject bin: ``RETRACT_INTENDED`` (with the
    dispenser's retract count before) first, then the command, then ``CASH_RETRACTED`` for
    the presentation the notes belong to (its notes booked from dispensed to retracted), or
    ``TRAY_PURGED`` when none explains them."""
    stan = presentation.stan if presentation is not None else "-"
    before = await dispenser.retracted_count()
    journal.write(
        "RETRACT_INTENDED",
        stan=stan,
        why="notes in the exit tray at start-up",
        count_before="-" if before is None else before,
    )
    count = await dispenser.retract()
    if presentation is None:
        # Nothing in the journal explains these notes: they are in the reject bin now, and
        # the operator finds them there at balancing.
        journal.write("TRAY_PURGED", notes=count, why="no journaled presentation")
        return
    # Booked as dispensed first (a no-op when that step was booked before the crash).
    counters.add("dispensed", presentation.notes, key=f"{stan}:dispensed")
    counters.move(presentation.notes, "dispensed", "retracted", key=f"{stan}:retracted")
    journal.write(
        "CASH_RETRACTED",
        stan=stan,
        notes=count,
        moved=format_notes(presentation.notes),
        recovered="yes",
        why="left in the exit tray",
    )


async def _settle_retract(
    journal: Journal,
    counters: CashCounters,
    dispenser: CashDispenser,
    presentation: Presentation,
    outcome: RestartOutcome,
) -> None:
    intent: JournalRecord = presentation.intent or JournalRecord()
    stan = presentation.stan
    now = await dispenser.retracted_count()
    before = intent.get("count_before", "-")
    if now is None or not before.isdigit():
        outcome.cash_fault = "dispense outcome unknown"
        journal.write(
            "DISPENSE_SUSPECT",
            stan=stan,
            amount=intent.get("amount", "0"),
            notes=format_notes(presentation.notes),
            recovered="yes",
            why="retract not confirmed and the dispenser keeps no retract count; "
            "settle at balancing",
        )
        return
    if now - int(before) >= sum(presentation.notes.values()):
        counters.move(presentation.notes, "dispensed", "retracted", key=f"{stan}:retracted")
        journal.write(
            "CASH_RETRACTED",
            stan=stan,
            notes=now - int(before),
            moved=format_notes(presentation.notes),
            recovered="yes",
            why="the dispenser counted the retract",
        )
    else:
        journal.write(
            "CASH_TAKEN",
            stan=stan,
            recovered="yes",
            why="tray empty and no retract counted: the customer took the notes",
        )


def requeue_reversals(journal: Journal, queue_reversal: QueueReversal) -> int:
    """After the operator accepted a damaged store-and-forward line: queue again every
    reversal the journal records and the queue does not hold (it skips those it holds or
    knows as acknowledged); journaled ``REVERSAL_REQUEUED``. How many were queued."""
    count = 0
    for original, dispensed, reason in journaled_reversals(journal.records()):
        if queue_reversal(original, dispensed, reason):
            count += 1
            journal.write(
                "REVERSAL_REQUEUED",
                stan=original.get("11", ""),
                dispensed=dispensed,
                reason=reason,
                why="store-and-forward line damaged",
            )
    return count
