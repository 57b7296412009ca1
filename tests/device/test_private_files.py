"""Secrets at rest on the terminal: the journal and the SAF file are created 0600 and refused
when others can read them; the master key may come from a 0600 file, never a readable one."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
import sys
from pathlib import Path

import pytest

from atm.cli import main
from atm.scripts import ALICE_CHECKING
from device.errors import JournalError
from device.journal import Journal
from device.saf import SafError, SafQueue
from host.app import Host
from host.link.config import LinkConfig
from protocol.messages import Mti

TMK = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
ROOT = Path(__file__).resolve().parents[2]


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_and_saf_are_created_0600(tmp_path):
    journal = Journal(tmp_path / "journal.log", "ATM00001")
    journal.write("STARTUP")
    journal.close()
    saf = SafQueue(tmp_path / "saf.jsonl")
    original = {
        "t": Mti.FINANCIAL_REQUEST,
        "3": "012000",
        "4": "000000002000",
        "7": "1130050000",
        "11": "000001",
        "41": "ATM00001",
    }
    saf.add(original, 0, "timeout", "1130050000")
    assert _mode(tmp_path / "journal.log") == 0o600
    assert _mode(tmp_path / "saf.jsonl") == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_journal_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "journal.log"
    path.write_text("")
    path.chmod(mode)
    with pytest.raises(JournalError, match="accessible by group or others"):
        Journal(path, "ATM00001")


def test_a_saf_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "saf.jsonl"
    path.write_text("")
    path.chmod(0o644)
    with pytest.raises(SafError, match=f"chmod 600 {path}"):
        SafQueue(path)


def test_atm_device_stops_on_a_readable_journal_with_one_line(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    journal = state / "journal-ATM00001.log"
    journal.write_text("")
    journal.chmod(0o644)
    code = main(["device", "--state-dir", str(state), "--script", "withdraw-alice"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"atm device: journal {journal} is accessible by group or others")
    assert len(err.strip().splitlines()) == 1


def test_atm_device_refuses_a_readable_master_key_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TERMINAL_MASTER_KEY", raising=False)
    key = tmp_path / "tmk"
    key.write_text(TMK + "\n")
    key.chmod(0o644)
    code = main(["device", "--master-key-file", str(key), "--script", "withdraw-alice"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        f"atm device: master key file {key} is accessible by group or others (mode 0644); "
        f"refusing it: chmod 600 {key}\n"
    )
    assert TMK not in err


async def test_atm_device_signs_on_with_the_master_key_from_a_private_file(host_config, tmp_path):
    key = tmp_path / "tmk"
    key.write_text(TMK + "\n")
    key.chmod(0o600)
    link = LinkConfig(master_keys={"ATM00004": bytes.fromhex(TMK)})
    host = Host(dataclasses.replace(host_config, link=link))
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    env = {k: v for k, v in os.environ.items() if k != "TERMINAL_MASTER_KEY"}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "atm.cli", "device", "--port", str(port),
            "--terminal-id", "ATM00004", "--state-dir", str(tmp_path / "dev"),
            "--master-key-file", str(key), "--script", "withdraw-alice", "--timeout", "20",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        after = host.balance(ALICE_CHECKING)
    finally:
        await host.close()
    assert proc.returncode == 0, out.decode()[-3000:]
    assert after == 525_000 - 10_000
    assert TMK not in out.decode()
    assert _mode(tmp_path / "dev" / "journal-ATM00004.log") == 0o600
