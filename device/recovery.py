"""Restart recovery: what a controller killed mid-transaction left unfinished.

Pure: it reads journal records (``device.journal``) and the cassette counts the dispenser
reports now, and says which approved withdrawals need a reversal and for how much. The
controller queues those reversals (``HostLink.queue_reversal``) and journals
``REVERSAL_QUEUED`` for each, so a second restart finds nothing left to do.

Which requests are reversed is ``device.reversal_policy``, the same rules the live link
follows. What the journal tells, per STAN of a withdrawal or transfer:

* sent, no response journaled (stopped while waiting for the host): the host may have
  approved it, so a full reversal (4021), for a transfer as for a withdrawal; one of a request
  the host never applied changes nothing there. Unless a ``REVERSAL_QUEUED`` line follows:
  ``HostLink`` reverses a 0200 that got no answer in time (4021) or whose approval came late
  (4006) by itself, and the controller journals that (``by=link``) the moment the advice is
  persisted, before ``TXN_NO_RESPONSE``; such a request is never reversed a second time.
* approved transfer: complete, nothing more to do. The rest of this list is about approved
  withdrawals.
* approved, never reached ``DISPENSE_START``: no note left, full reversal (4017).
* ``DISPENSE_START`` without a result: the dispense command was given and the controller died.
  Where the dispenser's counts are physical (``CashDispenser.counts_physical``), the cassette
  counts journaled before the command, compared with the counts now, tell how many notes
  were counted out: none, full reversal (4017); some, partial reversal (4004) of the rest;
  all of them, nothing to reverse. Where they are not (LCDM-2000: the driver lowers its
  counts only when a reply arrives) nobody can say what left: a suspect, never a reversal.
* ``DISPENSE_FAULT`` without ``REVERSAL_QUEUED``: the fault's ``dispensed`` value is known; the
  reversal was not queued yet.
* ``CASH_RETRACTED`` without ``REVERSAL_QUEUED``: full reversal (4018).
* ``DISPENSE_RESULT`` without ``CASH_TAKEN``/``CASH_RETRACTED``: the notes were presented and we
  cannot know whether they were taken; treated as taken (no reversal) and journaled as such
  for the operator's balancing.
* ``DISPENSE_UNKNOWN`` (the dispenser stopped answering mid-dispense) without an established
  ``DISPENSE_RESULT``/``DISPENSE_FAULT`` or a ``DISPENSE_SUSPECT``: the controller died while
  finding out. Never reversed blindly: it becomes a suspect (``Unfinished.suspect``), journaled
  ``DISPENSE_SUSPECT`` for the operator. A ``DISPENSE_SUSPECT`` is settled only by the
  operator (``SUSPECT_SETTLED``); ``find_suspects`` lists those still open.

Deposits (``open_deposit``, ``open_envelope``; acted on by ``device.restart``). The policy: the
customer never loses a note they inserted and the bank never credits a note it does not
hold, and the notes follow the host's answer as the journal records it:

* a cash deposit approved (``TXN_RESPONSE`` 00 journaled) whose notes were not all journaled
  stacked: the host credited it, so the notes are the bank's. What is still in escrow is
  stacked and the deposit completed (``DEPOSIT_STACKED`` with ``recovered=yes``; the approval
  was the host's posting, so no further message is sent). If stacking fails it goes as a
  live stacking failure does: a full reversal (4007), the escrow returned, the notes the
  acceptor kept journaled ``DEPOSIT_SUSPECT``.
* any other counted deposit (never sent, declined, no answer journaled, reversed): notes in
  escrow are returned to the entrance (``NOTES_RETURNED``, ``recovered=yes``), as an ID003
  validator itself returns a note it holds at power-up. A request whose answer is not
  journaled is reversed in full (4021) by ``find_unfinished``, so nothing stays credited.
* an envelope taken in (``ENVELOPE_TAKEN``) whose request was never sent or never answered:
  it lies in the bin without a credit (a no-answer request is reversed as above), journaled
  ``ENVELOPE_UNCREDITED`` for the operator, who processes the check by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from device.journal import JournalRecord
from device.reversal_policy import reversed_when_unanswered
from drivers.interfaces import CassetteStatus
from protocol.messages import Message, TransactionType
from protocol.response_codes import ReversalReason

__all__ = [
    "OpenDeposit",
    "OpenEnvelope",
    "Presentation",
    "Suspect",
    "Unfinished",
    "counter_steps",
    "find_suspects",
    "find_unfinished",
    "format_deposit_notes",
    "format_notes",
    "journaled_reversals",
    "last_withdrawal",
    "open_deposit",
    "open_envelope",
    "open_presentation",
    "parse_deposit_notes",
    "parse_notes",
]


def format_notes(notes: Mapping[int, int]) -> str:
    return ",".join(f"{i}:{n}" for i, n in sorted(notes.items())) or "-"


def parse_notes(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    if not text or text == "-":
        return out
    for part in text.split(","):
        index, _, count = part.partition(":")
        if index.isdigit() and count.lstrip("-").isdigit():
            out[int(index)] = int(count)
    return out


@dataclass(frozen=True)
class Unfinished:
    stan: str
    original: Message  # DE 3, 4, 7, 11, 41, 42, 49 of the approved request (no PAN)
    amount_cents: int
    dispensed_cents: int
    reason: str
    # notes that left the cassettes during the interrupted dispense (for the counters)
    counted_out: dict[int, int] = field(default_factory=dict)
    note: str = ""  # a human-readable explanation for the journal
    # The dispense outcome is unknown: no reversal, the operator settles it.
    suspect: bool = False

    @property
    def needs_reversal(self) -> bool:
        return not self.suspect and self.dispensed_cents < self.amount_cents


@dataclass(frozen=True)
class Suspect:
    """An approved withdrawal whose dispense outcome nobody knows, waiting for the operator."""

    stan: str
    original: Message
    amount_cents: int
    notes: dict[int, int]


@dataclass
class _Txn:
    request: JournalRecord
    answered: bool = False  # a response, or the link's own timeout handling, was journaled
    approved: bool = False
    start: JournalRecord | None = None
    fault: JournalRecord | None = None
    result: bool = False
    reversed: bool = False
    taken: bool = False
    retracted: bool = False
    unknown: bool = False  # DISPENSE_UNKNOWN
    suspect: bool = False  # DISPENSE_SUSPECT (handed to the operator)


def _original(request: JournalRecord) -> Message:
    return {
        "t": request.get("mti", "0200"),
        "3": request.get("proc", ""),
        "4": f"{int(request.get('amount', '0')):012d}",
        "7": request.get("time", ""),
        "11": request.get("stan", ""),
        "41": request.get("terminal", ""),
        "42": request.get("acceptor", ""),
        "49": request.get("currency", ""),
    }


def find_unfinished(
    records: Sequence[JournalRecord],
    cassettes_now: Sequence[CassetteStatus],
    *,
    counts_physical: bool = True,
) -> list[Unfinished]:
    txns: dict[str, _Txn] = {}
    for record in records:
        event, stan = record.get("event", ""), record.get("stan", "")
        if event == "TXN_REQUEST":
            if reversed_when_unanswered(record.get("mti", "0200"), record.get("proc", "")):
                txns[stan] = _Txn(record)
            continue
        txn = txns.get(stan)
        if txn is None:
            continue
        if event == "TXN_RESPONSE":
            txn.answered = True
            txn.approved = record.get("code") == "00"
        elif event == "TXN_NO_RESPONSE":
            txn.answered = True  # HostLink reverses a timed-out request itself
        elif event == "DISPENSE_START":
            txn.start = record
        elif event == "DISPENSE_FAULT":
            txn.fault = record
        elif event == "DISPENSE_RESULT":
            txn.result = True
        elif event in ("REVERSAL_QUEUED", "RECOVERY_NO_REVERSAL"):
            txn.reversed = True
        elif event == "CASH_TAKEN":
            txn.taken = True
        elif event == "CASH_RETRACTED":
            txn.retracted = True
        elif event == "DISPENSE_UNKNOWN":
            txn.unknown = True
        elif event in ("DISPENSE_SUSPECT", "SUSPECT_SETTLED"):
            txn.suspect = True

    denominations = {c.index: c.denomination_cents for c in cassettes_now}
    counts_now = {c.index: c.count for c in cassettes_now}
    out: list[Unfinished] = []
    for stan, txn in txns.items():
        amount = int(txn.request.get("amount", "0"))
        original = _original(txn.request)
        if not txn.answered and not txn.reversed:
            # Stopped while waiting for the host: it may have approved. A reversal of what
            # the host never applied is acknowledged and changes nothing.
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    0,
                    ReversalReason.TIMEOUT,
                    note="stopped before the response",
                )
            )
            continue
        if not txn.approved or txn.reversed or txn.suspect:
            continue
        if txn.request.get("proc", "")[:2] != TransactionType.WITHDRAWAL:
            continue  # an approved transfer is complete: nothing was to be dispensed
        if txn.unknown and txn.fault is None and not txn.result:
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    0,
                    "",
                    note="dispense outcome unknown: suspect, settle at balancing",
                    suspect=True,
                )
            )
            continue
        if txn.fault is not None:
            dispensed = 0 if txn.retracted else int(txn.fault.get("dispensed", "0"))
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    dispensed,
                    ReversalReason.PARTIAL if dispensed else ReversalReason.NO_CASH,
                    note="dispense fault before the reversal was queued",
                )
            )
        elif txn.retracted:
            # Retracted after a result, or (recovery found the notes in the tray) after a
            # dispense that was never answered: nothing reached the customer.
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    0,
                    ReversalReason.CASH_NOT_TAKEN,
                    note="cash retracted, not reversed",
                )
            )
        elif txn.result:
            if not txn.taken:
                out.append(
                    Unfinished(
                        stan,
                        original,
                        amount,
                        amount,
                        "",
                        note="notes presented, outcome unknown: counted as taken",
                    )
                )
        elif txn.start is not None and not counts_physical:
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    0,
                    "",
                    note="stopped during the dispense; the dispenser cannot say what it "
                    "counted out: suspect, settle at balancing",
                    suspect=True,
                )
            )
        elif txn.start is not None:
            before = parse_notes(txn.start.get("before", ""))
            asked = parse_notes(txn.start.get("notes", ""))
            counted = {
                i: max(0, min(asked.get(i, 0), before[i] - counts_now[i]))
                for i in asked
                if i in before and i in counts_now
            }
            dispensed = sum(denominations.get(i, 0) * n for i, n in counted.items())
            dispensed = min(dispensed, amount)
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    dispensed,
                    ReversalReason.PARTIAL if dispensed else ReversalReason.NO_CASH,
                    counted_out={i: n for i, n in counted.items() if n},
                    note="controller stopped during the dispense",
                )
            )
        else:
            out.append(
                Unfinished(
                    stan,
                    original,
                    amount,
                    0,
                    ReversalReason.NO_CASH,
                    note="approved, dispense never started",
                )
            )
    return out


@dataclass(frozen=True)
class Presentation:
    """The last withdrawal's notes left in the exit tray by the interrupted session: presented
    (``DISPENSE_RESULT``, or a partial ``DISPENSE_FAULT``) and neither taken nor retracted.
    ``intent`` is its ``RETRACT_INTENDED`` record when the retract was journaled as intended
    but never confirmed (the process died around the retract command)."""

    stan: str
    notes: dict[int, int]
    intent: JournalRecord | None


def last_withdrawal(records: Sequence[JournalRecord]) -> tuple[str, list[JournalRecord]]:
    """The STAN of the last withdrawal request in the journal and its records (the one
    transaction a crash can have interrupted); ("", []) when there is none."""
    stan = ""
    for record in records:
        if record.get("event") == "TXN_REQUEST" and record.get("proc", "")[:2] == "01":
            stan = record.get("stan", "")
    if not stan:
        return "", []
    return stan, [r for r in records if r.get("stan") == stan]


def open_presentation(
    records: Sequence[JournalRecord], cassettes_now: Sequence[CassetteStatus] | None = None
) -> Presentation | None:
    """With ``cassettes_now`` (a dispenser whose counts are physical), a dispense that was
    never answered counts too: its notes are those the cassette counts say left."""
    stan, steps = last_withdrawal(records)
    notes: dict[int, int] = {}
    intent: JournalRecord | None = None
    for record in steps:
        event = record.get("event")
        if event == "DISPENSE_START" and cassettes_now is not None:
            before = parse_notes(record.get("before", ""))
            asked = parse_notes(record.get("notes", ""))
            now = {c.index: c.count for c in cassettes_now}
            notes = {
                i: min(n, before[i] - now[i])
                for i, n in asked.items()
                if i in before and i in now and before[i] > now[i]
            }
        elif event in ("DISPENSE_RESULT", "DISPENSE_FAULT"):
            notes = parse_notes(record.get("notes", ""))
        elif event == "RETRACT_INTENDED":
            intent = record
        elif event in ("CASH_TAKEN", "CASH_RETRACTED", "DISPENSE_SUSPECT"):
            return None
    if not any(notes.values()):
        return None
    return Presentation(stan, notes, intent)


def counter_steps(records: Sequence[JournalRecord]) -> list[tuple[str, str, dict[int, int]]]:
    """The counters bookings the journal records for the last withdrawal, as (key, kind,
    notes): kind is ``dispensed``, ``rejected`` or ``retracted`` (a move from dispensed).
    Replayed at restart with ``CashCounters``' keys, so each is booked exactly once."""
    stan, steps = last_withdrawal(records)
    out: list[tuple[str, str, dict[int, int]]] = []
    for record in steps:
        event = record.get("event")
        if event in ("DISPENSE_RESULT", "DISPENSE_FAULT"):
            out.append((f"{stan}:dispensed", "dispensed", parse_notes(record.get("notes", ""))))
            rejected = parse_notes(record.get("rejected", ""))
            if rejected:
                out.append((f"{stan}:rejected", "rejected", rejected))
        elif event == "CASH_RETRACTED" and "moved" in record:
            out.append((f"{stan}:retracted", "retracted", parse_notes(record["moved"])))
        elif event == "SUSPECT_SETTLED" and record.get("outcome") == "dispensed":
            out.append((f"{stan}:dispensed", "dispensed", parse_notes(record.get("notes", ""))))
    return out


