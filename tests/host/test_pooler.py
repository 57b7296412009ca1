"""The host behind a connection pooler in transaction mode: a real PgBouncer (Debian's
``pgbouncer``) between the host and the test cluster, with fewer server connections than the
host opens. With ``DATABASE_PREPARED_STATEMENTS=false`` the host prepares nothing on the
server, so it works through a pooler that cannot carry prepared statements from one server
connection to the next (PgBouncer before 1.21, or 1.21+ with ``max_prepared_statements`` at
0): withdrawals from several terminals at once, pipelined on the hot path, each applied once,
and inquiries answered with the balances they leave. Skipped where PgBouncer is not installed
(a developer's machine); under ``CI=true`` it must be (``.ci/run`` installs it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from host.bank.models import Account, LinkRequest
from host.config import HostConfig
from host.db import POOLER_HINT, create_engine_for, prepared_statement_refused, session_factory
from tests.conftest import TEST_ENV, PostgresDatabases, PostgresServer
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal, start_host

# Server connections PgBouncer keeps to the database: fewer than the host's hot path alone
# opens (2 per worker thread), so calls from one host connection go to different servers.
SERVER_CONNECTIONS = 2


def _pgbouncer() -> str:
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but PgBouncer is not installed (apt: pgbouncer)", pytrace=False)
        pytest.skip("PgBouncer is not installed on this machine")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PgBouncer:
    """PgBouncer in transaction mode on a unix socket of its own, in front of one database of
    the test cluster; run as ``postgres`` when we are root (it refuses to run as root)."""

    def __init__(self, binary: str, server: PostgresServer, database: str) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="atm-pgbouncer-"))
        self.port = _free_port()
        self.database = database
        self.as_root = os.geteuid() == 0
        self.output: list[str] = []
        (self.base / "users.txt").write_text('"postgres" ""\n')
        (self.base / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{database} = host={server.base} dbname={database}\n"
            "[pgbouncer]\n"
            "listen_addr =\n"
            f"unix_socket_dir = {self.base}\n"
            f"listen_port = {self.port}\n"
            "auth_type = trust\n"
            f"auth_file = {self.base / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_CONNECTIONS}\n"
            "max_client_conn = 200\n"
            f"logfile = {self.base / 'pgbouncer.log'}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n"
        )
        if self.as_root:
            for path in (self.base, *self.base.iterdir()):
                shutil.chown(path, user="postgres")
        command = [binary, str(self.base / "pgbouncer.ini")]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(  # nosec B603 (our own arguments)
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def url(self) -> str:
        return f"postgresql+psycopg://postgres@/{self.database}?host={self.base}&port={self.port}"

    def wait_ready(self) -> None:
        """Until PgBouncer says it listens on its socket (its own log line, on stdout; the
        rest of its output is then drained by a thread into ``self.output``)."""
        assert self.process.stdout is not None
        lines: list[str] = []
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            if "listening on unix:" in line:
                break
        else:
            raise RuntimeError(f"PgBouncer exited: {''.join(lines)}")
        self.output = lines
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.output.append(raw.decode(errors="replace"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def pgbouncer(postgres_server: PostgresDatabases, postgres_url: str) -> Iterator[PgBouncer]:
    if not isinstance(postgres_server, PostgresServer):
        pytest.skip("PgBouncer is put in front of the tests' own cluster only")
    binary = _pgbouncer()
    database = make_url(postgres_url).database
    assert database is not None
    bouncer = PgBouncer(binary, postgres_server, database)
    try:
        bouncer.wait_ready()
        yield bouncer
    finally:
        bouncer.stop()


def _config(url: str, tmp_path: Path, prepared: str) -> HostConfig:
    return HostConfig.from_env(
        {
            **TEST_ENV,
            "DATABASE_URL": url,
            "DATABASE_PREPARED_STATEMENTS": prepared,
            "STATEMENT_OUTPUT_DIR": str(tmp_path / "statements"),
        }
    )


def _balance_and_requests(url: str) -> tuple[int, int]:
    engine = create_engine_for(url)
    try:
        with session_factory(engine)() as session:
            balance = session.scalars(
                select(Account.balance_cents).where(Account.number == ALICE_CHECKING)
            ).one()
            approved = session.scalar(
                select(func.count())
                .select_from(LinkRequest)
                .where(LinkRequest.mti_class == "0200", LinkRequest.response_code == "00")
            )
            return balance, approved or 0
    finally:
        engine.dispose()


async def test_withdrawals_through_a_transaction_mode_pooler_are_applied_once(
    pgbouncer: PgBouncer, postgres_url: str, tmp_path: Path
) -> None:
    before, _ = _balance_and_requests(postgres_url)
    host = await start_host(_config(pgbouncer.url(), tmp_path, "false"))
    try:
        assert host.fast is not None  # PostgreSQL: the hot path serves these
        terminals = [TestTerminal(host.server.port, f"ATM{n:05d}") for n in range(1, 5)]
        for terminal in terminals:
            await terminal.__aenter__()
        try:
            for terminal in terminals:
                assert (await terminal.sign_on())["39"] == "00"

            async def three(terminal: TestTerminal) -> list[str]:
                codes = []
                for _ in range(3):
                    answer = await terminal.request(terminal.withdrawal(2_000))
                    codes.append(answer["39"])
                return codes

            # Twelve withdrawals, four at a time, over the pooler's two server connections.
            answers = await asyncio.gather(*(three(t) for t in terminals))
            assert answers == [["00"] * 3] * 4
            inquiry = await terminals[0].request(terminals[0].balance_inquiry())
            assert inquiry["39"] == "00"
        finally:
            for terminal in terminals:
                await terminal.__aexit__(None, None, None)
    finally:
        await host.close()
    after, approved = _balance_and_requests(postgres_url)
    assert before - after == 12 * 2_000
    assert approved == 12
    # DE 54: the ledger balance the last withdrawal left, as the database has it.
    assert f"{after:012d}" in inquiry["54"]


def _error(url: str, *statements: str) -> DBAPIError:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statements} did not fail")


def test_a_refused_prepared_statement_is_told_apart(postgres_url: str) -> None:
    """What a pooler that does not carry prepared statements makes the server answer (no such
    statement; one already there), from psycopg or wrapped by SQLAlchemy, is recognised, so
    the link server can log ``POOLER_HINT`` with it; other errors are not."""
    missing = _error(postgres_url, "EXECUTE atm_not_prepared")
    twice = _error(postgres_url, *["PREPARE atm_twice AS SELECT 1"] * 2)
    other = _error(postgres_url, "SELECT 1/0")
    assert type(missing.orig).__name__ == "InvalidSqlStatementName"
    assert type(twice.orig).__name__ == "DuplicatePreparedStatement"
    for refused in (missing, twice):
        assert prepared_statement_refused(refused)
        assert prepared_statement_refused(refused.orig)
    assert not prepared_statement_refused(other)
    assert not prepared_statement_refused(other.orig)
    assert "DATABASE_PREPARED_STATEMENTS=false" in POOLER_HINT
