"""scripts/smoke_iso.py and scripts/smoke_test.sh against a real ``atm host`` process, the
way they run against a deployed one: the database is SQLite, migrated and seeded by the real
``atm db upgrade`` and ``atm db seed`` (as the migration task does), and the host serves its
ISO-8583 link and its ops API (``/health``, ``/ready``) on free ports of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.smoke_iso import TerminalKeys, balance_inquiry, main, terminal_keys

from .conftest import ROOT

ALICE_CHECKING_CENTS = 525_000
OPS_TOKEN = "smoke-test-ops-token"


def host_env(database: Path, tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return (extra or {}) | {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite:///{database}",
        "ENVIRONMENT": "testing",
        "BCRYPT_ROUNDS": "4",
        "LINK_HOST": "127.0.0.1",
        "OPS_HOST": "127.0.0.1",
        "OPS_API_TOKEN": OPS_TOKEN,
        "STATEMENT_OUTPUT_DIR": str(tmp_path / "statements"),
    }


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database brought up by the real commands, once for the module; each test copies it."""
    directory = tmp_path_factory.mktemp("smoke-db")
    database = directory / "template.db"
    env = host_env(database, directory)
    for args in (["db", "upgrade"], ["db", "seed"]):
        done = subprocess.run(
            [sys.executable, "-m", "atm", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    assert "seed complete" in done.stdout
    return database


@dataclass(frozen=True)
class RunningHost:
    link_port: int
    ops_port: int

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"


async def _line(stream: asyncio.StreamReader, process: asyncio.subprocess.Process) -> str:
    line = (await asyncio.wait_for(stream.readline(), 60)).decode()
    if not line:
        await process.wait()
        raise AssertionError(f"atm host exited with {process.returncode} before listening")
    return line


async def start_atm_host(
    database: Path, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[RunningHost]:
    """``atm host`` as its own process on ``database``, link and ops API on free ports. Its
    log (stderr) goes to a file, so a talkative host never blocks on a full pipe."""
    log = tmp_path / "host.log"
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "atm", "host", "--port", "0", "--ops-port", "0",
            env=host_env(database, tmp_path, extra_env), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=log_file,
        )  # fmt: skip
    assert process.stdout is not None
    try:
        link_line = await _line(process.stdout, process)
        ops_line = await _line(process.stdout, process)
        assert link_line.startswith("host listening on 127.0.0.1:"), link_line
        assert ops_line.startswith("ops API listening on 127.0.0.1:"), ops_line
        link_port = int(link_line.split()[3].rsplit(":", 1)[1])
        ops_port = int(ops_line.rsplit(":", 1)[1])
        yield RunningHost(link_port, ops_port)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, log.read_text()  # a clean stop after SIGTERM


@pytest.fixture
async def atm_host(migrated_database: Path, tmp_path: Path) -> AsyncIterator[RunningHost]:
    database = tmp_path / "host.db"
    shutil.copyfile(migrated_database, database)
    async for running in start_atm_host(database, tmp_path):
        yield running


def free_port() -> int:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_balance_inquiry_is_approved_with_the_seed_balance(atm_host: RunningHost) -> None:
    result = await balance_inquiry("127.0.0.1", atm_host.link_port, timeout=10)
    assert result.signed_on
    assert result.response_code == "00"
    assert result.balance_cents == ALICE_CHECKING_CENTS
    assert result.ok
    assert result.masked_pan != "4000001234567899" and result.masked_pan.endswith("7899")


async def test_wrong_pin_is_reported_as_a_failure(atm_host: RunningHost) -> None:
    result = await balance_inquiry("127.0.0.1", atm_host.link_port, pin="9999", timeout=10)
    assert result.signed_on
    assert result.response_code == "55"
    assert not result.ok


async def test_the_terminals_key_scheme_and_key_block_are_options(
    migrated_database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host that gives ATM00010 AES keys in the legacy layout: the smoke test signs on
    and is approved only when told both, and says what failed otherwise."""
    database = tmp_path / "host.db"
    shutil.copyfile(migrated_database, database)
    extra = {"TERMINAL_KEY_SCHEMES": "ATM00010=A", "TERMINAL_KEY_BLOCKS": "ATM00010=legacy"}
    async for running in start_atm_host(database, tmp_path, extra):
        port = str(running.link_port)
        matching = ["--key-scheme", "a", "--key-block", "LEGACY", "--timeout", "10"]
        code = await asyncio.to_thread(main, ["--host", "127.0.0.1", "--port", port, *matching])
        assert code == 0, capsys.readouterr().err
        assert "ok balance inquiry" in capsys.readouterr().out
        code = await asyncio.to_thread(main, ["--host", "127.0.0.1", "--port", port])
        assert code == 1
        assert "FAIL" in capsys.readouterr().err


def test_an_unknown_key_block_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--host", "127.0.0.1", "--key-block", "tr34"])
    assert exit_.value.code == 2
    assert "invalid choice: 'tr34'" in capsys.readouterr().err


async def test_no_host_is_reported_as_no_sign_on() -> None:
    result = await balance_inquiry("127.0.0.1", free_port(), timeout=2)
    assert not result.signed_on and not result.ok


def test_terminal_keys_come_from_the_hosts_variables() -> None:
    env = {
        "TERMINAL_MASTER_KEYS": "ATM00001=" + "11" * 16 + ", ATM00010=" + "22" * 16,
    }
    keys = terminal_keys("ATM00010", env)
    assert keys == TerminalKeys("22" * 16)
    assert "22" not in repr(keys)
    assert terminal_keys("ATM00005", {}) == TerminalKeys(None)


def test_bad_terminal_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "127.0.0.1", "--terminal-id", "TOO-LONG-ID"]) == 2
    assert "bad option" in capsys.readouterr().err


async def _run_smoke(*args: str, tries: str = "3", **env: str) -> tuple[int, str]:
    environment = dict(os.environ, PYTHON=sys.executable, SMOKE_HTTP_TRIES=tries, **env)
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "scripts" / "smoke_test.sh"),
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_smoke_script_passes_against_a_running_host(atm_host: RunningHost) -> None:
    # As in the deployment guide: only the ops URL; the link is the URL's host on LINK_PORT.
    code, out = await _run_smoke(atm_host.ops_url, LINK_PORT=str(atm_host.link_port))
    assert code == 0, out
    assert "ok   GET /health -> 200" in out
    assert "ok   GET /ready -> 200" in out
    assert "response 00, available balance 5,250.00" in out
    assert f"ok   ISO-8583 balance inquiry at 127.0.0.1:{atm_host.link_port}" in out
    assert "smoke: all checks passed" in out


async def test_smoke_script_takes_the_link_address_as_second_argument(
    atm_host: RunningHost,
) -> None:
    code, out = await _run_smoke(
        atm_host.ops_url + "/", f"127.0.0.1:{atm_host.link_port}", LINK_PORT=str(free_port())
    )
    assert code == 0, out
    assert "smoke: all checks passed" in out


async def test_smoke_script_fails_when_the_ops_api_is_down(atm_host: RunningHost) -> None:
    code, out = await _run_smoke(
        f"http://127.0.0.1:{free_port()}", f"127.0.0.1:{atm_host.link_port}", tries="1"
    )
    assert code == 1, out
    assert "FAIL GET /health" in out
    assert "ok   ISO-8583 balance inquiry" in out  # the link is checked independently
    assert "2 check(s) failed" in out


def test_the_host_refuses_a_database_whose_migration_has_not_run(tmp_path: Path) -> None:
    """An empty database (the migration task did not run): ``atm host`` does not start and
    says what to run, in one line, exit 3; the orchestrator restarts it until the migration
    has run (and the smoke test fails meanwhile: nothing listens)."""
    database = tmp_path / "empty.db"
    database.touch()
    done = subprocess.run(
        [sys.executable, "-m", "atm", "host", "--port", "0", "--ops-port", "0"],
        env=host_env(database, tmp_path), cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"atm host: the database (SQLite file {database}) is not migrated: run `atm db upgrade && "
        "atm db seed` (or start with `atm host --migrate --seed`)"
    ]


async def test_smoke_script_rejects_bad_usage() -> None:
    code, out = await _run_smoke("not-a-url")
    assert code == 2
    assert "usage" in out
