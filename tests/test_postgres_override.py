"""``ATM_TEST_POSTGRES_URL`` (tests/conftest.py): the PostgreSQL tests run on an existing
server instead of a cluster of their own, as CI's PostgreSQL service-container job runs them.

The existing server here is a cluster this test starts itself (``start_postgres``), with a role
that may only create databases. Real pytest runs in subprocesses are pointed at it; the
server's own statement log shows the fixtures created and dropped their databases there, and
afterwards nothing of theirs is left.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from host.db import create_engine_for
from tests.conftest import POSTGRES_URL_VARIABLE, PostgresServer, start_postgres

ROOT = Path(__file__).resolve().parents[1]
ROLE = "atm_ci"
ROLE_PW_TEXT = "ci-role-Zq7%never-printed"  # trust auth ignores it; it must still stay unprinted


@pytest.fixture(scope="module")
def existing_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    server.admin(
        f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{ROLE_PW_TEXT}'",
        "ALTER SYSTEM SET log_statement = 'ddl'",
        "ALTER SYSTEM SET log_line_prefix = '%m [%p] %u@%d '",
        "SELECT pg_reload_conf()",
    )
    yield server
    server.remove()


def admin_url(server: PostgresServer) -> str:
    secret = ROLE_PW_TEXT.replace("%", "%25")
    return f"postgresql+psycopg://{ROLE}:{secret}@/postgres?host={server.base}"


def databases(server: PostgresServer) -> set[str]:
    engine = create_engine_for(server.url("postgres"))
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT datname FROM pg_database")))
    finally:
        engine.dispose()


def run_pytest(override: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, POSTGRES_URL_VARIABLE: override, "CI": "true"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_host_tests_run_on_the_given_server(existing_server: PostgresServer) -> None:
    before = databases(existing_server)
    log_start = existing_server.log.stat().st_size
    done = run_pytest(
        admin_url(existing_server),
        "tests/host/test_ledger.py",
        "tests/host/test_locks.py",
        "-k",
        "postgresql or locks",
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed[1]) >= 5, out
    assert "skipped" not in out and "deselected" in out  # the SQLite half was left out

    log = existing_server.log.read_text()[log_start:]
    created = re.findall(rf"\] {ROLE}@postgres LOG:  statement: CREATE DATABASE (\w+)", log)
    assert set(created) == set(re.findall(r"CREATE DATABASE (\w+)", log))  # all by the role
    template = [name for name in created if name.endswith("_template")]
    assert len(template) == 1, log
    prefix = template[0].removesuffix("_template")
    assert re.fullmatch(r"atm_t\d+_[0-9a-f]{6}", prefix)
    copies = [name for name in created if name.startswith(prefix + "_test_")]
    assert len(copies) >= 5  # one per test, from the template
    for name in [*template, *copies]:
        assert f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" in log
    assert databases(existing_server) == before  # nothing left behind, nothing else touched
    assert ROLE_PW_TEXT not in out and "%25" not in out


def test_an_unreachable_server_fails_instead_of_skipping() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    url = (
        f"postgresql+psycopg://{ROLE}:{ROLE_PW_TEXT.replace('%', '%25')}@127.0.0.1:{dead}/postgres"
    )
    done = run_pytest(url + "?connect_timeout=5", "tests/host/test_locks.py")
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert f"{POSTGRES_URL_VARIABLE}: cannot reach" in out
    assert f"{ROLE}:***@127.0.0.1:{dead}/postgres" in out
    assert ROLE_PW_TEXT not in out and ROLE_PW_TEXT.replace("%", "%25") not in out
    assert "skipped" not in out


def test_a_url_that_is_not_postgresql_fails(tmp_path: Path) -> None:
    done = run_pytest(f"sqlite:///{tmp_path / 'x.db'}", "tests/host/test_locks.py")
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert f"{POSTGRES_URL_VARIABLE} must be a postgresql+psycopg:// URL" in out
