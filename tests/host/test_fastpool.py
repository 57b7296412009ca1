"""The hot path's connections (``host.bank.fastpool``) on a real PostgreSQL: killed backends
are replaced and the request still served on the hot path; a connection returned unfit is
never handed out again; a request that gets no connection in time is told so, and one
cancelled while waiting takes none with it; a closed queue refuses."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolClosed, PoolTimeout
from sqlalchemy import Engine, text

from host.bank.fastpath import PIPELINE_DEPTH, Authorized, FastAuthorizer, libpq_conninfo
from host.bank.fastpool import APPLICATION_NAME, ConnectionQueue, HotConnection
from host.bank.services import AuthorizationService, CardRequest, PinFirst
from host.config import HostConfig
from host.db import create_engine_for, session_factory
from protocol.messages import TransactionType
from tests.conftest import TEST_ENV
from tests.host.conftest import ALICE_CHECKING, BOB_CHECKING, TEST_TPK, Clock, Requests


@dataclasses.dataclass(frozen=True)
class Rig:
    """The hot path's parts on the test database: an authorization service (for PIN checks
    and as the hot path's rules), its engine and conninfo, and the requests' maker."""

    engine: Engine
    service: AuthorizationService
    conninfo: str
    requests: Requests
    executor: concurrent.futures.Executor

    def fast(self, *, size: int, depth: int = PIPELINE_DEPTH) -> FastAuthorizer:
        return FastAuthorizer(self.service, self.conninfo, size=size, depth=depth)

    def served(self, fast: FastAuthorizer) -> Callable[[CardRequest], Coroutine[Any, Any, str]]:
        """A request answered on ``fast`` as the link server does (bcrypt between the two
        calls when the first asks for it): its response code."""

        async def served(request: CardRequest) -> str:
            answer = await fast.authorize(request)
            if isinstance(answer, PinFirst):
                pin = await self.service.verify_pin_ahead(request, self.executor, answer.pin_hash)
                answer = await fast.authorize(dataclasses.replace(request, pin_check=pin))
            assert isinstance(answer, Authorized)
            return str(answer.outcome.response_code)

        return served


@pytest.fixture
def rig(postgres_url: str) -> Iterator[Rig]:
    config = HostConfig.from_env({**TEST_ENV, "DATABASE_URL": postgres_url})
    engine = create_engine_for(postgres_url)
    service = AuthorizationService(session_factory(engine), config, Clock())
    executor = concurrent.futures.ThreadPoolExecutor(1)
    try:
        yield Rig(engine, service, libpq_conninfo(postgres_url), Requests(TEST_TPK), executor)
    finally:
        executor.shutdown()
        service.close()
        engine.dispose()


def test_killed_backends_are_replaced_and_the_request_served(rig: Rig) -> None:
    """An administrator kills every backend of the hot path between two withdrawals: the
    second fails on its dead connection, the idle ones are checked, new ones are made and it
    goes through on the hot path (applied once), which stays open."""
    fast = rig.fast(size=2)
    served, conninfo, requests = rig.served(fast), rig.conninfo, rig.requests

    async def backends(admin: psycopg.AsyncConnection[tuple[int]]) -> list[int]:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
            (APPLICATION_NAME,),
        )
        return [row[0] for row in await cursor.fetchall()]

    async def run() -> list[str]:
        await fast.open()
        codes = [await served(requests.withdrawal(10_000))]
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as admin:
            killed = await backends(admin)
            assert killed
            await admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (APPLICATION_NAME,),
            )
            before = fast.round_trips
            codes.append(await served(requests.withdrawal(20_000)))
            assert fast.round_trips > before and fast.available
            assert not set(killed) & set(await backends(admin))
        await fast.close()
        return codes

    assert asyncio.run(run()) == ["00", "00"]
    assert _alice_and_records(rig.engine) == (525_000 - 30_000, 2)


def test_an_unfit_connection_is_replaced_and_waiting_is_bounded(postgres_url: str) -> None:
    """One connection: returned inside a transaction it is closed and a new one made; a
    second request waits at most the timeout (PoolTimeout, all connections lent); one
    cancelled while waiting leaves the connection to the next; after close, PoolClosed."""
    queue = ConnectionQueue(libpq_conninfo(postgres_url), 1, timeout=0.2)

    async def run() -> None:
        queue.open()
        first = await queue.get()
        await first.execute(b"BEGIN")  # a request that left a transaction open
        queue.put(first)
        second = await queue.get()
        assert second is not first and first.closed
        assert second.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE

        with pytest.raises(PoolTimeout):
            await queue.get()
        assert queue.lent == 1  # all busy: overload, not an outage

        waiting = asyncio.create_task(queue.get())
        await asyncio.sleep(0)  # let it queue
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        queue.put(second)
        assert await queue.get() is second

        later = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        await queue.close()
        with pytest.raises(PoolClosed):
            await later
        with pytest.raises(PoolClosed):
            await queue.get()
        queue.put(second)  # returned after close: closed with the rest
        await asyncio.sleep(0)
        assert second.closed and queue.lent == 0

    asyncio.run(run())


def test_a_failed_call_leaves_its_connection_fit_with_psycopgs_error(postgres_url: str) -> None:
    """A call the server refuses raises psycopg's own error class (as the cursor did: the hot
    path tells UniqueViolation and ATM01 by them) and the connection serves the next call; a
    statement error is not a connection error."""
    queue = ConnectionQueue(libpq_conninfo(postgres_url), 1, timeout=5.0)

    async def run() -> None:
        queue.open()
        conn = await queue.get()
        with pytest.raises(psycopg.errors.DivisionByZero) as caught:
            await conn.call(b"ratio", b"SELECT 10 / $1::integer, $2::text", [b"0", None])
        assert caught.value.sqlstate == "22012"
        assert conn.fit
        assert await conn.call(b"ratio", b"SELECT 10 / $1::integer, $2::text", [b"5", b"x"]) == (
            2,
            "x",
        )
        assert await conn.call(b"ratio", b"", [b"2", None]) == (5, None)  # prepared once
        queue.put(conn)
        assert await queue.get() is conn
        queue.put(conn)
        await queue.close()

    asyncio.run(run())


def _alice_and_records(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        balance = connection.scalar(
            text("SELECT balance_cents FROM accounts WHERE number = :n"), {"n": ALICE_CHECKING}
        )
        records = connection.scalar(text("SELECT count(*) FROM link_requests"))
    return balance, records


async def _the_connection(fast: FastAuthorizer) -> tuple[ConnectionQueue, HotConnection]:
    """The hot path's pool and its one connection (not held)."""
    pool = fast._pool
    assert pool is not None
    conn = await pool.get()
    pool.put(conn)
    return pool, conn


