"""``atm device``'s supervisor switch in line mode (issue 12 item 11): a fault is cleared
without a restart. Here the fault is a damaged journal line: the operator switches to
supervisor mode, accepts the line (ENTER) and leaves (F8); the ATM signs on and serves."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device.journal import Journal
from host.app import Host
from host.config import HostConfig
from tests.atm.test_device_master_key import ROOT


async def _expect(stdout: asyncio.StreamReader, text: str) -> str:
    """Read the ATM's output until ``text`` has appeared; what was read."""
    seen = ""
    while text not in seen:
        line = await asyncio.wait_for(stdout.readline(), 30)
        assert line, f"output ended before {text!r}:\n{seen[-2000:]}"
        seen += line.decode()
    return seen


@pytest.fixture
async def host_port(host_config: HostConfig) -> AsyncIterator[int]:
    host = Host(host_config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    try:
        yield port
    finally:
        await host.close()


async def test_supervisor_switch_clears_a_fault_without_restart(host_port: int, tmp_path: Path):
    state_dir = tmp_path / "device"
    journal = Journal(
        state_dir / "journal-ATM00001.log", "ATM00001", lambda: dt.datetime.now(dt.UTC)
    )
    journal.write("STARTUP", state="out_of_service")
    journal.write("SESSION_END", stan="-")
    journal.close()
    path = state_dir / "journal-ATM00001.log"
    path.write_bytes(path.read_bytes().replace(b"out_of_service", b"out_of_sorvice", 1))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm.cli", "device", "--port", str(host_port),
        "--state-dir", str(state_dir),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await _expect(proc.stdout, "(journal line 1 damaged)")
        proc.stdin.write(b"supervisor\n")
        await _expect(proc.stdout, "ENTER accepts")
        proc.stdin.write(b"keys ENTER\n")
        await _expect(proc.stdout, "accepted")
        proc.stdin.write(b"keys F8\n")
        await _expect(proc.stdout, "Please insert your card")
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"| JOURNAL_DAMAGE_ACCEPTED | line=1 |" in path.read_bytes()
