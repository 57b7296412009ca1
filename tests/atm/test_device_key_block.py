"""`atm device --key-block tr31` against a host that sends that terminal TR-31 key blocks: the
PIN pad gets its key, the MAC key works, Alice withdraws; a terminal expecting TR-31 refuses a
host that sends the legacy layout (no downgrade). TR-31 is the default on both ends; a terminal
configured for the legacy layout (`--key-block legacy`, host `TERMINAL_KEY_BLOCKS`) still
works beside it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from atm.steps import ALICE_CHECKING
from host.app import Host
from host.link.config import LinkConfig
from protocol.keyblock import KeyBlockFormat

ROOT = Path(__file__).resolve().parents[2]


async def _withdraw(
    host_config,
    tmp_path: Path,
    host_layout: KeyBlockFormat | None,
    device_layout: str | None = "tr31",
) -> tuple[int, str, int]:
    link = LinkConfig(key_blocks={"ATM00004": host_layout} if host_layout else {})
    host = Host(dataclasses.replace(host_config, link=link))
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "atm.cli", "device", "--port", str(port),
            "--terminal-id", "ATM00004", "--state-dir", str(tmp_path / "dev"),
            *(("--key-block", device_layout) if device_layout else ()),
            "--script", "withdraw-alice", "--timeout", "8",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        balance = host.balance(ALICE_CHECKING)
    finally:
        await host.close()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), balance


async def test_device_withdraws_with_tr31_key_blocks(host_config, tmp_path):
    code, out, balance = await _withdraw(host_config, tmp_path, KeyBlockFormat.TR31)
    assert code == 0, out[-3000:]
    assert "== run 1: done" in out
    assert balance == 525_000 - 10_000


async def test_a_tr31_terminal_refuses_the_legacy_layout(host_config, tmp_path):
    code, out, balance = await _withdraw(host_config, tmp_path, KeyBlockFormat.LEGACY)
    assert code == 1
    assert "security: working keys from the host rejected: not a TR-31 key block" in out
    assert balance == 525_000


async def test_tr31_is_the_default_on_both_ends(host_config, tmp_path):
    code, out, balance = await _withdraw(host_config, tmp_path, None, None)
    assert code == 0, out[-3000:]
    assert balance == 525_000 - 10_000


async def test_a_terminal_configured_for_the_legacy_layout_withdraws(host_config, tmp_path):
    code, out, balance = await _withdraw(host_config, tmp_path, KeyBlockFormat.LEGACY, "legacy")
    assert code == 0, out[-3000:]
    assert balance == 525_000 - 10_000
