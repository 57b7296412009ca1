"""``atm device`` takes its terminal master key from ``TERMINAL_MASTER_KEY``: a real process
signs on to a real host that knows that terminal only by its own (non-development) key."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from atm.cli import main
from atm.scripts import ALICE_CHECKING
from host.app import Host
from host.link.config import LinkConfig

ROOT = Path(__file__).resolve().parents[2]
TMK = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


async def _run_device(port: int, state_dir: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm.cli", "device", "--port", str(port),
        "--terminal-id", "ATM00004", "--state-dir", str(state_dir),
        "--script", "withdraw-alice", "--timeout", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_device_signs_on_with_the_master_key_from_the_environment(host_config, tmp_path):
    link = LinkConfig(master_keys={"ATM00004": bytes.fromhex(TMK)})
    host = Host(dataclasses.replace(host_config, link=link))
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    before = host.balance(ALICE_CHECKING)
    try:
        code, out = await _run_device(port, tmp_path / "dev", {"TERMINAL_MASTER_KEY": TMK})
        after = host.balance(ALICE_CHECKING)
    finally:
        await host.close()
    assert code == 0, out[-3000:]
    assert "== run 1: done" in out
    assert after == before - 10_000
    assert TMK not in out


def test_a_malformed_master_key_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("TERMINAL_MASTER_KEY", "not-hex")
    assert main(["device", "--script", "withdraw-alice"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atm device: ") and "terminal_master_key" in err
    assert len(err.strip().splitlines()) == 1


def test_sim_pin_pad_refuses_a_malformed_master_key(monkeypatch, capsys):
    monkeypatch.setenv("TERMINAL_MASTER_KEY", "ABCD")
    assert main(["sim", "pin-pad", "--key-scheme", "A"]) == 2
    assert capsys.readouterr().err.startswith("atm sim: ")


async def test_sim_pin_pad_runs_an_aes_pad_with_the_key_from_the_environment():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm.cli", "sim", "pin-pad", "--key-scheme", "a", "--tcp", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERMINAL_MASTER_KEY": TMK},
    )  # fmt: skip
    assert proc.stdout is not None
    first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    proc.terminate()
    rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert first.startswith("pin-pad (ZT588-style EPP) on socket://127.0.0.1:")
    assert TMK not in first + rest.decode()
