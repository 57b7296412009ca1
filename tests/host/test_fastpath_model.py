"""Both ways of authorizing on PostgreSQL give the same answers and write the same rows
(issue 16): the ORM path (``host.bank.services``, on the link server's worker threads) and
the hot path (``host.bank.fastpath``: one call of ``atm_authorize``, migration 0011).

Two databases are copied from one seeded template. Each request goes to a link server over
each (``LinkServer._authorize``, the dispatch the link uses: PIN first, bcrypt ahead on the
PIN pool, then the authorization; a reversal that overtook its original applied after it),
one with the hot path and one without, with the same clock and the same RRN / auth code
source. Every answer (code, RRN, auth code, DE 54, mini statement) must be equal, and after
each sequence every row the two wrote: accounts, cards, card sessions, postings, entries,
holds, audit rows, link requests and reversal advices, JSON text included, ids included.

A hypothesis property drives random sequences (withdrawals, transfers, inquiries, wrong PINs
up to lockouts, repeats, a key reused for another request, reversal advices before and after
their original, frozen accounts, session time-outs, days passing); a scripted sequence covers
the rarer codes (unknown, lost, stolen, expired cards, maintenance, a terminal out of
service, an operator's PIN reset, no PIN key, transfers that cannot be, deposit holds).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from host.bank import controls
from host.bank.audit import Actor
from host.bank.fastpath import Authorized, FastAuthorizer, libpq_conninfo
from host.bank.ledger import check_ledger, post
from host.bank.models import Account
from host.bank.seed import EQUITY_ACCOUNT
from host.bank.services import AuthorizationService, CardRequest, Outcome, PinFirst
from host.config import HostConfig
from host.db import create_engine_for, session_factory
from host.link.reversals import ReversalService
from host.link.server import LinkServer
from protocol.messages import AccountType, TransactionType
from protocol.response_codes import ResponseCode
from tests.conftest import TEST_ENV, PostgresDatabases
from tests.host.conftest import (
    ALICE,
    ALICE_CHECKING,
    ALICE_SAVINGS,
    BOB,
    CHARLIE,
    EXPIRED,
    STOLEN,
    TEST_TPK,
    Clock,
    Requests,
    reversal_advice,
)

TERMINAL = "ATM00001"
OPERATOR = Actor("ops", "admin", "test")
TABLES = (
    "accounts",
    "cards",
    "card_sessions",
    "postings",
    "entries",
    "holds",
    "audit_log",
    "link_requests",
    "link_reversal_advices",
    "bank_state",
    "terminals",
    "daily_usage",
)
_counter = itertools.count(1)
_ROWS = {table: f"SELECT row_to_json(t)::text FROM {table} t ORDER BY t.id" for table in TABLES}
_ROWS["daily_usage"] = (
    "SELECT row_to_json(t)::text FROM daily_usage t ORDER BY t.account_id, t.kind, t.day"
)
_ROWS["cards"] = "SELECT (to_jsonb(t) - 'pin_hash')::text FROM cards t ORDER BY t.id"
# An operator's action (the test's own set-up) is stamped with the real time.
_ROWS["audit_log"] = (
    "SELECT CASE WHEN t.role = 'terminal' THEN row_to_json(t)::text"
    " ELSE (to_jsonb(t) - 'at')::text END"
    # SQL NULL and JSON null look alike in a row's JSON: tell them apart.
    " || (t.before IS NULL)::text || (t.after IS NULL)::text FROM audit_log t ORDER BY t.id"
)


class KeyedCodes:
    """RRN and auth code derived from the request's key: both paths draw the same."""

    def rrn(self, request: CardRequest, now: Any) -> str:
        return f"{request.stan}{request.transmission_time[-6:]}"

    def auth_code(self, request: CardRequest) -> str:
        return request.stan


@dataclass
class Side:
    engine: Engine
    sessions: sessionmaker[Session]
    service: AuthorizationService
    url: str

    def rows(self) -> dict[str, list[str]]:
        """Every row of the tables both paths write, as PostgreSQL's JSON text of the row
        (a card's PIN hash aside: an operator's PIN reset salts it anew on each side; and an
        operator's audit row's time: the controls stamp it with the real time)."""
        with self.engine.connect() as connection:
            return {table: list(connection.scalars(text(_ROWS[table]))) for table in TABLES}

    def operate(self, action: Callable[[Session], object]) -> None:
        with self.sessions.begin() as session:
            action(session)


