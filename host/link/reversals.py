"""Reversal advices (0420, repeated as 0421) on the host: find the original, post the exact
opposite (or the undispensed part), at most once.

The original is the ``LinkRequest`` of the same terminal with the STAN and transmission time of
DE 90. The rules (``docs/protocol.md``, "Reversals"):

* An advice is recorded by terminal + its own STAN + its own DE 7; a repeat gets the recorded
  answer and changes nothing.
* Unknown original: acknowledged (00), changes nothing now, and is remembered: if the original
  arrives later (the reversal overtook it), the link server applies the reversal right after
  approving it (``apply_waiting``), so a request the terminal gave up on never stays applied.
* DE 3 or DE 4 that differ from the original's: 12 (processing code) or 13 (amount), nothing
  moves; the record keeps the answer for repeats.
* Declined original, or one already reversed (``Posting.reverses_id`` is unique): 00, nothing.
* A withdrawal is credited back by its amount minus DE 95's amount actually dispensed (0 when
  absent), as a ``withdrawal-reversal`` posting linked to the original; the daily limit counts
  it, so the undispensed part is given back to the limit too. A transfer is reversed in full
  as a ``transfer-reversal`` posting, which gives the day's transfer limit back. A deposit
  (cash or check) is taken back in full as a ``deposit-reversal`` /
  ``check-deposit-reversal`` posting and its holds are cancelled.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from host.bank import audit
from host.bank.holds import DEPOSIT_KINDS, cancel_holds
from host.bank.ledger import lock_accounts, post
from host.bank.models import Entry, LinkRequest, Posting
from host.link.models import ReversalAdvice
from protocol.errors import MessageError
from protocol.messages import Message, parse_amount
from protocol.response_codes import ResponseCode

__all__ = ["AdviceData", "ReversalOutcome", "ReversalService", "parse_advice"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class AdviceData:
    terminal_id: str
    stan: str
    transmission_time: str
    original_mti: str
    original_stan: str
    original_time: str
    processing_code: str
    amount_cents: int
    dispensed_cents: int
    reason: str


@dataclass(frozen=True)
class ReversalOutcome:
    response_code: ResponseCode
    status: str
    reversed_cents: int = 0


def parse_advice(message: Message) -> AdviceData:
    """Read an 0420/0421; ``MessageError`` names the first bad field."""
    for field in ("3", "4", "7", "11", "41", "90"):
        if not message.get(field):
            raise MessageError(f"reversal advice without field {field}", field=field)
    de90 = message["90"]
    if len(de90) != 42 or not de90.isdigit():
        raise MessageError("field 90 must be 42 digits", field="90")
    dispensed = 0
    if "95" in message:
        de95 = message["95"]
        if len(de95) != 42:
            raise MessageError("field 95 must be 42 characters", field="95")
        dispensed = parse_amount(de95[:12], "95")
    reason = message.get("60", "")
    return AdviceData(
        terminal_id=message["41"],
        stan=message["11"],
        transmission_time=message["7"],
        original_mti=de90[0:4],
        original_stan=de90[4:10],
        original_time=de90[10:20],
        processing_code=message["3"],
        amount_cents=parse_amount(message["4"]),
        dispensed_cents=dispensed,
        reason=reason[:4],
    )


def _waiting(terminal_id: str, stan: str, transmission_time: str) -> Select[ReversalAdvice]:
    """Advices of ``terminal_id`` still waiting for their original (STAN, DE 7)."""
    return select(ReversalAdvice).where(
        ReversalAdvice.terminal_id == terminal_id,
        ReversalAdvice.original_stan == stan,
        ReversalAdvice.original_time == transmission_time,
        ReversalAdvice.status == "original-unknown",
    )


# Answers other than 00 (every other status is acknowledged with 00).
_CODES = {
    "invalid-amount": ResponseCode.INVALID_AMOUNT,
    "amount-mismatch": ResponseCode.INVALID_AMOUNT,
    "processing-code-mismatch": ResponseCode.INVALID_TRANSACTION,
}


def _mismatch(record: ReversalAdvice, original: LinkRequest) -> str:
    """Does the advice describe another request than the one its DE 90 names? Sets the
    record's status and says why, or returns "" when DE 3 and DE 4 agree. An advice recorded
    before DE 3 was kept (empty) is checked on its amount only."""
    if record.processing_code and record.processing_code != original.processing_code:
        record.status = "processing-code-mismatch"
        return f"DE 3 {record.processing_code} but the original had {original.processing_code}"
    if record.amount_cents != original.amount_cents:
        record.status = "amount-mismatch"
        return f"DE 4 {record.amount_cents} but the original had {original.amount_cents}"
    return ""


def _audit(session: Session, record: ReversalAdvice, now: dt.datetime) -> None:
    """One audit row per reversal advice answered the first time (and again when an advice
    that overtook its original is applied later), in the transaction that posts it."""
    audit.record(
        session,
        audit.terminal_actor(record.terminal_id),
        "reversal",
        f"terminal {record.terminal_id} STAN {record.original_stan}",
        None,
        {
            "status": record.status,
            "reason": record.reason,
            "amount_cents": record.amount_cents,
            "dispensed_cents": record.dispensed_cents,
            "reversed_cents": record.reversed_cents,
            "stan": record.stan,
            "posting": record.posting_id,
        },
        now,
    )


class ReversalService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def handle(self, advice: AdviceData) -> ReversalOutcome:
        """Apply ``advice`` at most once and return what to answer."""
        for _attempt in range(3):
            try:
                outcome = self._handle_once(advice)
            except IntegrityError:
                # Another worker recorded this advice or reversed the original first: the
                # next pass sees its work and answers from it.
                log.info("concurrent reversal of STAN %s, retrying", advice.original_stan)
                continue
            if outcome.status == "original-unknown":
                # The original may have been committed between our look-up and our commit.
                self.apply_waiting(advice.terminal_id, advice.original_stan, advice.original_time)
            return outcome
        return ReversalOutcome(ResponseCode.MALFUNCTION, "retry")

    def apply_waiting(self, terminal_id: str, stan: str, transmission_time: str) -> int:
        """Apply an advice that arrived before its original (called after the original is
        approved). Returns the cents credited back. Almost always nothing waits: that is
        found with one statement outside a transaction (no BEGIN/ROLLBACK round trips)."""
        with self._sessions() as session:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            if session.scalar(_waiting(terminal_id, stan, transmission_time).limit(1)) is None:
                return 0
        try:
            with self._sessions.begin() as session:
                waiting = session.scalars(
                    _waiting(terminal_id, stan, transmission_time).order_by(ReversalAdvice.id)
                ).all()
                for record in waiting:
                    self._apply(session, record)
                    if record.status == "applied":
                        _audit(session, record, self._clock())
                        log.warning(
                            "reversal of terminal %s STAN %s applied after its original arrived",
                            terminal_id,
                            stan,
                        )
                        return record.reversed_cents
        except IntegrityError:
            log.info("waiting reversal of STAN %s applied by another worker", stan)
        return 0

    def _handle_once(self, advice: AdviceData) -> ReversalOutcome:
        with self._sessions.begin() as session:
            record = session.scalar(
                select(ReversalAdvice).where(
                    ReversalAdvice.terminal_id == advice.terminal_id,
                    ReversalAdvice.stan == advice.stan,
                    ReversalAdvice.transmission_time == advice.transmission_time,
                )
            )
            if record is not None:
                if record.status == "original-unknown":
                    self._apply(session, record)
                log.info(
                    "repeat of reversal advice %s/%s answered from the record (%s)",
                    advice.terminal_id,
                    advice.stan,
                    record.status,
                )
                return self._outcome(record)
            record = ReversalAdvice(
                terminal_id=advice.terminal_id,
                stan=advice.stan,
                transmission_time=advice.transmission_time,
                original_mti=advice.original_mti,
                original_stan=advice.original_stan,
                original_time=advice.original_time,
                processing_code=advice.processing_code,
                amount_cents=advice.amount_cents,
                dispensed_cents=advice.dispensed_cents,
                reason=advice.reason,
                status="pending",
                reversed_cents=0,
                received_at=self._clock(),
            )
            session.add(record)
            session.flush()
            self._apply(session, record)
            _audit(session, record, self._clock())
            log.info(
                "reversal advice %s/%s for STAN %s (reason %s): %s, %d cents back",
                advice.terminal_id,
                advice.stan,
                advice.original_stan,
                advice.reason or "-",
                record.status,
                record.reversed_cents,
            )
            return self._outcome(record)

    @staticmethod
    def _outcome(record: ReversalAdvice) -> ReversalOutcome:
        code = _CODES.get(record.status, ResponseCode.APPROVED)
        return ReversalOutcome(code, record.status, record.reversed_cents)

    def _apply(self, session: Session, record: ReversalAdvice) -> None:
        original = session.scalar(
            select(LinkRequest).where(
                LinkRequest.terminal_id == record.terminal_id,
                LinkRequest.stan == record.original_stan,
                LinkRequest.transmission_time == record.original_time,
                LinkRequest.mti_class == record.original_mti,
            )
        )
        if original is None:
            record.status = "original-unknown"
            return
        mismatch = _mismatch(record, original)
        if mismatch:
            log.warning(
                "reversal advice %s/%s for STAN %s refused: %s",
                record.terminal_id,
                record.stan,
                record.original_stan,
                mismatch,
            )
            return
        if original.response_code != ResponseCode.APPROVED or original.posting_id is None:
            record.status = "original-declined"
            return
        posting = session.get(Posting, original.posting_id)
        assert posting is not None
        if session.scalar(select(Posting.id).where(Posting.reverses_id == posting.id)):
            record.status = "already-reversed"
            return
        entries = list(session.scalars(select(Entry).where(Entry.posting_id == posting.id)))
        locked = lock_accounts(session, sorted({e.account_id for e in entries}))
        if posting.kind == "withdrawal":
            debit = next(e for e in entries if e.amount_cents < 0)
            credit = next(e for e in entries if e.amount_cents > 0)
            amount = -debit.amount_cents
            if record.dispensed_cents > amount:
                record.status = "invalid-amount"
                return
            back = amount - record.dispensed_cents
            if back == 0:
                record.status = "fully-dispensed"
                return
            legs = [(locked[debit.account_id], back), (locked[credit.account_id], -back)]
            kind = "withdrawal-reversal"
        elif posting.kind in DEPOSIT_KINDS:
            # The whole deposit is taken back (the notes went back to the customer, or are
            # suspect); its holds go with it.
            legs = [(locked[e.account_id], -e.amount_cents) for e in entries]
            back = sum(a for _, a in legs if a > 0)
            kind = f"{posting.kind}-reversal"
            cancel_holds(session, posting.id, self._clock())
        else:
            # A transfer (own accounts or another customer's) is reversed in full, with the
            # kind the ledger check and the daily limit expect of its reversal.
            legs = [(locked[e.account_id], -e.amount_cents) for e in entries]
            back = sum(a for _, a in legs if a > 0)
            kind = f"{posting.kind}-reversal"
        reversal = post(
            session,
            kind,
            legs,
            description=f"reversal {record.terminal_id} STAN {record.original_stan}",
            terminal_id=record.terminal_id,
            stan=record.stan,
            rrn=posting.rrn,
            reverses=posting,
            at=self._clock(),
        )
        record.status = "applied"
        record.reversed_cents = back
        record.posting_id = reversal.id
