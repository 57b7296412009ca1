"""Migration 0007: the daily-limit index covers the columns used_today reads, on both
databases, and goes back down to 0006's index cleanly."""

from alembic import command
from sqlalchemy import inspect

from host.db import alembic_config, create_engine_for, migrate


def _entry_indexes(url: str) -> dict[str, list[str | None]]:
    engine = create_engine_for(url)
    try:
        return {str(i["name"]): i["column_names"] for i in inspect(engine).get_indexes("entries")}
    finally:
        engine.dispose()


def test_daily_limit_index_up_and_down(seeded_url):
    covering = ["account_id", "created_at", "posting_id", "amount_cents"]
    indexes = _entry_indexes(seeded_url)
    assert indexes["ix_entries_account_created_covering"] == covering
    assert "ix_entries_account_created" not in indexes

    command.downgrade(alembic_config(seeded_url), "0006_statement_lease")
    indexes = _entry_indexes(seeded_url)
    assert indexes["ix_entries_account_created"] == ["account_id", "created_at"]
    assert "ix_entries_account_created_covering" not in indexes

    migrate(seeded_url)
    assert _entry_indexes(seeded_url)["ix_entries_account_created_covering"] == covering
