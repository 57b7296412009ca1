"""Every ordinary mistake of the first hour ends in one line naming the problem and the fix,
the documented exit code (2 bad usage or configuration, 1 a check failed, 3 something
unreachable or unavailable; atm/errors.py), no traceback, and nothing left behind: each case
runs the real ``atm`` command in a process of its own, from an empty working directory."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.app import Host
from host.config import HostConfig


def free_port() -> int:
    with socket.socket() as probe:  # free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


class Atm:
    """``python -m atm`` from an empty directory, with its data directory under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.data = tmp_path / "data"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ATM_DATA_DIR": str(self.data),
            "ENVIRONMENT": "testing",
            "BCRYPT_ROUNDS": "4",
        }

    async def run(self, *args: str, **env: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "atm", *args, cwd=self.cwd, env={**self.env, **env},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode() + err.decode()

    async def mistake(self, args: list[str], code: int, words: str, **env: str) -> str:
        """Run; assert exactly one line of output, containing ``words``, the exit code, no
        traceback, and nothing created in the working or data directory."""
        got, output = await self.run(*args, **env)
        assert "Traceback" not in output, output
        lines = output.splitlines()
        assert len(lines) == 1, output
        assert lines[0].startswith("atm"), output
        assert words in lines[0], output
        assert got == code, output
        assert list(self.cwd.iterdir()) == [], "left behind in the working directory"
        assert not self.data.exists(), "left behind: the default data directory"
        return lines[0]


@pytest.fixture
def atm(tmp_path: Path) -> Atm:
    return Atm(tmp_path)


async def test_host_link_port_in_use(atm: Atm, sqlite_url: str, occupied_port: int) -> None:
    line = await atm.mistake(
        ["host", "--port", str(occupied_port), "--no-ops", "--database-url", sqlite_url],
        3,
        f"cannot listen on 127.0.0.1:{occupied_port}: the port is in use",
    )
    assert "--port / LINK_PORT" in line


async def test_host_ops_port_in_use(atm: Atm, sqlite_url: str, occupied_port: int) -> None:
    line = await atm.mistake(
        ["host", "--port", "0", "--ops-port", str(occupied_port), "--database-url", sqlite_url],
        3,
        "the port is in use",
    )
    assert "OPS_PORT" in line


async def test_host_bad_listen_address(atm: Atm, sqlite_url: str) -> None:
    await atm.mistake(
        ["host", "--listen", "256.1.1.1", "--port", "0", "--no-ops", "--database-url", sqlite_url],
        2,
        "'256.1.1.1' is not an address of this machine",
    )


@pytest.mark.parametrize("command", [["host"], ["host", "check-ledger"], ["db", "upgrade"]])
async def test_garbage_database_url(atm: Atm, command: list[str]) -> None:
    await atm.mistake(
        [*command, "--database-url", "garbage"], 2, "DATABASE_URL: not a database URL"
    )


@pytest.mark.parametrize("command", [["host"], ["host", "check-ledger"], ["db", "upgrade"]])
async def test_unreachable_postgresql(atm: Atm, command: list[str]) -> None:
    url = f"postgresql+psycopg://atm@127.0.0.1:{free_port()}/atm?connect_timeout=5"
    await atm.mistake([*command, "--database-url", url], 3, "Connection refused")


async def test_check_ledger_on_a_database_that_does_not_exist(atm: Atm, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    line = await atm.mistake(
        ["host", "check-ledger", "--database-url", f"sqlite:///{missing}"], 3, "no database at"
    )
    assert "atm db upgrade" in line
    assert not missing.exists()  # not created empty, as it once was


async def test_check_ledger_with_the_default_database_missing(atm: Atm) -> None:
    await atm.mistake(["host", "check-ledger"], 3, f"no database at {atm.data / 'atm-host.db'}")


@pytest.mark.parametrize("command", ["demo", "device"])
async def test_unknown_script_name(atm: Atm, command: str) -> None:
    await atm.mistake([command, "--script", "withdraw-bob"], 2, "unknown script 'withdraw-bob'")


async def test_device_with_no_host(atm: Atm) -> None:
    port = free_port()
    line = await atm.mistake(
        ["device", "--port", str(port), "--script", "withdraw-alice"],
        3,
        f"cannot reach the host at 127.0.0.1:{port} (Connection refused)",
    )
    assert "atm host" in line and "--wait-for-host" in line


async def test_device_with_a_wrong_master_key(atm: Atm, seeded_config: HostConfig) -> None:
    host = Host(seeded_config)
    port = await host.start("127.0.0.1", 0)
    try:
        wrong = {"TERMINAL_MASTER_KEY": "0F" * 16}
        line = await atm.mistake(
            ["device", "--port", str(port), "--script", "withdraw-alice"],
            2,
            "closed the connection at sign-on: the terminal master key (TERMINAL_MASTER_KEY)",
            **wrong,
        )
        assert "TERMINAL_MASTER_KEYS" in line
        await atm.mistake(
            ["device", "--port", str(port), "--key-scheme", "A"], 2, "key scheme A (--key-scheme)"
        )
        await atm.mistake(
            ["device", "--port", str(port), "--terminal-id", "ATM00099"],
            2,
            "terminal ATM00099 is not on file",
        )
    finally:
        await host.close()