def journaled_reversals(records: Sequence[JournalRecord]) -> list[tuple[Message, int, str]]:
    """Every reversal the journal says was queued, as (original, dispensed cents, reason),
    oldest first: what the store-and-forward queue must hold or have delivered. Used after
    the operator accepted a damaged store-and-forward line, to queue again what it may have
    held (the host acknowledges a repeat of what it already reversed and changes nothing)."""
    requests: dict[str, JournalRecord] = {}
    out: list[tuple[Message, int, str]] = []
    for record in records:
        event, stan = record.get("event", ""), record.get("stan", "")
        if event == "TXN_REQUEST":
            requests[stan] = record
        elif event == "REVERSAL_QUEUED" and stan in requests:
            dispensed = record.get("dispensed", "0")
            out.append(
                (
                    _original(requests[stan]),
                    int(dispensed) if dispensed.isdigit() else 0,
                    record.get("reason", ""),
                )
            )
    return out


def find_suspects(records: Sequence[JournalRecord]) -> list[Suspect]:
    """Withdrawals journaled ``DISPENSE_SUSPECT`` and not yet ``SUSPECT_SETTLED``, oldest first."""
    requests: dict[str, JournalRecord] = {}
    asked: dict[str, str] = {}  # notes asked for, from DISPENSE_START
    open_: dict[str, Suspect] = {}
    for record in records:
        event, stan = record.get("event", ""), record.get("stan", "")
        if event == "TXN_REQUEST":
            requests[stan] = record
        elif event == "DISPENSE_START":
            asked[stan] = record.get("notes", "")
        elif event == "DISPENSE_SUSPECT" and stan in requests:
            request = requests[stan]
            notes = parse_notes(record.get("notes", "")) or parse_notes(asked.get(stan, ""))
            open_[stan] = Suspect(stan, _original(request), int(request.get("amount", "0")), notes)
        elif event == "SUSPECT_SETTLED":
            open_.pop(stan, None)
    return list(open_.values())


