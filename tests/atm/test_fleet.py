"""``atm fleet``: several real controllers with simulated devices in one process against one
running host, each playing complete card sessions with a PIN; the report counts them and the
host's ledger shows what they did (balance inquiries: nothing moves)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from atm.cli import main
from atm.commands.fleet import run_fleet
from device.config import LOCAL_HOSTS
from host.app import Host
from host.bank.models import LinkRequest, Terminal
from host.bank.seed import seed


async def test_a_fleet_runs_card_sessions_against_one_host(host_config, tmp_path):
    host = Host(host_config)
    await asyncio.to_thread(host.upgrade_and_seed)
    with host.sessions.begin() as session:  # two terminals more than the seed's ten
        seed(session, pin_pepper=host_config.pin_pepper, bcrypt_rounds=4, terminals=12)
        assert session.scalar(select(func.count()).select_from(Terminal)) == 12
    port = await host.start("127.0.0.1", 0)
    try:
        report = await run_fleet(
            12, "127.0.0.1", port, 0.0, "balance-bob", tmp_path / "fleet", sessions_each=2
        )
    finally:
        await host.close()
    assert report.terminals == 12
    assert report.sessions >= 24
    # The window opens when every ATM has ended its first session: a terminal may already
    # have answered its second request by then, so at most one request each goes uncounted.
    assert len(report.latencies) >= report.sessions - report.terminals
    assert all(x > 0 for x in report.latencies)
    assert "sessions/s" in report.lines()[0]
    with host.sessions() as session:
        answered = session.scalars(
            select(LinkRequest.terminal_id).where(LinkRequest.response_code == "00")
        ).all()
    assert set(answered) == {f"ATM{n:05d}" for n in range(1, 13)}
    assert host.balance("1000-0002-0001") == 85_075  # the seed's opening balance


async def test_a_fleet_reaches_another_host_only_when_allowed(host_config, tmp_path, capsys):
    """127.0.0.2 is this machine too, but not on the terminals' default allow-list: the
    fleet refuses it with a clear error, and runs against it with --allow-host."""
    host = Host(host_config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.2", 0)
    try:
        args = ["fleet", "--terminals", "2", "--host", "127.0.0.2", "--port", str(port)]
        assert await asyncio.to_thread(main, [*args, "--seconds", "0.1"]) == 2
        assert capsys.readouterr().err == (
            "atm fleet: host '127.0.0.2' is not on the allow-list (localhost, 127.0.0.1, ::1);"
            " allow it deliberately with --allow-host 127.0.0.2\n"
        )
        report = await run_fleet(
            2, "127.0.0.2", port, 0.0, "balance-bob", tmp_path / "fleet", sessions_each=1,
            allowed_hosts=(*LOCAL_HOSTS, "127.0.0.2"),
        )  # fmt: skip
        code = await asyncio.to_thread(
            main, [*args, "--seconds", "0.5", "--allow-host", "127.0.0.2"]
        )
    finally:
        await host.close()
    assert report.sessions >= 2
    assert code == 0
    assert "sessions/s" in capsys.readouterr().out
