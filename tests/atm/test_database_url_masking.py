"""The database password never reaches the output: ``atm db upgrade``, ``atm db seed``,
``atm host`` (its listening line and its logs at DEBUG), ``atm host check-ledger`` and
``atm host worker --once`` run as real processes against a real PostgreSQL with a password in
``DATABASE_URL``; on AWS their stdout and stderr are the CloudWatch log stream.

The test server trusts its unix-socket clients, so it accepts the URL whatever the password
says: what is checked is that the password the commands were given is never printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from atm.database import database_error, display_url

# The test password: "/" and "%" need URL quoting, so every printed form is checked.
HIDDEN = "Zq7-never-printed/wört%42"
FORMS = (HIDDEN, quote(HIDDEN, safe=""), quote(HIDDEN))


def with_password(url: str) -> str:
    return make_url(url).set(password=HIDDEN).render_as_string(hide_password=False)


def assert_no_password(text: str) -> None:
    for form in FORMS:
        assert form not in text, f"the database password ({form!r}) was printed:\n{text}"


def command_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": url,
        "ENVIRONMENT": "testing",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "DEBUG",
        "STATEMENT_OUTPUT_DIR": str(tmp_path / "statements"),
        "OPS_API_TOKEN": "a-token-of-sixteen-chars",
    }


async def run_atm(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "-v", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


def test_display_url_masks_only_the_password() -> None:
    url = f"postgresql+psycopg://atm:{quote(HIDDEN, safe='')}@db.example:5432/atm?sslmode=require"
    shown = display_url(url)
    assert shown == "postgresql+psycopg://atm:***@db.example:5432/atm?sslmode=require"
    assert display_url("sqlite:///var/atm-host.db") == "sqlite:///var/atm-host.db"
    assert display_url("not a url") == "<not a database URL>"


async def test_db_and_host_commands_never_print_the_password(
    postgres_url: str, tmp_path: Path
) -> None:
    url = with_password(postgres_url)
    assert quote(HIDDEN, safe="") in url  # the commands really get it
    env = command_env(url, tmp_path)
    outputs: list[str] = []

    for db_args in (["db", "upgrade"], ["db", "seed"]):
        code, out = await run_atm(env, *db_args)
        assert code == 0, out
        outputs.append(out)
    assert "is at the newest revision" in outputs[0]
    assert "postgresql+psycopg://postgres:***@/" in outputs[0]  # shown, masked

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "-v", "host", "--port", "0", "--ops-port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        link_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        ops_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert link_line.startswith("host listening on 127.0.0.1:"), link_line
        assert "(database postgresql+psycopg://postgres:***@/" in link_line
        ops_port = int(ops_line.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{ops_port}/ready") as reply:
                assert reply.status == 200  # it did connect, with the URL it was given
            headers = {"Authorization": "Bearer a-token-of-sixteen-chars"}
            async with client.get(
                f"http://127.0.0.1:{ops_port}/accounts/1000-0001-0001", headers=headers
            ) as reply:
                assert reply.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        rest_out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    outputs += [link_line, ops_line, rest_out.decode(), err.decode()]
    assert "DEBUG" in err.decode() or "INFO" in err.decode()  # logging was on, and is covered

    for more_args in (["host", "check-ledger"], ["host", "worker", "--once"]):
        code, out = await run_atm(env, *more_args)
        assert code == 0, out
        outputs.append(out)

    for out in outputs:
        assert_no_password(out)


def _dead_port() -> int:
    with socket.socket() as probe:  # free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    """No PostgreSQL needed: the server is absent, which is the case under test."""
    url = (
        f"postgresql+psycopg://atm:{quote(HIDDEN, safe='')}@127.0.0.1:{_dead_port()}/atm"
        "?connect_timeout=5"
    )
    env = command_env(url, tmp_path)
    for args, prefix in (
        (("db", "upgrade"), "atm: db upgrade: database at postgresql+psycopg://atm:***@"),
        (("db", "seed"), "atm: db seed: database at postgresql+psycopg://atm:***@"),
        (("host", "--migrate", "--port", "0", "--no-ops"), "atm host --migrate: database at"),
    ):
        code, out = await run_atm(env, *args)
        assert code == 3, out  # unreachable
        assert_no_password(out)
        assert "Traceback" not in out
        assert any(line.startswith(prefix) for line in out.splitlines()), out


def test_database_error_scrubs_a_password_the_driver_repeats() -> None:
    from sqlalchemy.exc import OperationalError

    url = f"postgresql+psycopg://atm:{quote(HIDDEN, safe='')}@db:5432/atm"
    error = OperationalError("connect", {}, Exception(f"bad password {HIDDEN!s} for atm"))
    line = database_error(error, url)
    assert line == "database at postgresql+psycopg://atm:***@db:5432/atm: bad password *** for atm"
    assert_no_password(line)


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql+psycopg://atm@db/atm"])
def test_urls_without_a_password_are_shown_as_they_are(url: str) -> None:
    assert display_url(url) == url