# -- deposits -------------------------------------------------------------------------------


def format_deposit_notes(notes: Iterable[int]) -> str:
    """``[2000, 10000, 2000]`` -> ``"2000x2,10000x1"`` (cents x count, as journaled)."""
    counted = Counter(notes)
    return ",".join(f"{cents}x{count}" for cents, count in sorted(counted.items())) or "-"


def parse_deposit_notes(text: str) -> list[int]:
    """The inverse of ``format_deposit_notes``: one entry (cents) per note."""
    out: list[int] = []
    if not text or text == "-":
        return out
    for part in text.split(","):
        cents, _, count = part.partition("x")
        if cents.isdigit() and count.isdigit():
            out += [int(cents)] * int(count)
    return out


@dataclass(frozen=True)
class OpenDeposit:
    """The last cash deposit counted (``DEPOSIT_COUNTED``) whose notes' fate (stacked,
    returned, suspect) is not journaled: the controller died in the middle of it."""

    notes: tuple[int, ...]  # cents per counted note
    stan: str = ""  # "" when the host was never asked
    original: Message | None = None
    approved: bool = False
    stack_fault: bool = False  # DEPOSIT_STACK_FAULT journaled
    reversed: bool = False
    suspect: bool = False  # DEPOSIT_SUSPECT journaled

    @property
    def amount_cents(self) -> int:
        return sum(self.notes)


