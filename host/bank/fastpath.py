"""The PostgreSQL hot path (issue 16): balance inquiries (30), withdrawals (01) and
transfers (40) authorized by one call of the PL/pgSQL function ``atm_authorize`` (migration
``0011_authorize_functions``), a prepared statement executed at libpq's level on the hot
path's own connections (``host.bank.fastpool``: pipelined, its parameters as text), straight
from the event loop: no ORM, no worker thread, one call and one transaction per request (since
migration 0014 the function formats an inquiry's mini statement too; one it cannot format
exactly as ``host.bank.ministatement`` does is answered ``OrmPath``, nothing applied, and
the link server sends that inquiry the ORM way).

The rules are those of ``host.bank.services`` (its docstring), in the same order with the
same codes and the same rows written; what needs a secret stays here and goes in as a
parameter: the RRN and auth code (``AuthorizationService.codes``), the request's fingerprint
and the card-session token (HMACs under SECRET_KEY), and bcrypt's answer. The PIN flow is
the link server's: the first call answers ``PinFirst`` when bcrypt is needed (nothing
applied), bcrypt runs on the PIN pool, the second call carries its answer and the hash it was
checked against. ``tests/host/test_fastpath_model.py`` drives the same random requests
through both paths and compares every answer and row.

Errors as on the ORM path: a concurrent repeat (the record's key taken meanwhile) is answered
from the record; a database that cannot be reached gets 91 with nothing written. After a
connection error the connections no request holds are checked and the request tried once
more (a restarted server needs only new connections); if that fails too the connections are
closed and ``available`` turns false: the link server then uses the ORM path (which answers
91 while the database is away) and calls ``reopen`` once it works again. The connections are
``host.bank.fastpool``'s (a lean stand-in for psycopg_pool on this path); a request whose
call fails with the connection (a killed backend fails every call pipelined on it) is
tried once more like any other, and the function's request record answers a call that was
applied before its answer was lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout
from sqlalchemy.engine import make_url

from host.bank.audit import card_subject, terminal_actor
from host.bank.fastpool import ConnectionQueue
from host.bank.ledger import utc_day
from host.bank.services import (
    AuthorizationService,
    CardRequest,
    Outcome,
    PinFirst,
    connectivity_text,
    stored_outcome,
)
from protocol.masking import mask_pan
from protocol.messages import AccountType, Balance, TransactionType
from protocol.response_codes import ResponseCode

__all__ = ["FAST_TRANSACTIONS", "Authorized", "FastAuthorizer", "OrmPath", "libpq_conninfo"]

log = logging.getLogger(__name__)

FAST_TRANSACTIONS = frozenset(
    {TransactionType.BALANCE_INQUIRY, TransactionType.WITHDRAWAL, TransactionType.TRANSFER}
)
# How long a request waits for a connection before it is answered 91.
ACQUIRE_TIMEOUT_SECONDS = 5.0
# Requests whose calls one connection carries at a time (pipelined: host.bank.fastpool).
PIPELINE_DEPTH = 4

# The columns this module reads, in this order (the row is a tuple: no dict per request).
# Prepared once per connection (host.bank.fastpool.HotConnection); the parameters go in as
# text, each cast to its type here.
_AUTHORIZE_NAME = b"atm_authorize_hot"
_AUTHORIZE = (
    b"SELECT o_status, o_code, o_rrn, o_auth_code, o_pin_hash, o_note, o_account_type, "
    b"o_currency, o_ledger, o_available, o_reversal_waiting, "
    b"CASE WHEN o_status = 'repeat' THEN o_outcome::text END, "
    b"CASE WHEN o_status = 'done' THEN o_outcome ->> 'mini_statement' END "
    b"FROM atm_authorize("
    b"$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, "
    b"$9::bigint, $10::text, $11::text, $12::text, $13::text, $14::text, $15::timestamptz, "
    b"$16::text, $17::timestamptz, $18::boolean, $19::boolean, $20::text, $21::boolean, "
    b"$22::text, $23::timestamptz, $24::integer, $25::timestamptz, $26::text, $27::bigint, "
    b"$28::text, $29::text, $30::text)"
)
# SQLSTATE of an inquiry whose mini statement the function leaves to Python (0014).
_NEEDS_PYTHON = "ATM01"
# The function's codes as members by value: a dict lookup rather than an Enum call per row
# (a value not here still goes through the Enum, which raises on an unknown one).
_RESPONSE_CODES = {code.value: code for code in ResponseCode}
_ACCOUNT_TYPES = {kind.value: kind for kind in AccountType}
_BOOLEANS = {True: b"t", False: b"f"}
# Terminals whose audit actor name is kept (then the cache starts afresh).
_ACTORS_KEPT = 10_000


@dataclass(frozen=True)
class OrmPath:
    """Not for the hot path after all (nothing was applied): the ORM path answers it. Only
    an inquiry whose mini statement holds an entry the SQL cannot format exactly as
    ``host.bank.ministatement`` does (a description that is not printable ASCII)."""


@dataclass(frozen=True)
class Authorized:
    """An outcome, and whether a reversal advice that overtook this approved 0200 waits to
    be applied (``host.link.reversals.ReversalService.apply_waiting``)."""

    outcome: Outcome
    reversal_waiting: bool = False


def libpq_conninfo(database_url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as libpq takes it."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class FastAuthorizer:
    """Authorizes 30/01/40 with ``atm_authorize``; ``service`` lends its clock, config,
    PIN verifier (HMACs) and RRN/auth-code source, so both paths answer alike."""

    def __init__(
        self,
        service: AuthorizationService,
        conninfo: str,
        *,
        size: int,
        acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
        depth: int = PIPELINE_DEPTH,
        prepared: bool = True,
    ) -> None:
        self._service = service
        self._conninfo = conninfo
        self._prepared = prepared
        self._size = max(1, size)
        self._depth = max(1, depth)
        self._acquire_timeout = acquire_timeout
        self._pool: ConnectionQueue | None = None
        self._reopening = asyncio.Lock()
        # What the parameters take from the configuration, which is loaded once.
        config = service.config
        self._session_timeout = dt.timedelta(seconds=config.session_timeout_seconds)
        self._lockout = dt.timedelta(seconds=config.lockout_duration_seconds)
        self._limits = {
            transaction: config.daily_transfer_limit
            if transaction is TransactionType.TRANSFER
            else config.daily_withdrawal_limit
            for transaction in FAST_TRANSACTIONS
        }
        self._audit_actions = {t: f"txn.{t.name.lower()}".encode() for t in FAST_TRANSACTIONS}
        # Computed once per UTC day / terminal rather than per request (strftime alone cost
        # a quarter of the parameters' 43 us).
        self._day: tuple[dt.date, bytes] | None = None
        self._actors: dict[str, bytes] = {}
        # Round trips to the database: one call of the function per request, autocommit.
        self.round_trips = 0

    @property
    def available(self) -> bool:
        return self._pool is not None

    def handles(self, request: CardRequest) -> bool:
        return request.transaction in FAST_TRANSACTIONS

    def _new_pool(self) -> ConnectionQueue:
        return ConnectionQueue(
            self._conninfo,
            self._size,
            timeout=self._acquire_timeout,
            depth=self._depth,
            prepared=self._prepared,
        )

    async def open(self) -> None:
        """Start connecting (in the background; a request waits for a connection at most
        ``acquire_timeout``)."""
        if self._pool is None:
            pool = self._new_pool()
            pool.open()
            self._pool = pool

    async def reopen(self) -> bool:
        """After an outage: new connections, if the database answers now (one connection
        made within ``acquire_timeout``). True when the hot path is open."""
        async with self._reopening:
            if self._pool is not None:
                return True
            pool = self._new_pool()
            pool.open()
            try:
                pool.put(await pool.get())
            except PoolTimeout:
                await pool.close()
                return False
            self._pool = pool
        log.info("database reachable again: hot path back in use")
        return True

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def authorize(self, request: CardRequest) -> Authorized | PinFirst | OrmPath:
        """Apply ``request`` at most once (``request.pin_check``: bcrypt's answer, or None),
        or ``PinFirst`` when bcrypt must run first, or ``OrmPath`` when the ORM path must
        answer it (nothing applied either way)."""
        try:
            try:
                answer = await self._authorize_or_repeat(request)
            except PoolTimeout:
                if self._pool is None or not self._pool.saturated:
                    raise  # connections could not be made: unreachable, answered 91 below
                # Every connection was busy serving other requests the whole time: the host
                # is overloaded, the database is fine. This request is shed (91; the
                # terminal reverses nothing, nothing was applied); the pool stays open.
                log.warning(
                    "no database connection free within %.1f s for %r: host overloaded, "
                    "answered 91",
                    self._acquire_timeout,
                    request,
                )
                now = self._service.clock()
                return Authorized(
                    Outcome(ResponseCode.HOST_UNAVAILABLE, self._service.codes.rrn(request, now))
                )
            except PoolClosed:
                raise  # no connection to be had: answered 91 below, without a retry
            except psycopg.Error as exc:
                if self._pool is None or not _unreachable(exc):
                    raise
                # A server restart leaves broken idle connections: drop them, try once more.
                log.info("database error answering %r (%s); retrying", request, exc)
                await self._pool.check()
                answer = await self._authorize_or_repeat(request)
        except psycopg.Error as exc:
            if not _unreachable(exc):
                raise
            log.error("database unavailable answering %r: %s", request, type(exc).__name__)
            await self.close()
            now = self._service.clock()
            answer = Authorized(
                Outcome(ResponseCode.HOST_UNAVAILABLE, self._service.codes.rrn(request, now))
            )
        if isinstance(answer, Authorized) and log.isEnabledFor(logging.INFO):
            code = answer.outcome.response_code
            log.info("%r -> %s %s", request, code, code.text)
        return answer

    async def _authorize_or_repeat(self, request: CardRequest) -> Authorized | PinFirst | OrmPath:
        try:
            return await self._authorize_once(request)
        except pg_errors.UniqueViolation:
            # Another host process stored the same key first (a repeat sent while the
            # original was being answered): our call rolled back whole; answer from the
            # record it left.
            log.info("concurrent repeat of %r; answering from the record", request)
            return await self._authorize_once(request)

    async def _authorize_once(self, request: CardRequest) -> Authorized | PinFirst | OrmPath:
        if self._pool is None:
            raise PoolClosed("the hot path's pool is closed (database unreachable)")
        params = self._parameters(request)
        pool = self._pool
        # At most ``size`` requests at a time, the rest wait (PoolTimeout after the acquire
        # timeout); ``put`` replaces a connection that came back broken.
        conn = await pool.get()
        try:
            self.round_trips += 1
            try:
                row = await conn.call(_AUTHORIZE_NAME, _AUTHORIZE, params)
            except psycopg.Error as exc:
                if exc.sqlstate != _NEEDS_PYTHON:
                    raise
                # An inquiry whose mini statement has an entry only Python formats
                # exactly (migration 0014); nothing was kept.
                log.info("%r: mini statement left to the ORM path", request)
                return OrmPath()
        finally:
            pool.put(conn)
        assert row is not None
        return self._answer(request, row)

    def _parameters(self, request: CardRequest) -> list[bytes | None]:
        """``atm_authorize``'s 30 parameters as text (as PostgreSQL reads them: integers in
        decimal, booleans t/f, times in ISO 8601 with their offset; None is NULL)."""
        service = self._service
        config = service.config
        now = service.clock()
        pins = service.pins
        pin = request.pin_check
        token = (
            pins.session_token(request.pan, request.terminal_id, request.pin_block)
            if request.pin_block is not None and request.pin_key is not None
            else None
        )
        verified = pin.verified if pin is not None else None
        lock_iso = (now + self._lockout).isoformat().encode()
        transaction = request.transaction
        day = utc_day(now)
        today = self._day
        if today is None or today[0] != day:
            midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
            today = self._day = (day, midnight.isoformat().encode())
        terminal = request.terminal_id
        actor = self._actors.get(terminal)
        if actor is None:
            if len(self._actors) >= _ACTORS_KEPT:
                self._actors.clear()
            actor = self._actors[terminal] = terminal_actor(terminal).name.encode()
        to_number = request.to_account_number
        expiry = request.expiry
        return [
            terminal.encode(),
            request.stan.encode(),
            request.transmission_time.encode(),
            request.mti_class.encode(),
            request.pan.encode(),
            str(transaction).encode(),
            str(request.from_account).encode(),
            str(request.to_account).encode(),
            b"%d" % request.amount_cents,
            expiry.encode() if expiry is not None else None,
            to_number.encode() if to_number else None,
            pins.fingerprint(request.content()).encode(),
            service.codes.rrn(request, now).encode(),
            service.codes.auth_code(request).encode(),
            now.isoformat().encode(),
            b"%02d%02d" % (now.year % 100, now.month),  # strftime("%y%m"), a fifth of its cost
            today[1],
            _BOOLEANS[request.pan.startswith(config.accepted_card_ranges)],
            _BOOLEANS[request.pin_block is not None],
            token.encode() if token is not None else None,
            None if verified is None else _BOOLEANS[verified],
            pin.pin_hash.encode() if pin is not None and verified is not None else None,
            (now - self._session_timeout).isoformat().encode(),
            b"%d" % config.max_failed_pin_attempts,
            lock_iso,
            lock_iso,
            b"%d" % self._limits[transaction],
            self._audit_actions[transaction],
            card_subject(request.pan)[:64].encode(),
            actor,
        ]

    def _answer(self, request: CardRequest, row: tuple[Any, ...]) -> Authorized | PinFirst:
        (status, code, rrn, auth_code, pin_hash, note, account_type, currency, ledger,
         available, reversal_waiting, stored, statement) = row  # fmt: skip
        if status == "pin_first":
            return PinFirst(pin_hash)
        if status == "repeat":
            log.info("repeat of %r answered from the record", request)
            return Authorized(
                stored_outcome(code, rrn, auth_code, json.loads(stored) if stored else None)
            )
        if status == "duplicate":
            log.warning("%r reuses the key of a different request", request)
        if note == "locked":
            metrics = self._service.metrics
            if metrics is not None:
                metrics.lockouts.inc()
            log.warning("card %s locked after repeated wrong PINs", mask_pan(request.pan))
        elif note == "expiry-mismatch":
            log.warning("track 2 expiry of card %s differs from the record", mask_pan(request.pan))
        balances: tuple[Balance, ...] = ()
        if ledger is not None:
            kind = _ACCOUNT_TYPES.get(account_type) or AccountType(account_type)
            balances = (
                Balance(kind, "01", currency, int(ledger)),
                Balance(kind, "02", currency, int(available)),
            )
        response_code = _RESPONSE_CODES.get(code) or ResponseCode(code)
        outcome = Outcome(response_code, rrn, auth_code, balances, statement or "")
        return Authorized(outcome, bool(reversal_waiting))


def _unreachable(exc: psycopg.Error) -> bool:
    """The database cannot be reached (as ``host.bank.services`` tells it on the ORM path)."""
    if isinstance(exc, psycopg.InterfaceError | PoolTimeout | PoolClosed):
        return True
    return isinstance(exc, psycopg.OperationalError) and connectivity_text(str(exc))
