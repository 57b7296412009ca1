"""A database that goes away: readiness fails, link requests are answered 91 (never left
hanging, never half-written), and everything comes back with the database. Uses a PostgreSQL
server of its own (the shared one must stay up for the other tests), stopped for real."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from sqlalchemy import func, select

from host.app import Host
from host.bank.ledger import check_ledger
from host.bank.models import LinkRequest, Posting
from host.config import HostConfig
from tests.conftest import TEST_ENV, PostgresServer, seed_database, start_postgres
from tests.host.conftest import ALICE_CHECKING
from tests.host.link_helpers import TestTerminal


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.remove()


async def _ready(port: int) -> int:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"http://127.0.0.1:{port}/ready") as reply:
            return reply.status


async def test_database_down_then_back(own_postgres: PostgresServer, tmp_path):
    own_postgres.admin("CREATE DATABASE atm")
    url = own_postgres.url("atm")
    await asyncio.to_thread(seed_database, url)
    config = HostConfig.from_env(
        {**TEST_ENV, "DATABASE_URL": url, "STATEMENT_OUTPUT_DIR": str(tmp_path)}
    )
    host = Host(config)
    try:
        link_port = await host.start("127.0.0.1", 0)
        ops_port = await host.start_ops("127.0.0.1", 0)
        async with TestTerminal(link_port, "ATM00001", timeout=30) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            first = await terminal.client.request(terminal.withdrawal(2_000))
            assert first["39"] == "00"
            assert await _ready(ops_port) == 200

            await asyncio.to_thread(own_postgres.stop)
            assert await _ready(ops_port) == 503
            during = terminal.withdrawal(2_000)
            answer = await terminal.client.request(during)
            assert answer["39"] in ("91", "96") and answer["11"] == during["11"]
            assert (await terminal.client.request(terminal.withdrawal(2_000)))["39"] == "91"

            await asyncio.to_thread(own_postgres.start)
            assert await _ready(ops_port) == 200
            # The request answered 91 left nothing behind: sent again, it is applied once.
            assert (await terminal.client.request(during))["39"] == "00"
            # The hot path (host.bank.fastpath) is back in use once a request went through.
            assert host.fast is not None and host.fast.available
            assert (await terminal.client.request(terminal.withdrawal(2_000)))["39"] == "00"
        assert host.balance(ALICE_CHECKING) == 525_000 - 3 * 2_000
        with host.sessions() as session:
            assert check_ledger(session) == []
            assert session.scalar(select(func.count()).select_from(LinkRequest)) == 3
            assert (
                session.scalar(
                    select(func.count()).select_from(Posting).where(Posting.kind == "withdrawal")
                )
                == 3
            )
    finally:
        await host.close()