async def _terminate(conninfo: str, pid: int) -> None:
    """An administrator kills backend ``pid``."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as killer:
        await killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


async def _lock_alice(conninfo: str) -> psycopg.AsyncConnection[Any]:
    """A connection holding Alice's checking account row locked (a transaction left open)."""
    admin = await psycopg.AsyncConnection.connect(conninfo)
    await admin.execute("SELECT 1 FROM accounts WHERE number = %s FOR UPDATE", (ALICE_CHECKING,))
    return admin


def test_a_nul_in_a_field_is_refused_not_cut_short(rig: Rig) -> None:
    """libpq would read a text parameter only up to a NUL: a transfer to "<Bob's account>"
    NUL "junk" must not reach Bob's account, nor a STAN with a NUL another request's record.
    The call is refused before anything is sent (psycopg's DataError, as its cursor raised:
    the link server answers 96), nothing is applied and the connection serves the next."""
    fast = rig.fast(size=1)
    served, requests = rig.served(fast), rig.requests

    async def run() -> list[object]:
        await fast.open()
        codes: list[object] = [await served(requests.withdrawal(1_000))]
        for request in (
            requests.make(
                TransactionType.TRANSFER,
                amount=5_000,
                to_account_number=BOB_CHECKING + "\x00junk",
            ),
            requests.withdrawal(5_000, stan="000\x0012"),
        ):
            with pytest.raises(psycopg.DataError):
                await fast.authorize(request)
            codes.append("refused")
        codes.append(await served(requests.withdrawal(2_000)))
        await fast.close()
        return codes

    assert asyncio.run(run()) == ["00", "refused", "refused", "00"]
    assert _alice_and_records(rig.engine) == (525_000 - 3_000, 2)


