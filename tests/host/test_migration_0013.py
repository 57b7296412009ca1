"""Migration 0013: ``atm_authorize`` (the PostgreSQL hot path) plans with sequential scans
off, so a plan cached while the tables were small cannot scan ``postings`` once per entry of
the day as the ledger grows (``make bench``'s rows by request index show the difference); it
goes down a step and up again. A no-op on SQLite."""

from alembic import command
from sqlalchemy import text

from host.db import alembic_config, create_engine_for, is_sqlite, migrate


def _settings(url: str) -> list[str] | None:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            settings = connection.scalar(
                text("SELECT proconfig FROM pg_proc WHERE proname = 'atm_authorize'")
            )
            return None if settings is None else [str(s) for s in settings]
    finally:
        engine.dispose()


def test_the_hot_path_function_plans_with_index_scans(seeded_url):
    if is_sqlite(seeded_url):
        # SQLite has no functions: the migration changes nothing and goes down and up.
        command.downgrade(alembic_config(seeded_url), "0013_authorize_index_scans-1")
        migrate(seeded_url)
        return
    assert _settings(seeded_url) == ["enable_seqscan=off"]
    command.downgrade(alembic_config(seeded_url), "0013_authorize_index_scans-1")
    assert _settings(seeded_url) is None
    migrate(seeded_url)
    assert _settings(seeded_url) == ["enable_seqscan=off"]
