"""Migration 0009 (bank controls) goes down to 0008 and up again on both databases, keeping
the data; on PostgreSQL the audit log's append-only trigger comes and goes with it."""

from alembic import command
from sqlalchemy import inspect

from host.db import alembic_config, create_engine_for, migrate


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return {str(c["name"]) for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_bank_controls_down_and_up(seeded_url):
    assert {"in_service", "tpk_kcv"} <= _columns(seeded_url, "terminals")
    command.downgrade(alembic_config(seeded_url), "0008_deposit_holds")
    assert "pin_change_required" not in _columns(seeded_url, "cards")
    assert "status" not in _columns(seeded_url, "accounts")
    engine = create_engine_for(seeded_url)
    try:
        assert "audit_log" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    migrate(seeded_url)
    assert "active" in _columns(seeded_url, "customers")
    assert "action" in _columns(seeded_url, "audit_log")