@pytest.fixture
def sides(
    postgres_server: PostgresDatabases, postgres_template: str, tmp_path: Path
) -> Iterator[tuple[Side, Side, Clock]]:
    clock = Clock()
    made: list[Side] = []
    names = []
    for _ in range(2):
        name = f"{postgres_server.prefix}_fast_{os.getpid()}_{next(_counter)}"
        postgres_server.admin(
            f"CREATE DATABASE {name} TEMPLATE {postgres_template} STRATEGY FILE_COPY"
        )
        names.append(name)
        url = postgres_server.url(name)
        config = HostConfig.from_env(
            {**TEST_ENV, "DATABASE_URL": url, "STATEMENT_OUTPUT_DIR": str(tmp_path)}
        )
        engine = create_engine_for(url)
        sessions = session_factory(engine)
        service = AuthorizationService(sessions, config, clock, codes=KeyedCodes())
        made.append(Side(engine, sessions, service, url))
    yield made[0], made[1], clock
    for side in made:
        side.service.close()
        side.engine.dispose()
    for name in names:
        postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Pair:
    """The ORM side and the hot-path side, driven with the same requests in one event loop."""

    def __init__(self, orm: Side, fast: Side, clock: Clock, day: int) -> None:
        self.orm, self.fast, self.clock = orm, fast, clock
        self.requests = Requests(TEST_TPK, TERMINAL)
        self.day = day
        self.count = 0
        self.executor = concurrent.futures.ThreadPoolExecutor(2)
        self.authorizer = FastAuthorizer(fast.service, libpq_conninfo(fast.url), size=1)
        self.servers = [
            self._server(orm, None),
            self._server(fast, self.authorizer),
        ]
        self.reversals = [ReversalService(side.sessions, clock) for side in (orm, fast)]

    def _server(self, side: Side, fast: FastAuthorizer | None) -> LinkServer:
        return LinkServer(
            side.service,
            self.executor,
            sessions=side.sessions,
            link_config=side.service.config.link,
            switch_poll_seconds=0,
            clock=self.clock,
            fast=fast,
        )

    async def __aenter__(self) -> Pair:
        await self.authorizer.reopen()
        assert self.authorizer.available
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.authorizer.close()
        self.executor.shutdown()

    def key(self) -> tuple[str, str]:
        self.count += 1
        return (
            f"{(self.day * 1000 + self.count) % 999_999 + 1:06d}",
            f"{self.day % 10_000:04d}{self.count:06d}",
        )

    def make(
        self, transaction: TransactionType, pan: str, amount: int = 0, **kw: Any
    ) -> CardRequest:
        stan, time = self.key()
        kw.setdefault("stan", stan)
        kw.setdefault("transmission_time", time)
        return self.requests.make(transaction, pan, amount, **kw)

    async def send(self, request: CardRequest) -> Outcome:
        orm, fast = [await server._authorize(request) for server in self.servers]
        assert fast == orm, (request, orm, fast)
        return orm

    def reverse(self, original: CardRequest, dispensed: int = 0) -> None:
        """A reversal advice for ``original``, ``dispensed`` of it paid out (a partial
        reversal gives back the rest)."""
        stan, time = self.key()
        advice = reversal_advice(original, stan, time, dispensed_cents=dispensed)
        answers = [reversals.handle(advice).response_code for reversals in self.reversals]
        assert answers[0] == answers[1]

    def operate(self, action: Callable[[Session], object]) -> None:
        for side in (self.orm, self.fast):
            side.operate(action)

    def assert_same_rows(self) -> None:
        """Every row the same on both sides, and both ledgers clean (the daily usage
        counters among them agreeing with the entries)."""
        orm, fast = self.orm.rows(), self.fast.rows()
        for table in TABLES:
            assert fast[table] == orm[table], table
        for side in (self.orm, self.fast):
            with side.sessions() as session:
                assert check_ledger(session) == []


def _transfer(pair: Pair, pan: str, amount: int, **kw: Any) -> CardRequest:
    if pan == ALICE:
        return pair.make(
            TransactionType.TRANSFER,
            pan,
            amount,
            from_account=AccountType.CHECKING,
            to_account=AccountType.SAVINGS,
            **kw,
        )
    return pair.make(
        TransactionType.TRANSFER,
        pan,
        amount,
        from_account=AccountType.CHECKING,
        to_account_number=ALICE_CHECKING,
        **kw,
    )


