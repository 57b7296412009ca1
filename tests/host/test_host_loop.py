"""``atm host --loop``: the host serves the link on uvloop (the default when installed) and on
asyncio's own loop alike; which one runs shows in the process's mapped libraries."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from atm.commands._host_serve import ServeOptions, loop_factory
from tests.conftest import TEST_ENV
from tests.host.link_helpers import TestTerminal


def _uses_uvloop(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return any("uvloop" in line for line in maps.splitlines())


@pytest.mark.parametrize(("loop", "uvloop_loaded"), [("auto", True), ("asyncio", False)])
async def test_atm_host_serves_a_withdrawal_on_either_loop(
    postgres_url: str, tmp_path: Path, loop: str, uvloop_loaded: bool
) -> None:
    env = {
        **TEST_ENV,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": postgres_url,
        "STATEMENT_OUTPUT_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--port", "0", "--no-ops", "--no-worker",
        "--loop", loop, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line.startswith("host listening on 127.0.0.1:"), line
        port = int(line.split()[3].rsplit(":", 1)[1])
        async with TestTerminal(port, "ATM00001", timeout=30) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            answer = await terminal.client.request(terminal.withdrawal(2_000))
            assert answer["39"] == "00"
        assert _uses_uvloop(process.pid) is uvloop_loaded
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def test_the_loop_option_names_the_loop_and_reaches_the_workers() -> None:
    import uvloop

    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("asyncio") is None
    command = ServeOptions(workers=2, loop="asyncio").worker_command("127.0.0.1", 8583)
    assert command[-2:] == ["--loop", "asyncio"]
