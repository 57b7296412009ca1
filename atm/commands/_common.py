"""Helpers shared by the host-side subcommands: loading configuration with one clear line per
problem, and opening the host database with one clear line when it cannot serve. Exit codes
and ``CommandFailed`` live in ``atm.errors`` (host-free, for the device commands too).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from atm.database import database_error, display_url
from atm.errors import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, CommandFailed
from host.config import HostConfig
from host.db import create_engine_for, schema_problem, sqlite_file
from host.errors import ConfigError

__all__ = [
    "EXIT_FAILED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandFailed",
    "database_location",
    "load_host_config",
    "open_host_database",
]

#: What to run when the database does not exist or is behind the code.
MIGRATE_HINT = "run `atm db upgrade && atm db seed` (or start with `atm host --migrate --seed`)"


def load_host_config(overrides: Mapping[str, str | None] | None = None) -> HostConfig | None:
    """Read ``HostConfig`` from the environment plus CLI overrides; on problems print each on
    its own line to stderr and return None (the caller exits 2)."""
    env = dict(os.environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            env[key] = value
    try:
        return HostConfig.from_env(env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"atm: config: {problem}", file=sys.stderr)
        return None


def database_location(url: str) -> str:
    """Where the database is, for the start-up line: the absolute path of an SQLite file,
    or the URL with its password masked."""
    path = sqlite_file(url)
    return f"SQLite file {path}" if path is not None else display_url(url)


def open_host_database(config: HostConfig, command: str, *, check_schema: bool = True) -> Engine:
    """An engine on an existing database whose schema is at the newest migration; otherwise
    ``CommandFailed`` (exit 3) saying what is wrong and what to run. Never creates a file."""
    path = sqlite_file(config.database_url)
    if path is not None and not path.exists():
        raise CommandFailed(
            f"{command}: no database at {path}: {MIGRATE_HINT}, or point DATABASE_URL "
            "(--database-url) at an existing one",
            EXIT_UNAVAILABLE,
        )
    engine = create_engine_for(
        config.database_url, prepared_statements=config.database_prepared_statements
    )
    try:
        with engine.connect() as connection:
            problem = schema_problem(connection) if check_schema else None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CommandFailed(
            f"{command}: {database_error(exc, config.database_url)}", EXIT_UNAVAILABLE
        ) from exc
    if problem is not None:
        engine.dispose()
        raise CommandFailed(
            f"{command}: the database ({database_location(config.database_url)}) {problem}: "
            f"{MIGRATE_HINT}",
            EXIT_UNAVAILABLE,
        )
    return engine