AMOUNTS = st.one_of(
    st.sampled_from([0, 1, 2_000, 20_000, 50_000, 85_075, 200_000, 10**9 + 1]),
    st.integers(1, 300_000),
)
CARDS = st.sampled_from([ALICE, BOB])
OPERATIONS = st.one_of(
    st.tuples(st.just("withdraw"), CARDS, AMOUNTS),
    st.tuples(st.just("transfer"), CARDS, AMOUNTS),
    st.tuples(st.just("inquiry"), CARDS, st.just(0)),
    st.tuples(st.just("wrong-pin"), CARDS, AMOUNTS),
    st.tuples(st.just("repeat"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("reuse-key"), st.integers(0, 50), AMOUNTS),
    # The amount: what the terminal dispensed (a partial reversal gives back the rest).
    st.tuples(st.just("reverse"), st.integers(0, 50), st.sampled_from([0, 0, 1_000, 2_000])),
    st.tuples(st.just("reverse-first"), CARDS, AMOUNTS),
    st.tuples(st.just("freeze"), st.sampled_from([ALICE_CHECKING, ALICE_SAVINGS]), st.just(0)),
    st.tuples(st.just("wait"), st.sampled_from([30, 130, 1_900, 86_400]), st.just(0)),
)


async def _drive(pair: Pair, operations: list[tuple[str, object, int]]) -> None:
    sent: list[CardRequest] = []
    frozen: set[str] = set()
    for kind, who, amount in operations:
        if kind in ("repeat", "reuse-key", "reverse"):
            if not sent:
                continue
            earlier = sent[int(str(who)) % len(sent)]
            if kind == "repeat":
                await pair.send(earlier)
            elif kind == "reuse-key":  # the same key for another request: 94 (or a repeat)
                await pair.send(dataclasses.replace(earlier, amount_cents=amount))
            else:
                pair.reverse(earlier, dispensed=amount)
            continue
        if kind == "freeze":
            number = str(who)
            change = controls.unfreeze_account if number in frozen else controls.freeze_account
            pair.operate(functools.partial(change, actor=OPERATOR, number=number))
            frozen ^= {number}
            continue
        if kind == "wait":
            pair.clock.advance(int(str(who)))
            continue
        pan = str(who)
        if kind in ("withdraw", "reverse-first", "wrong-pin"):
            pin = "0000" if kind == "wrong-pin" else None
            request = pair.make(TransactionType.WITHDRAWAL, pan, amount, pin=pin)
        elif kind == "transfer":
            request = _transfer(pair, pan, amount)
        else:
            request = pair.make(TransactionType.BALANCE_INQUIRY, pan)
        if kind == "reverse-first":  # the advice overtakes its original
            pair.reverse(request)
        await pair.send(request)
        sent.append(request)
    for number in frozen:
        pair.operate(functools.partial(controls.unfreeze_account, actor=OPERATOR, number=number))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=16))
