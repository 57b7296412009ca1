"""Migration 0017 (PostgreSQL; a no-op on SQLite): ``atm_authorize`` reads the request's
record, the switches, the terminal, the card (locked) and the account in one statement.
Going down puts 0015's function back and up again this one, on both databases. The same
answers and rows as the ORM path are ``tests/host/test_fastpath_model.py``'s; here what the
one read changes under concurrency: the account's columns come from the statement that
waits for the card's lock, so what must be current is read again after it (an inquiry's
balance with its mini statement, a withdrawal's account status with the account's lock)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Callable
from typing import Any

import psycopg
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from host.bank import controls
from host.bank.audit import Actor
from host.bank.fastpath import Authorized, FastAuthorizer, libpq_conninfo
from host.bank.ledger import post
from host.bank.models import Account, Card
from host.bank.services import AuthorizationService, CardRequest, PinFirst
from host.config import HostConfig
from host.db import alembic_config, create_engine_for, is_sqlite, migrate, session_factory
from protocol.response_codes import ResponseCode as RC
from tests.conftest import TEST_ENV
from tests.host.conftest import ALICE, ALICE_CHECKING, Clock, Requests

OPERATOR = Actor("ops", "admin", "test")
Meanwhile = Callable[[Session, sessionmaker[Session]], None]


def _body(url: str) -> str | None:
    if is_sqlite(url):
        return None
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return str(
                connection.scalar(
                    text("SELECT prosrc FROM pg_proc WHERE proname = 'atm_authorize'")
                )
            )
    finally:
        engine.dispose()


def test_the_function_goes_down_to_0015s_and_up_again(seeded_url: str) -> None:
    body = _body(seeded_url)
    assert body is None or ("LEFT JOIN LATERAL" in body and "INTO v_card" not in body)

    command.downgrade(alembic_config(seeded_url), "0017_authorize_one_read-1")
    body = _body(seeded_url)
    assert body is None or ("LEFT JOIN LATERAL" not in body and "INTO v_card" in body)

    migrate(seeded_url)
    body = _body(seeded_url)
    assert body is None or ("LEFT JOIN LATERAL" in body and "INTO v_card" not in body)


async def _until_waiting_on_lock(watcher: psycopg.AsyncConnection[Any]) -> None:
    """Return once a hot-path call waits for a row lock (polled on ``watcher``)."""
    for _ in range(100_000):
        cursor = await watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%atm_authorize%'"
        )
        row = await cursor.fetchone()
        if row is not None and row[0] == 1:
            return
    raise AssertionError("the call never waited for the card's lock")


def _behind_the_card(url: str, request: CardRequest, meanwhile: Meanwhile) -> Authorized:
    """``request`` on the hot path (its card session opened first) while another transaction
    holds Alice's card: once the call waits for that lock, ``meanwhile`` runs (given that
    transaction's session, and the session factory), then the transaction commits."""
    config = HostConfig.from_env({**TEST_ENV, "DATABASE_URL": url})
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    service = AuthorizationService(sessions, config, Clock())
    fast = FastAuthorizer(service, libpq_conninfo(url), size=1)

    async def run() -> Authorized:
        await fast.reopen()
        first = await fast.authorize(request)
        assert isinstance(first, PinFirst)  # nothing applied yet
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            pin = await service.verify_pin_ahead(request, executor, first.pin_hash)
        ready = dataclasses.replace(request, pin_check=pin)
        conninfo = libpq_conninfo(url)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as watcher:
            with sessions.begin() as holder:
                holder.scalars(select(Card).where(Card.pan == ALICE).with_for_update()).one()
                call = asyncio.create_task(fast.authorize(ready))
                await _until_waiting_on_lock(watcher)
                meanwhile(holder, sessions)
            answer = await call
        await fast.close()
        assert isinstance(answer, Authorized)
        return answer

    try:
        return asyncio.run(run())
    finally:
        service.close()
        engine.dispose()


def test_an_inquiry_behind_a_withdrawal_on_its_card_answers_the_balance_it_left(
    postgres_url: str,
) -> None:
    """The transaction holding the card posts a withdrawal of 100.00 from Alice's checking
    (as a request on another terminal would) and commits: the inquiry that waited answers
    the balance after it, the same that its mini statement's newest line shows."""

    def withdraw(holder: Session, sessions: sessionmaker[Session]) -> None:
        alice = holder.scalars(select(Account).where(Account.number == ALICE_CHECKING)).one()
        cash = holder.scalars(select(Account).where(Account.number == "CASH-ATM00001")).one()
        post(holder, "withdrawal", [(alice, -10_000), (cash, 10_000)], terminal_id="ATM00001")

    answer = _behind_the_card(postgres_url, Requests().balance(), withdraw)
    outcome = answer.outcome
    assert outcome.response_code is RC.APPROVED
    assert [b.cents for b in outcome.balances] == [515_000, 515_000]
    assert outcome.mini_statement[8:21] == "D000000010000"


def test_a_withdrawal_behind_the_card_sees_its_account_frozen_meanwhile(
    postgres_url: str,
) -> None:
    """An operator freezes Alice's checking while the withdrawal waits for the card: it is
    declined 78 when it gets the card, nothing is posted."""

    def freeze(holder: Session, sessions: sessionmaker[Session]) -> None:
        with sessions.begin() as operator:
            controls.freeze_account(operator, OPERATOR, ALICE_CHECKING)

    answer = _behind_the_card(postgres_url, Requests().withdrawal(2_000), freeze)
    assert answer.outcome.response_code is RC.ACCOUNT_BLOCKED
    engine = create_engine_for(postgres_url)
    try:
        with engine.connect() as connection:
            balance = connection.scalar(
                text("SELECT balance_cents FROM accounts WHERE number = :n"),
                {"n": ALICE_CHECKING},
            )
            postings = connection.scalar(
                text("SELECT count(*) FROM postings WHERE stan IS NOT NULL")
            )
        assert (balance, postings) == (525_000, 0)
    finally:
        engine.dispose()
