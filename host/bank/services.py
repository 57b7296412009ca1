"""Authorization services: balance inquiry (with mini-statement), withdrawal, transfer and PIN
change, with the checks of DESIGN section 4 in their order. Pure domain code over a SQLAlchemy
session; the link server translates ISO messages to ``CardRequest`` and ``Outcome`` back. Runs
in a worker thread (bcrypt is slow by design and must stay off the event loop). On
PostgreSQL the link server authorizes inquiries, withdrawals and transfers with the same
rules in one database call instead (``host.bank.fastpath``, migration 0011); a change to a
rule here must be made there too (``tests/host/test_fastpath_model.py`` compares both).

Order of checks and their response codes (DE 39); the MAC and the message format are checked
by the link layer before a ``CardRequest`` exists:

1. duplicate: a request with the key of an answered one (terminal, STAN, DE 7, MTI class) gets
   the stored outcome when its content (PAN, DE 3, amount, currency, DE 103) is the same, and
   is applied no second time; the same key with a different content gets 94 (the key was
   reused; nothing is applied or stored).
2. operators' switches (``host.bank.controls``): the bank in maintenance 90, this terminal out
   of service 89. Then card unknown, blocked or replaced 14.
3. lost 41, stolen 43: both tell the terminal to capture the card (``Outcome.capture_card``),
   whatever the card's expiry; then the card's customer deactivated 14.
4. expired 54 (the record's expiry, or the track 2 expiry, is before this month); a track 2
   expiry in the future that differs from the record 14 (not this card's track).
5. locked out 75 (``MAX_FAILED_PIN_ATTEMPTS`` wrong PINs in a row lock the card for
   ``LOCKOUT_DURATION_SECONDS``; the failure that reaches the limit is answered 75 too).
6. PIN: no PIN block 30 (a format error, not counted as a try; the link layer answers it
   before step 1), a wrong one 55. Verified once per card session: a request from the
   same card and terminal with the same encrypted PIN block within ``SESSION_TIMEOUT_SECONDS``
   of the session's last use is accepted without bcrypt.
   A right PIN that an operator set (reset) and the customer has not changed yet: 77 to any
   request but a PIN change (the terminal goes to its PIN change flow).
7. account not linked to the card 57 (also: transfer destination unknown or not a customer
   account); the account (or a transfer's destination) frozen or closed 78, nothing moves.
8. amount invalid 13 (zero, negative or over 10^9 cents for money movements).
9. daily limit 61 (``DAILY_WITHDRAWAL_LIMIT`` / ``DAILY_TRANSFER_LIMIT`` per account per UTC
   calendar day; a reversal gives back what its original took from the day it was made).
10. funds 51.

bcrypt runs before the transaction (``verify_pin_ahead``, awaited by the link server on the PIN
pool): the transaction then takes the answer as the result of step 6 when the card's PIN hash
is still the one verified, so no row is locked and no database thread waits while bcrypt runs.
The checks and their order are unchanged; a request that turns out not to need the PIN (an
open card session) or is declined earlier simply does not use the answer.

Deposits (cash 21, checks 24) credit the account by DE 4 at once and place holds
(``host.bank.holds``): the ledger balance grows by the whole amount, the available balance by
what the hold policy makes available now. Withdrawals and transfers are checked against the
available balance (ledger balance less holds); DE 54 carries both (01 ledger, 02 available).

Every request leaves one audit row (``txn.<type>``, its code) and every PIN verified by bcrypt,
failed or locking the card one more (``pin.*``), in the request's transaction
(``host.bank.audit``).

Other codes: 12 for an unsupported transaction, a transfer to the same account, and a
new PIN that breaks the rules or whose block does not decode; 91 when the database cannot be
reached (nothing is written then).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from host.bank.audit import card_subject, record, terminal_actor
from host.bank.codes import RandomCodes
from host.bank.holds import DEPOSIT_KINDS, HoldPolicy, held_cents, place_holds
from host.bank.ledger import daily_used, lock_accounts, post, utc_day
from host.bank.ministatement import mini_statement
from host.bank.models import (
    Account,
    BankState,
    Card,
    CardAccount,
    CardSession,
    Hold,
    LinkRequest,
    Posting,
    Terminal,
)
from host.bank.pins import PinRuleError, PinVerifier
from host.config import HostConfig
from host.metrics import HostMetrics
from protocol.masking import mask_pan
from protocol.messages import AccountType, Balance, TransactionType
from protocol.response_codes import ResponseCode

__all__ = [
    "AuthorizationService",
    "CardRequest",
    "Codes",
    "Outcome",
    "PinCheck",
    "PinFirst",
    "RandomCodes",
    "connectivity_text",
    "stored_outcome",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

MAX_AMOUNT_CENTS = 10**9
CUSTOMER_KINDS = ("checking", "savings")
# session.info key: holds read under the account's lock in this transaction (account id ->
# cents), so the response's available balance needs no second read.
_HELD = "host.bank.services.held"
# The part of this request's deposit placed on hold, by account (DE 54 amount type 92).
_DEPOSIT_HELD = "host.bank.services.deposit_held"
_ACCOUNT_TYPES = {"checking": AccountType.CHECKING, "savings": AccountType.SAVINGS}


@dataclass(frozen=True)
class PinCheck:
    """bcrypt's work for one request, done before its transaction: whether the PIN block
    matches ``pin_hash`` (None: not verified ahead), and a PIN change's new hash or the rule it
    breaks."""

    pin_hash: str = field(default="", repr=False)  # a bcrypt hash: never in a log
    verified: bool | None = None
    new_pin_hash: str | None = None
    new_pin_error: PinRuleError | None = None
    # ``authorize_unless_pin``: where bcrypt would run inside the transaction, stop instead
    # (the transaction rolls back; the caller verifies on the PIN pool and comes back).
    defer: bool = False


@dataclass(frozen=True)
class PinFirst:
    """``authorize_unless_pin``'s answer when the request needs bcrypt: nothing was applied;
    verify ``pin_hash`` ahead (``verify_pin_ahead``) and authorize again."""

    pin_hash: str = field(repr=False)


class _PinFirst(Exception):
    def __init__(self, pin_hash: str) -> None:
        self.pin_hash = pin_hash


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
    # The terminal's working PIN key (TPK, issued at sign-on) and block format, as the link
    # layer knows them. There is no fallback key: a request whose PIN block comes without a
    # key is declined as incorrect PIN (ResponseCode.INCORRECT_PIN) before any verification,
    # so it can never approve anything, and it does not count as a failed PIN attempt.
    pin_key: bytes | None = None
    pin_format: int = 0
    # bcrypt's answers, computed before the transaction (``verify_pin_ahead``); None: bcrypt
    # runs inside it. Never part of a repeat's content.
    pin_check: PinCheck | None = field(default=None, compare=False)

    def __repr__(self) -> str:  # never shows the PAN in full, a PIN block or a key
        return (
            f"CardRequest({self.mti_class} {self.transaction.name} terminal={self.terminal_id} "
            f"stan={self.stan} pan={mask_pan(self.pan)} amount={self.amount_cents})"
        )

    def content(self) -> str:
        """What a repeat must carry unchanged (hashed with a key before it is stored)."""
        return (
            f"{self.pan}|{self.transaction}{self.from_account}{self.to_account}|"
            f"{self.amount_cents}|{self.currency}|{self.to_account_number or ''}"
        )


@dataclass(frozen=True)
class Outcome:
    response_code: ResponseCode
    rrn: str
    auth_code: str = ""
    balances: tuple[Balance, ...] = field(default_factory=tuple)
    # DE 62 of a balance inquiry's 0110: up to five 40-character entries, newest first.
    mini_statement: str = ""

    @property
    def capture_card(self) -> bool:
        """The terminal must keep the card (lost 41, stolen 43)."""
        return self.response_code.capture_card


class Codes(Protocol):
    """Where a request's retrieval reference number (DE 37) and approval code (DE 38) come
    from: random in production; a test that runs two paths side by side gives both the same."""

    def rrn(self, request: CardRequest, now: dt.datetime) -> str: ...

    def auth_code(self, request: CardRequest) -> str: ...


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class _Decline(Exception):
    def __init__(self, code: ResponseCode) -> None:
        self.code = code


@dataclass
class _Result:
    posting: Posting | None = None
    balances: tuple[Balance, ...] = ()
    mini_statement: str = ""


class AuthorizationService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HostConfig,
        clock: Clock | None = None,
        *,
        pins: PinVerifier | None = None,
        metrics: HostMetrics | None = None,
        hold_policy: HoldPolicy | None = None,
        codes: Codes | None = None,
    ) -> None:
        self._sessions = sessions
        self.codes: Codes = codes or RandomCodes()
        self.hold_policy = hold_policy or HoldPolicy()
        self._config = config
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._own_pins = pins is None
        self.pins = pins or PinVerifier(pepper=config.pin_pepper, secret_key=config.secret_key)
        self.metrics = metrics

    @property
    def config(self) -> HostConfig:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._clock

    def close(self) -> None:
        if self._own_pins:
            self.pins.close()

    def pin_to_verify(self, request: CardRequest) -> str | None:
        """The card's PIN hash when ``request`` will need bcrypt: a PIN block and key, an
        active card not locked out, and no open card session for this PIN block. One short
        read, no lock; None when bcrypt will not be needed (or the card is unknown)."""
        if request.pin_block is None or request.pin_key is None:
            return None
        now = self._clock()
        with self._sessions() as session:
            # One statement: the card and this terminal's card session of it, if any.
            card = session.execute(
                select(
                    Card.pin_hash,
                    Card.status,
                    Card.locked_until,
                    CardSession.pin_token,
                    CardSession.last_used_at,
                )
                .outerjoin(
                    CardSession,
                    and_(
                        CardSession.card_id == Card.id,
                        CardSession.terminal_id == request.terminal_id,
                    ),
                )
                .where(Card.pan == request.pan)
            ).first()
        if card is None or card.status != "active":
            return None
        if card.locked_until is not None and _aware(card.locked_until) > now:
            return None
        token = self.pins.session_token(request.pan, request.terminal_id, request.pin_block)
        timeout = dt.timedelta(seconds=self._config.session_timeout_seconds)
        if (
            card.pin_token is not None
            and hmac.compare_digest(card.pin_token, token)
            and _aware(card.last_used_at) + timeout > now
        ):
            return None
        return str(card.pin_hash)

    async def verify_pin_ahead(
        self,
        request: CardRequest,
        executor: concurrent.futures.Executor,
        pin_hash: str | None = None,
    ) -> PinCheck | None:
        """bcrypt for ``request`` before its transaction: the short read on ``executor`` (the
        database workers; skipped when ``pin_hash`` comes from ``authorize_unless_pin``),
        bcrypt awaited on the PIN pool, so neither a database thread nor a row lock is held
        while it runs. ``authorize`` takes the result as the request's ``pin_check``."""
        loop = asyncio.get_running_loop()
        if pin_hash is None:
            try:
                pin_hash = await loop.run_in_executor(executor, self.pin_to_verify, request)
            except DBAPIError as exc:
                # Nothing verified ahead; ``authorize`` meets the same fault and answers it
                # as it always has (91 when the database cannot be reached).
                log.info("PIN not verified ahead for %r: %s", request, type(exc.orig).__name__)
                pin_hash = None
        check = PinCheck()
        if pin_hash is not None:
            assert request.pin_block is not None and request.pin_key is not None
            verified = await self.pins.verify_async(
                request.pin_block, request.pan, request.pin_key, request.pin_format, pin_hash
            )
            check = PinCheck(pin_hash, verified)
        if (
            request.transaction is TransactionType.PIN_CHANGE
            and request.new_pin_block is not None
            and request.pin_key is not None
        ):
            try:
                new_hash = await self.pins.new_pin_hash_async(
                    request.new_pin_block,
                    request.pan,
                    request.pin_key,
                    request.pin_format,
                    self._config.bcrypt_rounds,
                )
                check = dataclasses.replace(check, new_pin_hash=new_hash)
            except PinRuleError as exc:
                check = dataclasses.replace(check, new_pin_error=exc)
        return check

    def authorize_unless_pin(self, request: CardRequest) -> Outcome | PinFirst:
        """``authorize`` when ``request`` needs no bcrypt (an open card session, or a decline
        before the PIN step): one transaction, no read ahead. Otherwise its transaction
        rolls back at the PIN step and the answer is ``PinFirst``: verify ahead, then
        ``authorize``. A PIN change always goes the ``verify_pin_ahead`` way (its new PIN
        is hashed ahead too)."""
        try:
            return self.authorize(dataclasses.replace(request, pin_check=PinCheck(defer=True)))
        except _PinFirst as first:
            return PinFirst(first.pin_hash)

    def authorize(self, request: CardRequest) -> Outcome:
        """Apply ``request`` at most once and return its outcome. ``request.pin_check``:
        bcrypt's answers from ``verify_pin_ahead`` (without it, bcrypt runs here, inside the
        transaction)."""
        pin = request.pin_check
        try:
            try:
                outcome = self._authorize_once(request, pin)
            except IntegrityError:
                # Another worker or host process stored the same key first (a repeat sent
                # while the original was being answered): our transaction rolled back whole;
                # answer from the record it left.
                log.info("concurrent repeat of %r; answering from the record", request)
                outcome = self._authorize_once(request, pin)
        except DBAPIError as exc:
            if not exc.connection_invalidated and not _is_connectivity(exc):
                raise
            log.error("database unavailable answering %r: %s", request, type(exc.orig).__name__)
            outcome = Outcome(ResponseCode.HOST_UNAVAILABLE, self.codes.rrn(request, self._clock()))
        log.info("%r -> %s %s", request, outcome.response_code, outcome.response_code.text)
        return outcome

    def _authorize_once(self, request: CardRequest, pin: PinCheck | None) -> Outcome:
        now = self._clock()
        fingerprint = self.pins.fingerprint(request.content())
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
                # A record without a fingerprint predates them (migration 0002): trust the key.
                if not previous.fingerprint or hmac.compare_digest(
                    previous.fingerprint, fingerprint
                ):
                    log.info("repeat of %r answered from the record", request)
                    return stored_outcome(
                        previous.response_code,
                        previous.rrn,
                        previous.auth_code,
                        previous.outcome,
                    )
                log.warning("%r reuses the key of a different request", request)
                return Outcome(ResponseCode.DUPLICATE, self.codes.rrn(request, now))
            rrn = self.codes.rrn(request, now)
            result = _Result()
            try:
                result = self._process(session, request, now, rrn, pin)
                code = ResponseCode.APPROVED
            except _Decline as decline:
                code = decline.code
            auth_code = self.codes.auth_code(request) if code.approved else ""
            record(
                session,
                terminal_actor(request.terminal_id),
                f"txn.{request.transaction.name.lower()}",
                card_subject(request.pan),
                None,
                {
                    "code": str(code),
                    "amount_cents": request.amount_cents,
                    "processing_code": f"{request.transaction}{request.from_account}"
                    f"{request.to_account}",
                    "stan": request.stan,
                    "rrn": rrn,
                    "posting": result.posting.id if result.posting else None,
                },
                now,
            )
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
                    posting_id=result.posting.id if result.posting else None,
                    created_at=now,
                    fingerprint=fingerprint,
                    outcome={
                        "balances": [
                            [b.account_type, b.amount_type, b.currency, b.cents]
                            for b in result.balances
                        ],
                        "mini_statement": result.mini_statement,
                    },
                )
            )
            session.flush()
        return Outcome(code, rrn, auth_code, result.balances, result.mini_statement)

    # -- the checks, in DESIGN order ------------------------------------------------------
    def _process(
        self,
        session: Session,
        request: CardRequest,
        now: dt.datetime,
        rrn: str,
        pin: PinCheck | None = None,
    ) -> _Result:
        if not request.pan.startswith(self._config.accepted_card_ranges):
            # The production-safety guard: a card from a range this host does not serve is
            # never looked up, PIN-checked or posted (docs/protocol.md, code 15).
            raise _Decline(ResponseCode.NO_SUCH_ISSUER)
        # Operators' switches (host.bank.controls): the bank in maintenance, this terminal
        # out of service. One read of both.
        maintenance, terminal_off = session.execute(
            select(
                select(BankState.maintenance).where(BankState.id == 1).scalar_subquery(),
                select(Terminal.in_service.is_(False))
                .where(Terminal.terminal_id == request.terminal_id)
                .scalar_subquery(),
            )
        ).one()
        if maintenance:
            raise _Decline(ResponseCode.MAINTENANCE)
        if terminal_off:
            raise _Decline(ResponseCode.TERMINAL_OUT_OF_SERVICE)
        # The card (locked) with its linked accounts in one statement: no lazy loads later.
        card = (
            session.execute(
                select(Card)
                .options(
                    joinedload(Card.links).joinedload(CardAccount.account),
                    joinedload(Card.customer),
                )
                .where(Card.pan == request.pan)
                .with_for_update(of=Card)
            )
            .unique()
            .scalar_one_or_none()
        )
        if card is None or card.status in ("blocked", "replaced"):
            raise _Decline(ResponseCode.INVALID_CARD)
        # Lost and stolen come before the expiry: such a card is captured whatever it says.
        if card.status == "lost":
            raise _Decline(ResponseCode.LOST_CARD)
        if card.status == "stolen":
            raise _Decline(ResponseCode.STOLEN_CARD)
        if not card.customer.active:
            raise _Decline(ResponseCode.INVALID_CARD)
        this_month = now.strftime("%y%m")
        if card.expiry < this_month or (request.expiry is not None and request.expiry < this_month):
            raise _Decline(ResponseCode.EXPIRED_CARD)
        if request.expiry is not None and request.expiry != card.expiry:
            # A future expiry that is not the one on record: not this card's track (a copy,
            # or a misread), so an invalid card rather than an expired one.
            log.warning("track 2 expiry of card %s differs from the record", mask_pan(card.pan))
            raise _Decline(ResponseCode.INVALID_CARD)
        self._check_pin(session, card, request, now, pin)
        if card.pin_change_required and request.transaction is not TransactionType.PIN_CHANGE:
            # The PIN an operator set (reset) was right; the customer must now choose one.
            raise _Decline(ResponseCode.PIN_CHANGE_REQUIRED)
        account = self._linked_account(card, request.from_account)
        if account.status != "open" and request.transaction is not TransactionType.PIN_CHANGE:
            raise _Decline(ResponseCode.ACCOUNT_BLOCKED)  # frozen or closed: nothing moves
        match request.transaction:
            case TransactionType.BALANCE_INQUIRY:
                return _Result(
                    balances=self._balances(session, account, request.from_account),
                    mini_statement=mini_statement(session, account.id),
                )
            case TransactionType.WITHDRAWAL:
                posting, account = self._withdraw(session, request, account, now, rrn)
            case TransactionType.TRANSFER:
                posting, account = self._transfer(session, request, card, account, now, rrn)
            case TransactionType.DEPOSIT | TransactionType.CHECK_DEPOSIT:
                posting, account = self._deposit(session, request, account, now, rrn)
            case TransactionType.PIN_CHANGE:
                self._change_pin(session, card, request, now, pin)
                return _Result()
            case _:
                raise _Decline(ResponseCode.INVALID_TRANSACTION)
        # Money moved: the posting, and DE 54 of the account it moved from or into.
        return _Result(posting, self._balances(session, account, request.from_account))

    def _linked_account(self, card: Card, requested: AccountType) -> Account:
        wanted = str(requested)
        if requested is AccountType.DEFAULT:
            types = sorted(link.account_type for link in card.links)
            wanted = AccountType.CHECKING if AccountType.CHECKING in types else (types or ["--"])[0]
        for link in card.links:
            if link.account_type == wanted:
                return link.account
        raise _Decline(ResponseCode.NOT_PERMITTED)

    def _check_pin(
        self,
        session: Session,
        card: Card,
        request: CardRequest,
        now: dt.datetime,
        pin: PinCheck | None = None,
    ) -> None:
        locked_until = _aware(card.locked_until) if card.locked_until is not None else None
        if locked_until is not None and locked_until > now:
            raise _Decline(ResponseCode.PIN_TRIES_EXCEEDED)
        if locked_until is not None:
            card.locked_until = None
            card.failed_pin_attempts = 0
        if request.pin_block is None:
            # Every card request needs a PIN block; the link layer refuses one without it
            # before it gets here, and so does the service for any other caller.
            raise _Decline(ResponseCode.FORMAT_ERROR)
        if request.pin_key is None:
            # No working key to read the block with: nothing can be verified.
            raise _Decline(ResponseCode.INCORRECT_PIN)
        token = self.pins.session_token(card.pan, request.terminal_id, request.pin_block)
        card_session = session.scalar(
            select(CardSession).where(
                CardSession.card_id == card.id, CardSession.terminal_id == request.terminal_id
            )
        )
        timeout = dt.timedelta(seconds=self._config.session_timeout_seconds)
        if (
            card_session is not None
            and hmac.compare_digest(card_session.pin_token, token)
            and _aware(card_session.last_used_at) + timeout > now
        ):
            card_session.last_used_at = now
            return
        if (
            pin is not None
            and pin.verified is not None
            and hmac.compare_digest(pin.pin_hash, card.pin_hash)
        ):
            ok = pin.verified
        elif pin is not None and pin.defer:  # bcrypt ahead, outside this transaction
            raise _PinFirst(card.pin_hash)
        else:  # not verified ahead, or the PIN changed since: bcrypt here
            ok = self.pins.verify(
                request.pin_block,
                request.pan,
                request.pin_key,
                request.pin_format,
                card.pin_hash,
            )
        actor = terminal_actor(request.terminal_id)
        if ok:
            record(session, actor, "pin.verified", card_subject(card.pan), None, None, now)
            card.failed_pin_attempts = 0
            if card_session is None:
                session.add(
                    CardSession(
                        card_id=card.id,
                        terminal_id=request.terminal_id,
                        pin_token=token,
                        started_at=now,
                        last_used_at=now,
                    )
                )
            else:
                card_session.pin_token = token
                card_session.started_at = now
                card_session.last_used_at = now
            return
        if card_session is not None:
            session.delete(card_session)
        card.failed_pin_attempts += 1
        if card.failed_pin_attempts >= self._config.max_failed_pin_attempts:
            card.locked_until = now + dt.timedelta(seconds=self._config.lockout_duration_seconds)
            card.failed_pin_attempts = 0
            if self.metrics is not None:
                self.metrics.lockouts.inc()
            log.warning("card %s locked after repeated wrong PINs", mask_pan(card.pan))
            record(
                session,
                actor,
                "pin.locked",
                card_subject(card.pan),
                None,
                {"locked_until": card.locked_until.isoformat()},
                now,
            )
            raise _Decline(ResponseCode.PIN_TRIES_EXCEEDED)
        record(
            session,
            actor,
            "pin.failed",
            card_subject(card.pan),
            None,
            {"failed_attempts": card.failed_pin_attempts},
            now,
        )
        raise _Decline(ResponseCode.INCORRECT_PIN)

    @staticmethod
    def _check_amount(amount: int) -> None:
        if amount <= 0 or amount > MAX_AMOUNT_CENTS:
            raise _Decline(ResponseCode.INVALID_AMOUNT)

    def _withdraw(
        self,
        session: Session,
        request: CardRequest,
        account: Account,
        now: dt.datetime,
        rrn: str,
    ) -> tuple[Posting, Account]:
        amount = request.amount_cents
        self._check_amount(amount)
        account, cash = _lock_with_terminal_cash(session, request, account)
        posting = _pay_out(
            session,
            request,
            "withdrawal",
            account,
            cash,
            self._config.daily_withdrawal_limit,
            f"ATM withdrawal {request.terminal_id}",
            rrn,
            now,
        )
        return posting, account

    def _transfer(
        self,
        session: Session,
        request: CardRequest,
        card: Card,
        account: Account,
        now: dt.datetime,
        rrn: str,
    ) -> tuple[Posting, Account]:
        if request.to_account_number:
            target = session.scalar(
                select(Account).where(Account.number == request.to_account_number)
            )
            if target is None or target.kind not in CUSTOMER_KINDS:
                raise _Decline(ResponseCode.NOT_PERMITTED)
        elif request.to_account is AccountType.DEFAULT:
            raise _Decline(ResponseCode.INVALID_TRANSACTION)
        else:
            target = self._linked_account(card, request.to_account)
        if target.id == account.id:
            raise _Decline(ResponseCode.INVALID_TRANSACTION)
        if target.status != "open":
            raise _Decline(ResponseCode.ACCOUNT_BLOCKED)
        amount = request.amount_cents
        self._check_amount(amount)
        locked = lock_accounts(session, [account.id, target.id])
        account, target = locked[account.id], locked[target.id]
        posting = _pay_out(
            session,
            request,
            "transfer",
            account,
            target,
            self._config.daily_transfer_limit,
            f"Transfer {account.number} to {target.number}",
            rrn,
            now,
        )
        return posting, account

    def _deposit(
        self,
        session: Session,
        request: CardRequest,
        account: Account,
        now: dt.datetime,
        rrn: str,
    ) -> tuple[Posting, Account]:
        """Credit the whole amount now (the ledger balance) and hold what the policy holds.
        Cash comes into the terminal's cash account; checks too (they sit in its depository
        until collected), under their own posting kind so balancing can tell them apart."""
        amount = request.amount_cents
        self._check_amount(amount)
        account, cash_account = _lock_with_terminal_cash(session, request, account)
        cash = request.transaction is TransactionType.DEPOSIT
        kind = "deposit" if cash else "check-deposit"
        posting = _post(
            session,
            request,
            kind,
            [(account, amount), (cash_account, -amount)],
            f"ATM {'cash' if cash else 'check'} deposit {request.terminal_id}",
            rrn,
            now,
        )
        holds = place_holds(
            session, account, posting, DEPOSIT_KINDS[kind], amount, now, self.hold_policy
        )
        session.info[_DEPOSIT_HELD] = {account.id: sum(h.amount_cents for h in holds)}
        return posting, account

    def _change_pin(
        self,
        session: Session,
        card: Card,
        request: CardRequest,
        now: dt.datetime,
        pin: PinCheck | None = None,
    ) -> None:
        if request.new_pin_block is None:
            raise _Decline(ResponseCode.INVALID_TRANSACTION)
        if request.pin_key is None:  # _check_pin already declined it; no key, no new PIN
            raise _Decline(ResponseCode.INCORRECT_PIN)
        try:
            if pin is not None and pin.new_pin_error is not None:
                raise pin.new_pin_error
            if pin is not None and pin.new_pin_hash is not None:
                card.pin_hash = pin.new_pin_hash
            else:
                card.pin_hash = self.pins.new_pin_hash(
                    request.new_pin_block,
                    request.pan,
                    request.pin_key,
                    request.pin_format,
                    self._config.bcrypt_rounds,
                )
        except PinRuleError as exc:
            log.info("PIN change for %s refused: %s", mask_pan(card.pan), exc)
            raise _Decline(ResponseCode.INVALID_TRANSACTION) from exc
        # Every other session of the card ends; this one goes on under the new PIN's block.
        session.execute(
            delete(CardSession).where(
                CardSession.card_id == card.id, CardSession.terminal_id != request.terminal_id
            )
        )
        card_session = session.scalar(
            select(CardSession).where(
                CardSession.card_id == card.id, CardSession.terminal_id == request.terminal_id
            )
        )
        if card_session is not None:
            card_session.pin_token = self.pins.session_token(
                card.pan, request.terminal_id, request.new_pin_block
            )
            card_session.last_used_at = now
        card.pin_change_required = False
        log.info("PIN changed for card %s", mask_pan(card.pan))

    @staticmethod
    def _balances(
        session: Session, account: Account, account_type: AccountType
    ) -> tuple[Balance, ...]:
        """DE 54: the ledger balance (01) and the available balance (02, holds excluded); for a
        deposit also the part of it placed on hold (92).
        A withdrawal or transfer read the account's holds under its lock a moment ago (they
        have not changed since); otherwise they are read here."""
        kind = _ACCOUNT_TYPES.get(account.kind, account_type)
        held = session.info.get(_HELD, {}).get(account.id)
        if held is None:
            held = held_cents(session, account.id)
        balances = (
            Balance(kind, "01", account.currency, account.balance_cents),
            Balance(kind, "02", account.currency, account.balance_cents - held),
        )
        deposit_held = session.info.get(_DEPOSIT_HELD, {}).get(account.id)
        if deposit_held is None:
            return balances
        # A deposit's answer also says how much of it is on hold (private amount type 92), so
        # the ATM can tell the customer what is available at once.
        return (*balances, Balance(kind, "92", account.currency, deposit_held))