def test_both_paths_answer_and_write_the_same(
    sides: tuple[Side, Side, Clock], operations: list[tuple[str, object, int]]
) -> None:
    orm, fast, clock = sides
    clock.advance(86_400)  # a new day: fresh limits, earlier lockouts over
    day = int(clock.now.timestamp() // 86_400)

    async def run() -> None:
        async with Pair(orm, fast, clock, day) as pair:
            await _drive(pair, operations)
            pair.assert_same_rows()

    asyncio.run(run())


def test_the_rarer_codes_are_the_same_on_both_paths(sides: tuple[Side, Side, Clock]) -> None:
    orm, fast, clock = sides
    setting = controls.PinSetting(orm.service.config.pin_pepper, orm.service.config.bcrypt_rounds)

    async def run() -> None:
        async with Pair(orm, fast, clock, 1) as pair:
            codes = []

            async def send(request: CardRequest) -> None:
                codes.append((await pair.send(request)).response_code)

            for pan in (EXPIRED, STOLEN, CHARLIE):  # 54, 43, 51 (Charlie's checking: 0)
                await send(pair.make(TransactionType.WITHDRAWAL, pan, 2_000))
            for pan in ("4000001111111111", "5999991234567890"):  # 14 unknown, 15 not ours
                await send(pair.make(TransactionType.WITHDRAWAL, pan, 2_000, pin="1234"))
            await send(pair.make(TransactionType.WITHDRAWAL, ALICE, 2_000, without_pin_key=True))
            await send(
                dataclasses.replace(
                    pair.make(TransactionType.BALANCE_INQUIRY, ALICE), pin_block=None
                )
            )
            await send(
                pair.make(TransactionType.TRANSFER, ALICE, 1_000, from_account=AccountType.CHECKING)
            )
            await send(
                pair.make(
                    TransactionType.TRANSFER,
                    ALICE,
                    1_000,
                    from_account=AccountType.CHECKING,
                    to_account_number="9999-9999-9999",
                )
            )
            await send(
                pair.make(
                    TransactionType.TRANSFER,
                    ALICE,
                    1_000,
                    from_account=AccountType.CHECKING,
                    to_account_number=ALICE_CHECKING,
                )
            )
            await send(
                pair.make(
                    TransactionType.WITHDRAWAL, ALICE, 2_000, from_account=AccountType.SAVINGS
                )
            )
            # A deposit (the ORM path on both) leaves holds: the available balance and the
            # mini statement's HOLD line come from the function on one side.
            await send(pair.make(TransactionType.DEPOSIT, ALICE, 50_000))
            await send(pair.make(TransactionType.BALANCE_INQUIRY, ALICE))
            await send(pair.make(TransactionType.WITHDRAWAL, ALICE, 510_000))
            pair.operate(
                lambda session: controls.set_maintenance(session, OPERATOR, True, now=clock.now)
            )
            await send(pair.make(TransactionType.WITHDRAWAL, ALICE, 2_000))
            pair.operate(
                lambda session: controls.set_maintenance(session, OPERATOR, False, now=clock.now)
            )
            pair.operate(
                lambda session: controls.terminal_out_of_service(session, OPERATOR, TERMINAL)
            )
            await send(pair.make(TransactionType.WITHDRAWAL, ALICE, 2_000))
            pair.operate(lambda session: controls.terminal_in_service(session, OPERATOR, TERMINAL))
            pair.operate(
                lambda session: controls.reset_pin(session, OPERATOR, BOB, "4711", setting)
            )
            await send(pair.make(TransactionType.WITHDRAWAL, BOB, 2_000, pin="4711"))
            await send(pair.make(TransactionType.WITHDRAWAL, ALICE, 2_000, terminal_id="ATM99999"))
            pair.assert_same_rows()
            # The call is a prepared statement on the server (prepared once per connection).
            pool = pair.authorizer._pool
            assert pool is not None
            conn = await pool.get()
            try:
                row = await conn.call(
                    b"list", b"SELECT array_agg(statement) FROM pg_prepared_statements", []
                )
            finally:
                pool.put(conn)
            assert row is not None
            prepared = row[0]
            assert any("atm_authorize" in statement for statement in prepared), prepared
            assert [str(code) for code in codes] == (
                "54 43 51 14 15 55 30 12 57 12 00 00 00 61 90 89 77 57".split()
            )

    asyncio.run(run())


def test_a_mini_statement_with_an_unlabelled_posting_is_the_same_on_both_paths(
    sides: tuple[Side, Side, Clock],
) -> None:
    """The function formats DE 62 itself (migration 0014). A posting of a kind with no fixed
    label shows its description in upper case: printable ASCII the SQL formats; anything
    else (here an accented letter and a German sharp s, whose upper case Python and SQL may
    disagree on) it leaves to the ORM path, with nothing kept from the hot path's try."""
    orm, fast, clock = sides

    def adjust(description: str, cents: int) -> Callable[[Session], object]:
        def action(session: Session) -> None:
            account = session.scalars(select(Account).where(Account.number == ALICE_CHECKING))
            equity = session.scalars(select(Account).where(Account.number == EQUITY_ACCOUNT))
            legs = [(account.one(), cents), (equity.one(), -cents)]
            post(session, "adjustment", legs, description=description, at=clock.now)

        return action

    async def run() -> list[str]:
        async with Pair(orm, fast, clock, 2) as pair:
            statements = []
            for description, cents in (("goodwill credit #7 / ok", 150), ("Café ß", -25)):
                pair.operate(adjust(description, cents))
                clock.advance(60)
                outcome = await pair.send(pair.make(TransactionType.BALANCE_INQUIRY, ALICE))
                assert outcome.response_code == ResponseCode.APPROVED
                statements.append(outcome.mini_statement)
            pair.assert_same_rows()
            return statements

    ascii_only, accented = asyncio.run(run())
    assert ascii_only[8:40] == "C000000000150" + "GOODWILL CREDIT #7 "
    assert accented[8:40] == "D000000000025" + f"{'CAF? SS':<19}"


async def _until_waiting_on_lock(watcher: psycopg.AsyncConnection[Any], calls: int) -> None:
    """Return once ``calls`` hot-path calls wait for a row lock (polled on ``watcher``)."""
    for _ in range(100_000):
        cursor = await watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%atm_authorize%'"
        )
        row = await cursor.fetchone()
        if row is not None and row[0] == calls:
            return
    pytest.fail(f"{calls} call(s) never waited for the card's lock")


