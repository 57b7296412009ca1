"""Concurrency on PostgreSQL, with real processes and sockets: 50 withdrawals at once on one
account, from 10 terminals (each with its own card on that account, so the contention is on the
account's row), through two ``atm host`` processes sharing one database. The account is never
overdrawn, no update is lost (balance == opening - sum of approved), the ledger is clean."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select

from host.bank.ledger import check_ledger
from host.bank.models import Account, Card, CardAccount, Customer, LinkRequest
from host.bank.pins import hash_pin
from host.db import create_engine_for, session_factory
from tests.host.conftest import ALICE_CHECKING
from tests.host.link_helpers import TestTerminal

TERMINALS = [f"ATM{n:05d}" for n in range(1, 11)]
PER_TERMINAL = 5
AMOUNT = 20_000  # $200: 50 of them ask for $10,000; the account holds $5,250
OPENING = 525_000
PIN = "2580"


def _cards_on_alices_checking(url: str) -> list[str]:
    """Nine more cards, so each terminal has a card of its own on the same account."""
    pans = [f"40000077{n:08d}" for n in range(1, 11)]
    engine = create_engine_for(url)
    try:
        with session_factory(engine).begin() as session:
            account = session.scalars(select(Account).where(Account.number == ALICE_CHECKING)).one()
            owner = session.scalars(select(Customer).where(Customer.name == "Alice Johnson")).one()
            pin_hash = hash_pin(PIN, "dev-pin-pepper-change-me", 4)
            for pan in pans:
                card = Card(pan=pan, customer=owner, expiry="3012", pin_hash=pin_hash)
                session.add(card)
                session.flush()
                session.add(CardAccount(card=card, account=account, account_type="20"))
    finally:
        engine.dispose()
    return pans


@asynccontextmanager
async def _host_process(url: str) -> AsyncIterator[int]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": url,
        "ENVIRONMENT": "testing",
        "BCRYPT_ROUNDS": "4",
        "DAILY_WITHDRAWAL_LIMIT": str(10**9),
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--port", "0", "--no-ops", "--no-worker",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        match = re.search(r"host listening on [\d.]+:(\d+)", line)
        if match is None:
            assert process.stderr is not None
            raise AssertionError(f"host did not start: {line!r} {await process.stderr.read()!r}")
        yield int(match.group(1))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        assert code == 0, f"host exited with {code}"


async def _terminal(port: int, terminal_id: str, pan: str) -> list[str]:
    """One ATM: signs on (working keys, MAC), then sends its withdrawals at once over its one
    connection; returns the response codes."""
    async with TestTerminal(port, terminal_id, timeout=60) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        track = f"{pan}=30121010000000000000"
        requests = [terminal.withdrawal(AMOUNT, pan, track, PIN) for _ in range(PER_TERMINAL)]
        responses = await asyncio.gather(*(terminal.client.request(r) for r in requests))
    assert {r["41"] for r in responses} == {terminal_id}
    return [r["39"] for r in responses]


async def test_fifty_concurrent_withdrawals_through_two_hosts(postgres_url):
    pans = await asyncio.to_thread(_cards_on_alices_checking, postgres_url)
    async with _host_process(postgres_url) as port_a, _host_process(postgres_url) as port_b:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                _terminal(port_a if i % 2 else port_b, terminal, pans[i])
                for i, terminal in enumerate(TERMINALS)
            )
        )
        elapsed = time.perf_counter() - started
    codes = [code for terminal in results for code in terminal]
    approved = codes.count("00")
    print(
        f"\n50 concurrent withdrawals, 10 terminals, 2 host processes, PostgreSQL: "
        f"{elapsed:.2f} s, {len(codes) / elapsed:.0f} authorizations/s, {approved} approved"
    )
    assert len(codes) == 50
    # Exactly as many as the money allows: 26 x $200 = $5,200 of $5,250; the rest 51.
    assert approved == OPENING // AMOUNT
    assert set(codes) == {"00", "51"}
    engine = create_engine_for(postgres_url)
    try:
        with session_factory(engine)() as session:
            balance = session.scalars(
                select(Account.balance_cents).where(Account.number == ALICE_CHECKING)
            ).one()
            assert balance >= 0
            assert balance == OPENING - approved * AMOUNT
            assert check_ledger(session) == []
            recorded = session.scalar(select(func.count()).select_from(LinkRequest))
            assert recorded == 50
    finally:
        engine.dispose()
