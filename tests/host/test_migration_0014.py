"""Migration 0014: ``atm_authorize`` in fewer statements (it formats the mini statement itself)
and two indexes dropped; it goes down a step (0011's function with 0013's setting, both
indexes back) and up again, on both databases (SQLite: the indexes only)."""

from alembic import command
from sqlalchemy import inspect, text

from host.db import alembic_config, create_engine_for, is_sqlite, migrate

_DROPPED = {
    ("entries", "ix_entries_account_id"),
    ("card_sessions", "ix_card_sessions_last_used_at"),
}


def _state(url: str) -> tuple[set[tuple[str, str]], str | None, list[str] | None]:
    """The dropped indexes still there; on PostgreSQL the function's body and settings."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            present = {
                (table, index["name"])
                for table in ("entries", "card_sessions")
                for index in inspector.get_indexes(table)
                if index["name"] is not None
            }
            if is_sqlite(url):
                return present & _DROPPED, None, None
            body, settings = connection.execute(
                text("SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'atm_authorize'")
            ).one()
            return present & _DROPPED, str(body), None if settings is None else list(settings)
    finally:
        engine.dispose()


def test_the_function_and_indexes_go_down_and_up(seeded_url):
    indexes, body, settings = _state(seeded_url)
    assert indexes == set()
    if body is not None:
        assert "string_agg" in body  # DE 62 formatted in SQL
        assert settings == ["enable_seqscan=off"]
    command.downgrade(alembic_config(seeded_url), "0014_authorize_fewer_statements-1")
    indexes, body, settings = _state(seeded_url)
    assert indexes == _DROPPED
    if body is not None:
        assert "string_agg" not in body and "o_mini_amounts" in body
        assert settings == ["enable_seqscan=off"]
    migrate(seeded_url)
    indexes, body, _settings = _state(seeded_url)
    assert indexes == set()
    assert body is None or "string_agg" in body
