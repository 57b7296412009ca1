"""Helpers shared by subcommands: loading configuration with one clear line per problem, the
documented exit codes, and opening the host database with one clear line when it cannot serve.

Exit codes of every ``atm`` command: 0 success; 1 a check failed (``check-ledger`` found a
problem, a MAC did not verify, a script did not end as expected); 2 bad usage or configuration
(an unknown option or script, a bad address, key or URL); 3 something unreachable or
unavailable (a port in use, a database or host that does not answer, a database that does
not exist or is not migrated); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

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

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

#: What to run when the database does not exist or is behind the code.
MIGRATE_HINT = "run `atm db upgrade && atm db seed` (or start with `atm host --migrate --seed`)"


class CommandFailed(Exception):
    """One line for the user and the exit code; ``atm.cli.main`` prints ``atm: LINE``."""

    def __init__(self, line: str, code: int) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


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
    from atm.commands.db import display_url  # db imports this module

    path = sqlite_file(url)
    return f"SQLite file {path}" if path is not None else display_url(url)


def open_host_database(config: HostConfig, *, check_schema: bool = True) -> Engine:
    """An engine on an existing database whose schema is at the newest migration; otherwise
    ``CommandFailed`` (exit 3) saying what is wrong and what to run. Never creates a file."""
    from atm.commands.db import database_error

    path = sqlite_file(config.database_url)
    if path is not None and not path.exists():
        raise CommandFailed(
            f"no database at {path}: {MIGRATE_HINT}, or point DATABASE_URL (--database-url) "
            "at an existing one",
            EXIT_UNAVAILABLE,
        )
    engine = create_engine_for(config.database_url)
    try:
        with engine.connect() as connection:
            problem = schema_problem(connection) if check_schema else None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CommandFailed(database_error(exc, config.database_url), EXIT_UNAVAILABLE) from exc
    if problem is not None:
        engine.dispose()
        raise CommandFailed(
            f"the database ({database_location(config.database_url)}) {problem}: {MIGRATE_HINT}",
            EXIT_UNAVAILABLE,
        )
    return engine
