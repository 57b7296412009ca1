"""``atm host --workers N`` (issue 16): worker processes share the link port on a real socket,
the supervisor restarts one that dies and stops them all on SIGTERM; the ops API is one port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
from sqlalchemy import select

from host.bank.ledger import check_ledger
from host.bank.models import Account
from host.db import create_engine_for, session_factory
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _withdraw(port: int, terminal_id: str, cents: int) -> str:
    async with TestTerminal(port, terminal_id) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        response = await terminal.client.request(terminal.withdrawal(cents))
        return str(response["39"])


async def test_workers_share_the_port_restart_and_stop(postgres_url, tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": postgres_url,
        "ENVIRONMENT": "testing",
        "BCRYPT_ROUNDS": "4",
        "STATEMENT_OUTPUT_DIR": str(tmp_path),
        "OPS_API_TOKEN": "a-token-of-sixteen-chars",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--workers", "2", "--port", "0", "--ops-port", "0",
        env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None

    async def line() -> str:
        assert process.stdout is not None
        return (await asyncio.wait_for(process.stdout.readline(), 120)).decode()

    try:
        link_line = await line()
        match = re.search(r":(\d+) .*2 worker processes: (\d+) (\d+)\)", link_line)
        assert match is not None, link_line
        port, pids = int(match.group(1)), [int(match.group(2)), int(match.group(3))]
        ops_port = int((await line()).rsplit(":", 1)[1])
        # Several terminals at once; the kernel spreads their connections over the workers.
        codes = await asyncio.gather(*(_withdraw(port, f"ATM0000{n}", 1_000) for n in range(1, 5)))
        assert codes == ["00"] * 4
        os.kill(pids[0], signal.SIGKILL)
        assert re.match(rf"worker 1 \(pid {pids[0]}\) exited with -9; restarting", await line())
        restarted = re.match(r"worker 1 restarted \(pid (\d+)\)", await line())
        assert restarted is not None
        pids.append(int(restarted.group(1)))
        codes = await asyncio.gather(*(_withdraw(port, f"ATM0000{n}", 1_000) for n in range(1, 5)))
        assert codes == ["00"] * 4
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{ops_port}/ready") as reply:
                assert reply.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    assert not any(_alive(pid) for pid in pids)
    engine = create_engine_for(postgres_url)
    try:
        with session_factory(engine)() as session:
            alice = session.scalar(select(Account).where(Account.number == ALICE_CHECKING))
            assert alice is not None and alice.balance_cents == 525_000 - 8 * 1_000
            assert check_ledger(session) == []
    finally:
        engine.dispose()
