"""Database plumbing: engines for SQLite (embedded default) and PostgreSQL, and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "POOLER_HINT",
    "create_engine_for",
    "head_revision",
    "is_sqlite",
    "migrate",
    "prepared_statement_refused",
    "schema_problem",
    "session_factory",
    "sqlite_file",
]

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The absolute path of an SQLite database file (None for PostgreSQL or in-memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().absolute()


def create_engine_for(url: str, *, prepared_statements: bool = True, **kwargs: Any) -> Engine:
    """An engine with the settings we rely on: SQLite gets foreign keys, WAL and a busy
    timeout (several threads write); PostgreSQL gets pre-ping so a restarted server is noticed.
    ``prepared_statements`` False (PostgreSQL): psycopg never prepares a statement on the
    server (by default it does once a connection has run one five times), for a pooler in
    transaction mode that cannot carry them between server connections."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    if not prepared_statements:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "prepare_threshold": None}
    return create_engine(url, pool_pre_ping=True, **kwargs)


# SQLSTATEs of a prepared statement the server does not have, or has already: what a pooler in
# transaction mode that does not carry prepared statements between server connections causes.
_PREPARED_STATEMENT_STATES = frozenset({"26000", "42P05"})
POOLER_HINT = (
    "the database refused a prepared statement (no such statement, or one already there): "
    "behind a connection pooler in transaction mode that does not carry prepared statements "
    "(PgBouncer before 1.21, or max_prepared_statements = 0), set "
    "DATABASE_PREPARED_STATEMENTS=false"
)


def prepared_statement_refused(exc: BaseException | None) -> bool:
    """Whether ``exc`` (psycopg's, or SQLAlchemy's around it) is the server refusing a
    prepared statement it does not have or already has."""
    seen: set[int] = set()
    current = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None) in _PREPARED_STATEMENT_STATES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (``alembic upgrade``)."""
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration this code knows (what ``atm db upgrade`` brings a database to)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the migrations directory has no head"
    return head


def schema_problem(connection: Connection, head: str | None = None) -> str | None:
    """Why the schema behind ``connection`` cannot serve this code (None when it is at the
    newest migration): not migrated, behind, or at a revision this code does not know."""
    head = head or head_revision()
    # Read alembic's table directly (MigrationContext would log two INFO lines per call,
    # and /ready calls this often).
    current: str | None = None
    if inspect(connection).has_table("alembic_version"):
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        current = str(versions[0][0]) if len(versions) == 1 else None
    if current == head:
        return None
    if current is None:
        return "is not migrated"
    known = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        known.get_revision(current)
    except CommandError:
        return f"is at revision {current}, which this code does not know (newer code?)"
    return f"is at revision {current}, behind the newest ({head})"