def test_a_withdrawal_cancelled_mid_call_is_applied_at_most_once(rig: Rig) -> None:
    """A request cancelled while its call waits on a row lock (the terminal hung up): the
    connection is closed and replaced, the pool keeps serving, and the same request sent
    again is applied once in all (the cancelled call either never ran or its record answers
    the repeat)."""
    fast = rig.fast(size=1)
    served, conninfo, requests = rig.served(fast), rig.conninfo, rig.requests

    async def run() -> list[str]:
        await fast.open()
        codes = [await served(requests.withdrawal(1_000))]  # card session open, no PIN next
        pool = fast._pool
        assert pool is not None
        admin = await _lock_alice(conninfo)
        request = requests.withdrawal(10_000)
        call = asyncio.create_task(fast.authorize(request))
        await asyncio.sleep(0)  # the call is sent and waits for its answer
        assert pool.lent == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert pool.lent == 0
        await admin.rollback()
        await admin.close()
        codes.append(await served(request))  # the terminal's repeat
        codes.append(await served(requests.withdrawal(2_000)))
        await fast.close()
        return codes

    assert asyncio.run(run()) == ["00", "00", "00"]
    assert _alice_and_records(rig.engine) == (525_000 - 13_000, 3)


def test_a_backend_killed_mid_call_is_replaced_and_the_request_applied_once(rig: Rig) -> None:
    """The backend serving a withdrawal is killed while the call waits on a row lock: the
    call fails with the server's error, nothing of it kept; a new connection is made and the
    request tried once more, answered once (00) and applied once."""
    fast = rig.fast(size=1)
    served, conninfo, requests = rig.served(fast), rig.conninfo, rig.requests

    async def run() -> list[str]:
        await fast.open()
        codes = [await served(requests.withdrawal(1_000))]
        pool, conn = await _the_connection(fast)
        killed = conn.pgconn.backend_pid
        admin = await _lock_alice(conninfo)
        call = asyncio.create_task(served(requests.withdrawal(10_000)))
        await asyncio.sleep(0)  # sent; it waits on the lock
        await _terminate(conninfo, killed)
        await admin.rollback()  # the retry, on a new connection, goes through
        await admin.close()
        codes.append(await call)
        assert fast.available and conn.closed
        conn = await pool.get()
        assert conn.pgconn.backend_pid != killed
        pool.put(conn)
        await fast.close()
        return codes

    assert asyncio.run(run()) == ["00", "00"]
    assert _alice_and_records(rig.engine) == (525_000 - 11_000, 2)


def test_pipelined_calls_answer_each_its_own(postgres_url: str) -> None:
    """One connection lent to three requests at once (depth 3): their calls go in one
    pipeline, each its own transaction. The one the server refuses gets its own error; the
    calls before and after it get their rows, and the connection stays fit for the next."""
    queue = ConnectionQueue(libpq_conninfo(postgres_url), 1, timeout=5.0, depth=3)
    query = b"SELECT 100 / $1::integer"

    async def one(divisor: bytes) -> object:
        conn = await queue.get()
        try:
            return await conn.call(b"share", query, [divisor])
        except psycopg.Error as exc:
            return type(exc)
        finally:
            queue.put(conn)

    async def run() -> None:
        queue.open()
        answers = await asyncio.gather(one(b"4"), one(b"0"), one(b"5"))
        assert list(answers) == [(25,), psycopg.errors.DivisionByZero, (20,)]
        assert queue.lent == 0
        conn = await queue.get()
        assert conn.fit and conn.in_flight == 0
        assert await conn.call(b"share", query, [b"50"]) == (2,)
        queue.put(conn)
        await queue.close()

    asyncio.run(run())


def test_a_backend_killed_mid_pipeline_answers_each_request_once(rig: Rig) -> None:
    """Three withdrawals pipelined on one connection, the first waiting on a row lock, when
    its backend is killed: every one of them fails on the dead connection, is tried once
    more on a new one and answered once, each applied once."""
    fast = rig.fast(size=1, depth=3)
    served, conninfo, requests = rig.served(fast), rig.conninfo, rig.requests

    async def run() -> list[str]:
        await fast.open()
        codes = [await served(requests.withdrawal(1_000))]
        pool, conn = await _the_connection(fast)
        killed = conn.pgconn.backend_pid
        admin = await _lock_alice(conninfo)
        before = fast.round_trips
        calls = [
            asyncio.create_task(served(requests.withdrawal(amount)))
            for amount in (5_000, 10_000, 15_000)
        ]
        await asyncio.sleep(0)  # all three sent on the one connection
        assert (pool.lent, conn.in_flight) == (3, 3)
        await _terminate(conninfo, killed)
        await admin.rollback()
        await admin.close()
        codes += await asyncio.gather(*calls)
        assert fast.round_trips - before == 6  # each failed once, then went through
        assert fast.available and conn.closed
        await fast.close()
        return codes

    assert asyncio.run(run()) == ["00", "00", "00", "00"]
    assert _alice_and_records(rig.engine) == (525_000 - 31_000, 4)
