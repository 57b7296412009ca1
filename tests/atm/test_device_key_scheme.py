"""``atm device --key-scheme A``: a real process running the ATM against the real host over TCP,
the host configured with that terminal on scheme A (TERMINAL_KEY_SCHEMES)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

import pytest

from atm.cli import main
from atm.scripts import ALICE_CHECKING
from host.app import Host
from host.link.config import LinkConfig
from protocol.security import KeyScheme

ROOT = Path(__file__).resolve().parents[2]


def test_bad_key_scheme_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["device", "--key-scheme", "X"])
    assert exit_.value.code == 2
    assert "--key-scheme" in capsys.readouterr().err


async def test_device_command_runs_an_aes_terminal(host_config, tmp_path):
    config = dataclasses.replace(host_config, link=LinkConfig(schemes={"ATM00003": KeyScheme.AES}))
    host = Host(config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    before = host.balance(ALICE_CHECKING)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "atm.cli",
            "device",
            "--port",
            str(port),
            "--terminal-id",
            "ATM00003",
            "--key-scheme",
            "a",
            "--state-dir",
            str(tmp_path / "device"),
            "--script",
            "withdraw-alice",
            "--timeout",
            "30",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        after = host.balance(ALICE_CHECKING)
    finally:
        await host.close()
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "== run 1: done" in text
    assert after == before - 10_000
    journal = (tmp_path / "device" / "journal-ATM00003.log").read_text()
    assert "PIN_ENTERED | format=4" in journal