def _lock_with_terminal_cash(
    session: Session, request: CardRequest, account: Account
) -> tuple[Account, Account]:
    """Lock ``account`` and the request's terminal's cash account (withdrawals, deposits);
    both as read under the lock. A terminal the host does not know: 57."""
    terminal = session.scalar(select(Terminal).where(Terminal.terminal_id == request.terminal_id))
    if terminal is None:
        raise _Decline(ResponseCode.NOT_PERMITTED)
    locked = lock_accounts(session, [account.id, terminal.cash_account_id])
    return locked[account.id], locked[terminal.cash_account_id]


def _pay_out(
    session: Session,
    request: CardRequest,
    kind: str,
    account: Account,
    to: Account,
    limit: int,
    description: str,
    rrn: str,
    now: dt.datetime,
) -> Posting:
    """The request's amount out of ``account`` into ``to`` (both locked) as a ``kind``
    posting (withdrawal, transfer): today's use of ``kind`` (less its reversals; read under
    the account's lock, which every writer of it holds) plus the amount within ``limit``
    (61), then the available balance (51). Keeps the holds read for DE 54."""
    amount = request.amount_cents
    used, held = used_today_and_held(session, account.id, kind, now)
    if used + amount > limit:
        raise _Decline(ResponseCode.EXCEEDS_WITHDRAWAL_LIMIT)
    if account.balance_cents - held < amount:
        raise _Decline(ResponseCode.INSUFFICIENT_FUNDS)
    session.info[_HELD] = {account.id: held}
    return _post(session, request, kind, [(account, -amount), (to, amount)], description, rrn, now)


