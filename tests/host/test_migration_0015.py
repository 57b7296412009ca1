"""Migration 0015: the day's use of the limits as a counter table (``daily_usage``). Going
down drops it (and on PostgreSQL puts 0014's ``atm_authorize``, which sums the entries,
back); coming up again fills it from the entries as the postings had kept it, on both
databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from host.bank.ledger import check_ledger
from host.db import alembic_config, create_engine_for, is_sqlite, migrate
from host.link.reversals import ReversalService
from protocol.messages import AccountType, TransactionType
from protocol.response_codes import ResponseCode as RC
from tests.host.conftest import ServiceRig, reversal_advice


def _state(url: str) -> tuple[list[str] | None, str | None]:
    """The counters as text rows (None: no table), and on PostgreSQL the function's body."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            rows = None
            if inspect(connection).has_table("daily_usage"):
                rows = [
                    f"{account} {kind} {day} {cents}"
                    for account, kind, day, cents in connection.execute(
                        text(
                            "SELECT account_id, kind, day, used_cents FROM daily_usage"
                            " ORDER BY account_id, kind, day"
                        )
                    )
                ]
            if is_sqlite(url):
                return rows, None
            body = connection.scalar(
                text("SELECT prosrc FROM pg_proc WHERE proname = 'atm_authorize'")
            )
            return rows, str(body)
    finally:
        engine.dispose()


def test_the_counter_goes_down_and_comes_back_from_the_entries(
    seeded_url: str, rig: ServiceRig
) -> None:
    service, requests = rig.service, rig.requests
    first = requests.withdrawal(30_000)
    assert service.authorize(first).response_code is RC.APPROVED
    transfer = requests.make(
        TransactionType.TRANSFER,
        amount=70_000,
        from_account=AccountType.CHECKING,
        to_account=AccountType.SAVINGS,
    )
    assert service.authorize(transfer).response_code is RC.APPROVED
    rig.clock.advance(24 * 3600)
    assert service.authorize(requests.withdrawal(12_000)).response_code is RC.APPROVED
    # Today: yesterday's withdrawal reversed in part, its transfer in full.
    reversals = ReversalService(service._sessions, rig.clock)
    for original, stan, dispensed in ((first, "900001", 10_000), (transfer, "900002", 0)):
        advice = reversal_advice(original, stan, "1128130000", dispensed_cents=dispensed)
        assert reversals.handle(advice).status == "applied"
    kept, body = _state(seeded_url)
    assert kept is not None and len(kept) == 3
    assert body is None or "daily_usage" in body

    command.downgrade(alembic_config(seeded_url), "0015_daily_usage_counter-1")
    rows, body = _state(seeded_url)
    assert rows is None
    assert body is None or ("daily_usage" not in body and "LEFT JOIN postings o" in body)

    migrate(seeded_url)
    rows, body = _state(seeded_url)
    assert rows == kept
    assert body is None or "daily_usage" in body
    with service._sessions() as session:
        assert check_ledger(session) == []
