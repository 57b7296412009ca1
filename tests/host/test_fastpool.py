"""The hot path's connections (``host.bank.fastpool``) on a real PostgreSQL: killed backends
are replaced and the request still served on the hot path; a connection returned unfit is
never handed out again; a request that gets no connection in time is told so, and one
cancelled while waiting takes none with it; a closed queue refuses."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses

import psycopg
import pytest
from psycopg_pool import PoolClosed, PoolTimeout
from sqlalchemy import text

from host.bank.fastpath import Authorized, FastAuthorizer, libpq_conninfo
from host.bank.fastpool import APPLICATION_NAME, ConnectionQueue
from host.bank.services import AuthorizationService, CardRequest, PinFirst
from host.config import HostConfig
from host.db import create_engine_for, session_factory
from tests.conftest import TEST_ENV
from tests.host.conftest import ALICE_CHECKING, TEST_TPK, Clock, Requests


def test_killed_backends_are_replaced_and_the_request_served(postgres_url: str) -> None:
    """An administrator kills every backend of the hot path between two withdrawals: the
    second fails on its dead connection, the idle ones are checked, new ones are made and it
    goes through on the hot path (applied once), which stays open."""
    config = HostConfig.from_env({**TEST_ENV, "DATABASE_URL": postgres_url})
    engine = create_engine_for(postgres_url)
    service = AuthorizationService(session_factory(engine), config, Clock())
    conninfo = libpq_conninfo(postgres_url)
    fast = FastAuthorizer(service, conninfo, size=2)
    requests = Requests(TEST_TPK)
    executor = concurrent.futures.ThreadPoolExecutor(1)

    async def served(request: CardRequest) -> str:
        answer = await fast.authorize(request)
        if isinstance(answer, PinFirst):
            pin = await service.verify_pin_ahead(request, executor, answer.pin_hash)
            answer = await fast.authorize(dataclasses.replace(request, pin_check=pin))
        assert isinstance(answer, Authorized)
        return str(answer.outcome.response_code)

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

    try:
        assert asyncio.run(run()) == ["00", "00"]
        with engine.connect() as connection:
            balance = connection.scalar(
                text("SELECT balance_cents FROM accounts WHERE number = :n"),
                {"n": ALICE_CHECKING},
            )
            records = connection.scalar(text("SELECT count(*) FROM link_requests"))
        assert (balance, records) == (525_000 - 30_000, 2)
    finally:
        executor.shutdown()
        service.close()
        engine.dispose()


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