def _post(
    session: Session,
    request: CardRequest,
    kind: str,
    legs: list[tuple[Account, int]],
    description: str,
    rrn: str,
    now: dt.datetime,
) -> Posting:
    """``host.bank.ledger.post`` for a card request: its terminal, STAN, RRN and time."""
    return post(
        session,
        kind,
        legs,
        description=description,
        terminal_id=request.terminal_id,
        stan=request.stan,
        rrn=rrn,
        at=now,
    )


def used_today_and_held(
    session: Session, account_id: int, kind: str, now: dt.datetime
) -> tuple[int, int]:
    """What ``account`` has used of today's ``kind`` limit (``host.bank.ledger.daily_used``:
    today's ``kind`` postings less the reversals of today's, whenever they came) and its
    holds still held (``host.bank.holds.held_cents``), read in one statement."""
    held = (
        select(func.coalesce(func.sum(Hold.amount_cents), 0))
        .where(Hold.account_id == account_id, Hold.status == "held")
        .scalar_subquery()
    )
    row = session.execute(select(daily_used(account_id, kind, utc_day(now)), held)).one()
    return int(row[0] or 0), int(row[1] or 0)


def stored_outcome(
    response_code: str, rrn: str, auth_code: str, stored: dict[str, Any] | None
) -> Outcome:
    """The outcome a ``LinkRequest`` record keeps (its code, RRN, auth code and JSON)."""
    stored = stored or {}
    balances = tuple(
        Balance(AccountType(t), amount_type, currency, int(cents))
        for t, amount_type, currency, cents in stored.get("balances", [])
    )
    return Outcome(
        ResponseCode(response_code),
        rrn,
        auth_code,
        balances,
        str(stored.get("mini_statement", "")),
    )


_CONNECTIVITY_HINTS = (
    "connection",
    "server closed",
    "could not connect",
    "terminating",
    "no such file",
    "timeout",
    "database is locked",
)


def _is_connectivity(exc: DBAPIError) -> bool:
    """Does this error mean the database cannot be reached (rather than a bug of ours)?"""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    return connectivity_text(str(exc.orig))


def connectivity_text(message: str) -> bool:
    """Does a database error's message say the database cannot be reached?"""
    text = message.lower()
    return any(hint in text for hint in _CONNECTIVITY_HINTS)
