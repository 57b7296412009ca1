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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from device.cash import CashCounters
from device.config import DeviceConfig
from device.journal import Journal, JournalRecord
from device.recovery import (
    Presentation,
    counter_steps,
    find_unfinished,
    format_notes,
    journaled_reversals,
    open_presentation,
)
from drivers.errors import DriverError
from drivers.interfaces import CardReader, CashDispenser
from protocol.messages import Message

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
    notes: list[str] = field(default_factory=list)


async def recover(
    config: DeviceConfig,
    journal: Journal,
    counters: CashCounters,
    dispenser: CashDispenser,
    card_reader: CardReader,
    queue_reversal: QueueReversal,
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
    return outcome


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
