"""Authorization services: balance inquiry and withdrawal, with the checks of DESIGN section 4
in their order. Pure domain code over a SQLAlchemy session; the link server translates ISO
messages to ``CardRequest`` and ``Outcome`` back. Runs in a worker thread (bcrypt is slow by
design and must stay off the event loop).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from host.config import HostConfig
from host.ledger import lock_accounts, post
from host.models import Account, Card, CardAccount, Entry, LinkRequest, Posting, Terminal
from protocol.errors import PinBlockError
from protocol.masking import mask_pan
from protocol.messages import AccountType, Balance, TransactionType
from protocol.pinblock import decrypt_pin_block
from protocol.response_codes import ResponseCode

__all__ = ["AuthorizationService", "CardRequest", "Outcome"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class CardRequest:
    """A card-based request as the host understands it, independent of the wire format."""

    mti_class: str
    terminal_id: str
    stan: str
    transmission_time: str
    pan: str
    transaction: TransactionType
    from_account: AccountType
    to_account: AccountType
    amount_cents: int
    pin_block: bytes | None = None
    expiry: str | None = None
    currency: str = "840"
    # Transfers to another customer's account by number (DE 103); None: the card's own
    # account of type ``to_account``.
    to_account_number: str | None = None
    # PIN change: the new PIN's block, under the same key and format as ``pin_block``.
    new_pin_block: bytes | None = None
    # The terminal's current PIN key and block format, as the link layer knows them; None:
    # the configured development key (HostConfig.terminal_pin_key), format 0.
    pin_key: bytes | None = None
    pin_format: int = 0

    def __repr__(self) -> str:  # never shows the PAN in full, a PIN block or a key
        return (
            f"CardRequest({self.mti_class} {self.transaction.name} terminal={self.terminal_id} "
            f"stan={self.stan} pan={mask_pan(self.pan)} amount={self.amount_cents})"
        )


@dataclass(frozen=True)
class Outcome:
    response_code: ResponseCode
    rrn: str
    auth_code: str = ""
    balances: tuple[Balance, ...] = field(default_factory=tuple)


def _new_rrn(now: dt.datetime) -> str:
    return f"{now:%y%j}{secrets.randbelow(10**7):07d}"


class _Decline(Exception):
    def __init__(self, code: ResponseCode) -> None:
        self.code = code


class AuthorizationService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HostConfig,
        clock: Clock | None = None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def authorize(self, request: CardRequest) -> Outcome:
        """Apply ``request`` at most once and return its outcome."""
        now = self._clock()
        with self._sessions.begin() as session:
            previous = session.scalar(
                select(LinkRequest).where(
                    LinkRequest.terminal_id == request.terminal_id,
                    LinkRequest.stan == request.stan,
                    LinkRequest.transmission_time == request.transmission_time,
                    LinkRequest.mti_class == request.mti_class,
                )
            )
            if previous is not None:
                log.info("repeat of %r answered from the record", request)
                return Outcome(
                    ResponseCode(previous.response_code), previous.rrn, previous.auth_code
                )
            rrn = _new_rrn(now)
            posting: Posting | None = None
            balances: tuple[Balance, ...] = ()
            try:
                account = self._checks(session, request, now)
                if request.transaction is TransactionType.WITHDRAWAL:
                    posting = self._withdraw(session, request, account, now, rrn)
                elif request.transaction is not TransactionType.BALANCE_INQUIRY:
                    raise _Decline(ResponseCode.INVALID_TRANSACTION)
                balances = self._balances(account, request.from_account)
                code = ResponseCode.APPROVED
            except _Decline as decline:
                code = decline.code
            auth_code = f"{secrets.randbelow(10**6):06d}" if code.approved else ""
            session.add(
                LinkRequest(
                    terminal_id=request.terminal_id,
                    stan=request.stan,
                    transmission_time=request.transmission_time,
                    mti_class=request.mti_class,
                    processing_code=f"{request.transaction}{request.from_account}{request.to_account}",
                    amount_cents=request.amount_cents,
                    response_code=str(code),
                    rrn=rrn,
                    auth_code=auth_code,
                    posting_id=posting.id if posting else None,
                )
            )
        log.info("%r -> %s %s", request, code, code.text)
        return Outcome(code, rrn, auth_code, balances)

    # -- the checks, in DESIGN order ------------------------------------------------------
    def _checks(self, session: Session, request: CardRequest, now: dt.datetime) -> Account:
        card = session.scalar(select(Card).where(Card.pan == request.pan).with_for_update())
        if card is None or card.status == "blocked":
            raise _Decline(ResponseCode.INVALID_CARD)
        if card.expiry < now.strftime("%y%m") or (
            request.expiry is not None and request.expiry != card.expiry
        ):
            raise _Decline(ResponseCode.EXPIRED_CARD)
        if card.status == "lost":
            raise _Decline(ResponseCode.LOST_CARD)
        if card.status == "stolen":
            raise _Decline(ResponseCode.STOLEN_CARD)
        self._check_pin(card, request, now)
        link = session.scalar(
            select(CardAccount).where(
                CardAccount.card_id == card.id,
                CardAccount.account_type == self._account_type(card, request.from_account),
            )
        )
        if link is None:
            raise _Decline(ResponseCode.NOT_PERMITTED)
        return link.account

    @staticmethod
    def _account_type(card: Card, requested: AccountType) -> str:
        if requested is not AccountType.DEFAULT:
            return str(requested)
        types = sorted(link.account_type for link in card.links)
        return AccountType.CHECKING if AccountType.CHECKING in types else (types or ["--"])[0]

    def _check_pin(self, card: Card, request: CardRequest, now: dt.datetime) -> None:
        locked_until = card.locked_until
        if locked_until is not None and locked_until.tzinfo is None:
            locked_until = locked_until.replace(tzinfo=dt.UTC)
        if locked_until is not None and locked_until > now:
            raise _Decline(ResponseCode.PIN_TRIES_EXCEEDED)
        if locked_until is not None:
            card.locked_until = None
            card.failed_pin_attempts = 0
        if request.pin_block is None:
            raise _Decline(ResponseCode.INCORRECT_PIN)
        try:
            pin = decrypt_pin_block(
                request.pin_block,
                request.pan,
                request.pin_key or self._config.pin_key,
                request.pin_format,
            )
            ok = bcrypt.checkpw((pin + self._config.pin_pepper).encode(), card.pin_hash.encode())
        except PinBlockError:
            ok = False
        finally:
            pin = ""
        if ok:
            card.failed_pin_attempts = 0
            return
        card.failed_pin_attempts += 1
        if card.failed_pin_attempts >= self._config.max_failed_pin_attempts:
            card.locked_until = now + dt.timedelta(seconds=self._config.lockout_duration_seconds)
            card.failed_pin_attempts = 0
            log.warning("card %s locked after repeated wrong PINs", mask_pan(card.pan))
            raise _Decline(ResponseCode.PIN_TRIES_EXCEEDED)
        raise _Decline(ResponseCode.INCORRECT_PIN)

    def _withdraw(
        self,
        session: Session,
        request: CardRequest,
        account: Account,
        now: dt.datetime,
        rrn: str,
    ) -> Posting:
        amount = request.amount_cents
        if amount <= 0 or amount > 10**9:
            raise _Decline(ResponseCode.INVALID_AMOUNT)
        terminal = session.scalar(
            select(Terminal).where(Terminal.terminal_id == request.terminal_id)
        )
        if terminal is None:
            raise _Decline(ResponseCode.NOT_PERMITTED)
        locked = lock_accounts(session, [account.id, terminal.cash_account_id])
        account = locked[account.id]
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        withdrawn_today = -(
            session.scalar(
                select(func.coalesce(func.sum(Entry.amount_cents), 0))
                .join(Posting, Entry.posting_id == Posting.id)
                .where(
                    Entry.account_id == account.id,
                    Posting.kind.in_(("withdrawal", "withdrawal-reversal")),
                    Entry.created_at >= day_start,
                )
            )
            or 0
        )
        if withdrawn_today + amount > self._config.daily_withdrawal_limit:
            raise _Decline(ResponseCode.EXCEEDS_WITHDRAWAL_LIMIT)
        if account.balance_cents < amount:
            raise _Decline(ResponseCode.INSUFFICIENT_FUNDS)
        return post(
            session,
            "withdrawal",
            [(account, -amount), (locked[terminal.cash_account_id], amount)],
            description=f"ATM withdrawal {request.terminal_id}",
            terminal_id=request.terminal_id,
            stan=request.stan,
            rrn=rrn,
            at=now,
        )

    @staticmethod
    def _balances(account: Account, account_type: AccountType) -> tuple[Balance, ...]:
        kind = {"checking": AccountType.CHECKING, "savings": AccountType.SAVINGS}.get(
            account.kind, account_type
        )
        return (
            Balance(kind, "01", account.currency, account.balance_cents),
            Balance(kind, "02", account.currency, account.balance_cents),
        )
