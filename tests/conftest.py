"""Shared fixtures: host configurations, and seeded databases on SQLite and on a real
PostgreSQL server.

By default the PostgreSQL server is the machine's own (``initdb``/``pg_ctl`` from PATH,
/usr/local/bin or /usr/lib/postgresql/*/bin), started once per test session in a temporary
directory, listening on a unix socket only. PostgreSQL refuses to run as root, so as root it
runs as the ``postgres`` user (``runuser``). Each test gets a fresh database copied from a
migrated and seeded template (``CREATE DATABASE ... TEMPLATE``), which takes milliseconds.

``ATM_TEST_POSTGRES_URL`` points the suite at an existing server instead (CI's PostgreSQL
service container, for one): an admin URL such as
``postgresql+psycopg://atm:PASSWORD@127.0.0.1:5432/postgres``, whose role may create databases
(``CREATEDB`` or superuser) on PostgreSQL 15 or newer. The fixtures then create their template
and per-test databases there, under names unique to the test session, and drop them all at
the end; nothing else on the server is touched. A server that cannot be reached or a URL that
is not PostgreSQL's is a test failure, never a skip. ``tests/host/test_database_down.py``
still starts a cluster of its own (it stops its server), so it needs the binaries either way.

Without PostgreSQL binaries (and without the override) the PostgreSQL half of the suite is
skipped on a developer's machine, and fails loudly under CI (``CI=true``): CI must never pass
without it.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from host.bank.seed import seed
from host.config import HostConfig
from host.db import create_engine_for, migrate, session_factory
from tests.screen_fit import screens_fit as screens_fit  # the fixture, for every test package

TEST_ENV = {"BCRYPT_ROUNDS": "4", "ENVIRONMENT": "testing"}
POSTGRES_URL_VARIABLE = "ATM_TEST_POSTGRES_URL"
_counter = itertools.count(1)


@pytest.fixture
def host_config(tmp_path: Path) -> HostConfig:
    """A host configuration on a fresh SQLite file, with a cheap bcrypt cost for speed."""
    return HostConfig.from_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'host.db'}",
            "BCRYPT_ROUNDS": "4",
            "ENVIRONMENT": "testing",
        }
    )


def seed_database(url: str) -> None:
    migrate(url)
    engine = create_engine_for(url)
    try:
        with session_factory(engine).begin() as session:
            seed(session, pin_pepper=HostConfig(database_url=url).pin_pepper, bcrypt_rounds=4)
    finally:
        engine.dispose()


# -- PostgreSQL ----------------------------------------------------------------------------
def _pg_bin_dir() -> Path | None:
    candidates: list[Path] = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).parent)
    candidates.append(Path("/usr/local/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


class PostgresDatabases:
    """Where the fixtures create and drop their databases: ``url(name)`` and ``admin(sql)``."""

    #: Prefix of every database the fixtures create on this server.
    prefix = "atm"
    #: The database the admin statements (CREATE/DROP DATABASE) run in.
    admin_database = "postgres"

    def url(self, database: str) -> str:
        raise NotImplementedError

    def admin(self, *statements: str) -> None:
        engine = create_engine_for(self.url(self.admin_database), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()


class PostgresServer(PostgresDatabases):
    """A throw-away PostgreSQL cluster in a temporary directory, on a unix socket."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="atm-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.base, user="postgres")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL {what} failed:\n{result.stdout}{result.stderr}{log}")

    def init(self) -> None:
        self._check(
            self._run(
                "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                "-E", "UTF8",
            ),
            "initdb",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-k {self.base} -c listen_addresses= -F -c max_connections=200"
        self._check(
            self._run(
                "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                "-t", "60", "start",
            ),
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.base}"


class ExternalPostgres(PostgresDatabases):
    """An existing server named by ``ATM_TEST_POSTGRES_URL`` (an admin URL). The fixtures'
    databases there carry a prefix unique to this test session; ``remove`` drops them all."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url
        self.admin_database = admin_url.database or "postgres"
        self.prefix = f"atm_t{os.getpid()}_{secrets.token_hex(3)}"

    def __repr__(self) -> str:  # the URL may carry a password
        return f"ExternalPostgres({self.admin_url.render_as_string(hide_password=True)})"

    def url(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def databases(self) -> list[str]:
        """This session's databases still on the server."""
        engine = create_engine_for(self.url(self.admin_database))
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"),
                    {"prefix": self.prefix + "_"},
                )
                return sorted(row[0] for row in rows)
        finally:
            engine.dispose()

    def remove(self) -> None:
        self.admin(*(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in self.databases()))


def external_postgres(raw: str) -> ExternalPostgres:
    """The server ``ATM_TEST_POSTGRES_URL`` names, checked reachable; a loud failure otherwise
    (the override says PostgreSQL tests are wanted, so they may not skip)."""
    try:
        url = make_url(raw)
    except ArgumentError:
        pytest.fail(f"{POSTGRES_URL_VARIABLE} is not a database URL", pytrace=False)
    if url.get_backend_name() != "postgresql":
        pytest.fail(
            f"{POSTGRES_URL_VARIABLE} must be a postgresql+psycopg:// URL, not "
            f"{url.get_backend_name()!r}",
            pytrace=False,
        )
    server = ExternalPostgres(url.set(drivername="postgresql+psycopg"))
    try:
        server.admin("SELECT 1")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip()
        pytest.fail(f"{POSTGRES_URL_VARIABLE}: cannot reach {server!r}: {reason}", pytrace=False)
    return server


def start_postgres() -> PostgresServer:
    """A new, started cluster, or a skip (developer machine without PostgreSQL) or a loud
    failure (CI)."""
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but no PostgreSQL (initdb/pg_ctl) is installed", pytrace=False)
        pytest.skip("PostgreSQL (initdb/pg_ctl) is not installed on this machine")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
    except Exception as exc:
        server.remove()
        pytest.fail(f"PostgreSQL could not start: {exc}", pytrace=False)
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresDatabases]:
    """The server the PostgreSQL tests use: ``ATM_TEST_POSTGRES_URL``'s, or a cluster of
    this session's own."""
    raw = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    server: PostgresServer | ExternalPostgres = external_postgres(raw) if raw else start_postgres()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresDatabases) -> str:
    """A migrated and seeded database to copy; returns its name."""
    name = f"{postgres_server.prefix}_template"
    postgres_server.admin(f"CREATE DATABASE {name}")
    seed_database(postgres_server.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    seed_database(f"sqlite:///{path}")
    return path


def _fresh_sqlite(template: Path, directory: Path) -> str:
    target = directory / f"host-{next(_counter)}.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated and seeded SQLite database."""
    return _fresh_sqlite(sqlite_template, tmp_path)


@pytest.fixture
def postgres_url(postgres_server: PostgresDatabases, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated and seeded PostgreSQL database."""
    name = f"{postgres_server.prefix}_test_{os.getpid()}_{next(_counter)}"
    postgres_server.admin(f"CREATE DATABASE {name} TEMPLATE {postgres_template} STRATEGY FILE_COPY")
    yield postgres_server.url(name)
    postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated and seeded database: the test runs once on SQLite and once on
    PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def seeded_config(seeded_url: str, tmp_path: Path) -> HostConfig:
    """A test configuration on ``seeded_url`` (both backends)."""
    return HostConfig.from_env(
        {
            **TEST_ENV,
            "DATABASE_URL": seeded_url,
            "STATEMENT_OUTPUT_DIR": str(tmp_path / "statements"),
            "OPS_API_TOKEN": "test-ops-token-0123456789",
        }
    )