@dataclass
class _Deposit:
    notes: tuple[int, ...]
    request: JournalRecord | None = None
    approved: bool = False
    stack_fault: bool = False
    reversed: bool = False
    suspect: bool = False


def open_deposit(records: Sequence[JournalRecord]) -> OpenDeposit | None:
    current: _Deposit | None = None
    for record in records:
        event, stan = record.get("event", ""), record.get("stan", "")
        if event == "DEPOSIT_COUNTED":
            current = _Deposit(tuple(parse_deposit_notes(record.get("notes", ""))))
            continue
        if current is None:
            continue
        if event == "TXN_REQUEST":
            is_deposit = record.get("proc", "")[:2] == TransactionType.DEPOSIT
            if current.request is not None or not is_deposit:
                current = None  # another transaction: the counted notes went their way
                continue
            current.request = record
        elif current.request is not None and stan and stan != current.request.get("stan"):
            continue
        elif event == "TXN_RESPONSE":
            current.approved = record.get("code") == "00"
        elif event == "DEPOSIT_STACK_FAULT":
            current.stack_fault = True
        elif event in ("REVERSAL_QUEUED", "REVERSAL_NOT_REPEATED"):
            current.reversed = True
        elif event == "DEPOSIT_SUSPECT":
            current.suspect = True
            if not current.stack_fault:
                current = None  # notes that could not be returned: the operator has them
        elif event in ("DEPOSIT_STACKED", "NOTES_RETURNED"):
            current = None
    if current is None:
        return None
    request = current.request
    return OpenDeposit(
        notes=current.notes,
        stan=request.get("stan", "") if request is not None else "",
        original=_original(request) if request is not None else None,
        approved=current.approved,
        stack_fault=current.stack_fault,
        reversed=current.reversed,
        suspect=current.suspect,
    )


@dataclass(frozen=True)
class OpenEnvelope:
    """The last envelope taken in (``ENVELOPE_TAKEN``) whose request was never sent or whose
    answer is not journaled: it lies in the bin and nobody has been credited for it."""

    amount_cents: int
    check: str
    stan: str  # "" when the host was never asked


def open_envelope(records: Sequence[JournalRecord]) -> OpenEnvelope | None:
    taken: JournalRecord | None = None
    stan = ""
    for record in records:
        event = record.get("event", "")
        if event == "ENVELOPE_TAKEN":
            taken, stan = record, ""
        elif taken is None:
            continue
        elif event == "TXN_REQUEST":
            if stan or record.get("proc", "")[:2] != TransactionType.CHECK_DEPOSIT:
                taken = None
            else:
                stan = record.get("stan", "")
        elif event == "TXN_RESPONSE" and stan and record.get("stan") == stan:
            taken = None  # answered: the live flow settled it
        elif event == "ENVELOPE_UNCREDITED":
            taken = None
    if taken is None:
        return None
    return OpenEnvelope(int(taken.get("amount", "0")), taken.get("check", ""), stan)
