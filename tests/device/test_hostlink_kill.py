"""A device process killed with SIGKILL while a reversal waits in its store-and-forward queue
sends that reversal after restart, exactly once (real processes, real host over TCP)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from host.link.models import ReversalAdvice
from tests.host.link_helpers import ALICE_CHECKING, start_host

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("saf_kill_script.py")


async def _spawn(mode: str, port: int, state_dir: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        mode,
        str(port),
        str(state_dir),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )


async def _drain_run(port: int, state_dir: Path) -> list[str]:
    process = await _spawn("drain", port, state_dir)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return out.decode().split()


async def test_reversal_survives_sigkill_and_is_sent_once(host_config, tmp_path):
    received: list[str] = []
    host = await start_host(host_config, tap=lambda d, m: received.append(d + m["t"]))
    port = host.server.port
    try:
        process = await _spawn("queue", port, tmp_path)
        assert process.stdout is not None
        lines = []
        while (
            line := (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        ) != "QUEUED\n":
            assert line, "script ended early"
            lines.append(line.strip())
        assert lines == ["RESPONSE 00"]
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
        assert host.balance(ALICE_CHECKING) == 515_000
        saf_file = tmp_path / "saf-ATM00004.jsonl"
        assert "4000001234567899" not in saf_file.read_text()

        assert await _drain_run(port, tmp_path) == [
            "PENDING",
            "1",
            "ONLINE",
            "True",
            "PENDING",
            "0",
        ]
        assert host.balance(ALICE_CHECKING) == 525_000
        assert await _drain_run(port, tmp_path) == [
            "PENDING",
            "0",
            "ONLINE",
            "True",
            "PENDING",
            "0",
        ]
    finally:
        await host.close()
    assert received.count("recv0420") == 1 and "recv0421" not in received
    with host.sessions() as session:
        advices = session.scalars(select(ReversalAdvice)).all()
    assert [a.status for a in advices] == ["applied"]
    assert host.balance(ALICE_CHECKING) == 525_000
