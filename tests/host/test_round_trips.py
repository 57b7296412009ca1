"""Database round trips per authorization over the real link (issue 16): a withdrawal and a
balance inquiry in an open card session cost a bounded number of statements and one pool
checkout on SQLite (counted with SQLAlchemy's engine events on the running host); on PostgreSQL
they take the hot path (host.bank.fastpath): no ORM statement at all, one round trip (one call
of ``atm_authorize``, autocommit) for each. The inquiry's record is complete after that one
call: ``atm_authorize`` formats the mini statement itself (migration 0014) and stores it with
the balances, as a repeat of the inquiry would be answered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select

from host.bank.models import LinkRequest
from host.config import HostConfig
from tests.host.link_helpers import TestTerminal, start_host


class _Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.checkouts = 0

    def statement(self, _conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        self.statements.append(" ".join(text.split())[:150])

    def checkout(self, *_args: Any) -> None:
        self.checkouts += 1


async def test_an_authorization_in_an_open_session_takes_few_round_trips(
    seeded_config: HostConfig,
) -> None:
    host = await start_host(seeded_config)
    counter = _Counter()
    try:
        async with TestTerminal(host.server.port) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            # The card session opens here (bcrypt once); what follows needs no PIN check.
            assert (await terminal.client.request(terminal.balance_inquiry()))["39"] == "00"
            event.listen(host.engine, "before_cursor_execute", counter.statement)
            event.listen(host.engine, "checkout", counter.checkout)
            fast_before = host.fast.round_trips if host.fast is not None else 0
            withdrawal = await terminal.client.request(terminal.withdrawal(2_000))
            assert withdrawal["39"] == "00"
            withdrawal_statements, withdrawal_checkouts = counter.statements, counter.checkouts
            fast_withdrawal = (host.fast.round_trips if host.fast is not None else 0) - fast_before
            counter.statements, counter.checkouts = [], 0
            inquiry = await terminal.client.request(terminal.balance_inquiry())
            assert inquiry["39"] == "00"
            assert inquiry["62"] and inquiry["54"]
            fast_inquiry = (
                (host.fast.round_trips if host.fast is not None else 0)
                - fast_before
                - fast_withdrawal
            )
    finally:
        await host.close()

    if host.fast is not None:  # PostgreSQL: the hot path, no ORM, no worker thread
        assert (withdrawal_statements, withdrawal_checkouts) == ([], 0)
        assert (counter.statements, counter.checkouts) == ([], 0)
        assert (fast_withdrawal, fast_inquiry) == (1, 1)
        with host.sessions() as session:
            stored = session.scalars(
                select(LinkRequest.outcome).where(LinkRequest.stan == inquiry["11"])
            ).one()
        assert stored is not None
        assert stored["mini_statement"] == inquiry["62"]
        return

    # 12 on PostgreSQL before the bank controls (SQLite one more), then one read of the
    # operators' switches (maintenance, terminal in service) and the request's audit row,
    # and the day's use of the limit kept in its counter (migration 0015).
    assert len(withdrawal_statements) <= 16, withdrawal_statements
    assert withdrawal_checkouts <= 2
    assert len(counter.statements) <= 10, counter.statements
    assert counter.checkouts == 1
