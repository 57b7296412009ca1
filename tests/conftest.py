"""Shared fixtures: host configurations, and seeded databases on SQLite and on a real
PostgreSQL server.

The PostgreSQL server is the machine's own (``initdb``/``pg_ctl`` from PATH, /usr/local/bin or
/usr/lib/postgresql/*/bin), started once per test session in a temporary directory, listening
on a unix socket only. PostgreSQL refuses to run as root, so as root it runs as the
``postgres`` user (``runuser``). Each test gets a fresh database copied from a migrated and
seeded template (``CREATE DATABASE ... TEMPLATE``), which takes milliseconds.

Without PostgreSQL binaries the PostgreSQL half of the suite is skipped on a developer's
machine, and fails loudly under CI (``CI=true``): CI must never pass without it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from host.config import HostConfig
from host.db import create_engine_for, migrate, session_factory
from host.seed import seed

TEST_ENV = {"BCRYPT_ROUNDS": "4", "ENVIRONMENT": "testing"}
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


class PostgresServer:
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

    def admin(self, *statements: str) -> None:
        engine = create_engine_for(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()


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
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A migrated and seeded database to copy; returns its name."""
    postgres_server.admin("CREATE DATABASE atm_template")
    seed_database(postgres_server.url("atm_template"))
    return "atm_template"


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
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated and seeded PostgreSQL database."""
    name = f"atm_test_{os.getpid()}_{next(_counter)}"
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