def test_the_same_request_twice_at_once_is_applied_once_on_the_hot_path(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A repeat sent while the original is in flight, on two connections: both calls pass the
    duplicate check, wait for the card's row lock (held here until both wait), and the second
    to insert the record meets the unique key: it is answered from the record, the money
    moves once."""
    config = HostConfig.from_env({**TEST_ENV, "DATABASE_URL": postgres_url})
    engine = create_engine_for(postgres_url)
    service = AuthorizationService(session_factory(engine), config, Clock())
    fast = FastAuthorizer(service, libpq_conninfo(postgres_url), size=2)
    request = Requests(TEST_TPK).withdrawal(10_000)

    async def run() -> list[Outcome]:
        await fast.reopen()
        first = await fast.authorize(request)
        assert isinstance(first, PinFirst)  # nothing applied yet
        executor = concurrent.futures.ThreadPoolExecutor(1)
        pin = await service.verify_pin_ahead(request, executor, first.pin_hash)
        executor.shutdown()
        ready = dataclasses.replace(request, pin_check=pin)
        conninfo = libpq_conninfo(postgres_url)
        async with (
            await psycopg.AsyncConnection.connect(conninfo) as holder,
            await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as watcher,
        ):
            await holder.execute("SELECT 1 FROM cards WHERE pan = %s FOR UPDATE", (ALICE,))
            calls = [asyncio.create_task(fast.authorize(ready)) for _ in range(2)]
            await _until_waiting_on_lock(watcher, 2)
            await holder.rollback()
            answers = await asyncio.gather(*calls)
        await fast.close()
        return [answer.outcome for answer in answers if isinstance(answer, Authorized)]

    try:
        with caplog.at_level("INFO", logger="host.bank.fastpath"):
            outcomes = asyncio.run(run())
        assert len(outcomes) == 2 and outcomes[0] == outcomes[1]
        assert outcomes[0].response_code == "00"
        assert "concurrent repeat" in caplog.text
        with engine.connect() as connection:
            balance = connection.scalar(
                text("SELECT balance_cents FROM accounts WHERE number = :n"),
                {"n": ALICE_CHECKING},
            )
            records = connection.scalar(text("SELECT count(*) FROM link_requests"))
        assert (balance, records) == (515_000, 1)
    finally:
        service.close()
        engine.dispose()


def test_an_overloaded_pool_sheds_a_request_and_stays_open(postgres_url: str) -> None:
    """One connection carrying one call at a time (depth 1), busy with a withdrawal that
    waits for the card's row lock: a second request waits for a connection, gets none within
    the acquire timeout and is answered 91 with nothing applied (the host is overloaded, the
    database is fine), the pool stays open, and once the first goes through the next request
    is served on the hot path."""
    config = HostConfig.from_env({**TEST_ENV, "DATABASE_URL": postgres_url})
    engine = create_engine_for(postgres_url)
    service = AuthorizationService(session_factory(engine), config, Clock())
    fast = FastAuthorizer(
        service, libpq_conninfo(postgres_url), size=1, depth=1, acquire_timeout=0.3
    )
    requests = Requests(TEST_TPK)

    async def ready(request: CardRequest) -> CardRequest:
        first = await fast.authorize(request)
        if not isinstance(first, PinFirst):
            return request
        executor = concurrent.futures.ThreadPoolExecutor(1)
        pin = await service.verify_pin_ahead(request, executor, first.pin_hash)
        executor.shutdown()
        return dataclasses.replace(request, pin_check=pin)

    async def run() -> list[str]:
        await fast.reopen()
        busy = await ready(requests.withdrawal(10_000))
        shed = await ready(requests.withdrawal(20_000))
        conninfo = libpq_conninfo(postgres_url)
        async with (
            await psycopg.AsyncConnection.connect(conninfo) as holder,
            await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as watcher,
        ):
            await holder.execute("SELECT 1 FROM cards WHERE pan = %s FOR UPDATE", (ALICE,))
            waiting = asyncio.create_task(fast.authorize(busy))
            await _until_waiting_on_lock(watcher, 1)
            second = await fast.authorize(shed)
            assert fast.available  # overload is not an outage
            await holder.rollback()
            first = await waiting
        third = await fast.authorize(await ready(requests.withdrawal(5_000)))
        await fast.close()
        answers = [first, second, third]
        return [str(a.outcome.response_code) for a in answers if isinstance(a, Authorized)]

    try:
        assert asyncio.run(run()) == ["00", "91", "00"]
        with engine.connect() as connection:
            balance = connection.scalar(
                text("SELECT balance_cents FROM accounts WHERE number = :n"),
                {"n": ALICE_CHECKING},
            )
            records = connection.scalar(text("SELECT count(*) FROM link_requests"))
        # The shed request left no record and moved nothing.
        assert (balance, records) == (525_000 - 15_000, 2)
    finally:
        service.close()
        engine.dispose()
