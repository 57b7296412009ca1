"""Migration 0012 (an operator's password change due) goes down a step and up again on both
databases, keeping the operators; an operator who existed before it has no change due."""

import datetime as dt

from alembic import command
from sqlalchemy import inspect, text

from host.admin.operators import create_operator
from host.db import alembic_config, create_engine_for, migrate, session_factory


def _columns(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return {str(c["name"]) for c in inspect(engine).get_columns("operators")}
    finally:
        engine.dispose()


def test_operator_password_reset_down_and_up(seeded_url):
    engine = create_engine_for(seeded_url)
    try:
        with session_factory(engine).begin() as session:
            create_operator(
                session, "ada", "admin", "admin-password-3", rounds=4, now=dt.datetime.now(dt.UTC)
            )
    finally:
        engine.dispose()
    assert "password_change_required" in _columns(seeded_url)
    command.downgrade(alembic_config(seeded_url), "0012_operator_password_reset-1")
    assert "password_change_required" not in _columns(seeded_url)
    migrate(seeded_url)
    assert "password_change_required" in _columns(seeded_url)
    engine = create_engine_for(seeded_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT name, password_change_required FROM operators")
            ).all()
    finally:
        engine.dispose()
    assert [(name, bool(due)) for name, due in rows] == [("ada", False)]
