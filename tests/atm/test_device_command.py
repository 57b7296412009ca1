"""``atm device`` as a real process against a real host: a script run prints no spurious
CancelledError; a script that meets an unexpected screen fails at once, naming both screens;
Ctrl-C ends an interactive ATM at once, cleanly (SHUTDOWN journaled, exit 130)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.app import Host
from host.config import HostConfig


@pytest.fixture
async def host_port(sqlite_url: str, tmp_path: Path) -> AsyncIterator[int]:
    config = HostConfig.from_env(
        {"DATABASE_URL": sqlite_url, "BCRYPT_ROUNDS": "4", "ENVIRONMENT": "testing"}
    )
    host = Host(config)
    port = await host.start("127.0.0.1", 0)
    yield port
    await host.close()


async def device(port: int, state: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "device", "--port", str(port), "--state-dir", str(state),
        *args, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process) -> str:
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return out.decode()


async def test_a_script_run_prints_no_cancelled_error(host_port: int, tmp_path: Path) -> None:
    link_log = tmp_path / "link.log"
    process = await device(
        host_port, tmp_path, "--script", "withdraw-alice", "--link-log", str(link_log)
    )
    out = await finish(process)
    assert process.returncode == 0, out
    assert "== run 1: done" in out
    assert "CancelledError" not in out and "Traceback" not in out and "ERROR" not in out
    # --link-log FILE: the messages went to the file, the script's steps alone on stdout.
    assert "ATM -> HOST" not in out and "[customer takes the cash]" in out
    logged = link_log.read_text()
    assert "-- ATM -> HOST  MTI 0200" in logged
    assert "DE 39 Response Code                00 (Approved)" in logged


async def test_an_unexpected_screen_fails_the_script_at_once(
    host_port: int, tmp_path: Path
) -> None:
    # Three wrong PINs lock Bob's card; his balance script then meets the card being
    # returned and the welcome screen where it expects his balance.
    locking = await device(host_port, tmp_path, "--script", "wrong-pin-3")
    out = await finish(locking)
    assert locking.returncode == 0, out
    process = await device(host_port, tmp_path, "--script", "balance-bob", "--timeout", "120")
    out = await finish(process)
    assert process.returncode == 1, out
    assert "!! run 1 failed: got screen 'welcome' while waiting for 'balance'" in out
    assert "still waiting" not in out  # not the timeout: at once
    assert "Traceback" not in out


async def read_until(stream: asyncio.StreamReader, text: str) -> str:
    seen = ""
    while text not in seen:
        line = await asyncio.wait_for(stream.readline(), 60)
        assert line, f"output ended before {text!r}:\n{seen}"
        seen += line.decode()
    return seen


async def test_ctrl_c_ends_an_interactive_atm_at_once(host_port: int, tmp_path: Path) -> None:
    process = await device(host_port, tmp_path)
    assert process.stdin is not None and process.stdout is not None
    await read_until(process.stdout, "Please insert your card")
    process.stdin.write(b"insert alice\n")
    await process.stdin.drain()
    await read_until(process.stdout, "Please enter your PIN")
    # No Enter follows: stdin stays open, as at a terminal. Ctrl-C alone must end it.
    process.send_signal(signal.SIGINT)
    out = await finish(process)
    assert process.returncode == 130, out
    assert "atm device: stopped (Ctrl-C) in state pin_entry" in out
    assert "Traceback" not in out and "CancelledError" not in out
    journal = (tmp_path / "journal-ATM00001.log").read_text().splitlines()
    assert "SHUTDOWN" in journal[-1]
