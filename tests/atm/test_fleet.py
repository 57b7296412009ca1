"""``atm fleet``: several real controllers with simulated devices in one process against one
running host, each playing complete card sessions with a PIN; the report counts them and the
host's ledger shows what they did (balance inquiries: nothing moves)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import func, select

from atm.cli import main
from atm.commands.fleet import run_fleet
from device.config import LOCAL_HOSTS
from host.app import Host
from host.bank.models import LinkRequest, Terminal
from host.bank.seed import seed
from host.link.guard import ConnectionGuard, LinkLimits


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


async def test_a_fleet_signs_on_in_waves_the_host_never_refuses(host_config, tmp_path):
    """Five times as many ATMs as the host lets wait unauthenticated, started together: the
    fleet keeps at most that many between start and approved sign-on, so the host refuses
    none (its guard counts every refusal), no ATM has to sign on twice, and every one then
    runs its card session."""
    bound = 3
    limits = LinkLimits(max_unauthenticated=bound)
    host = Host(dataclasses.replace(host_config, link_limits=limits))
    await asyncio.to_thread(host.upgrade_and_seed)
    with host.sessions.begin() as session:
        seed(session, pin_pepper=host_config.pin_pepper, bcrypt_rounds=4, terminals=5 * bound)
    port = await host.start("127.0.0.1", 0)
    peak = 0

    def watch(guard: ConnectionGuard) -> bool:
        nonlocal peak
        peak = max(peak, guard.unauthenticated)
        return False  # watch until cancelled

    # The guard stops counting against its bound once an address has authenticated a
    # message (a known terminal reconnecting), so the host's own view of connections waiting
    # unauthenticated is what shows the pacing, not the refusals alone.
    watcher = asyncio.create_task(host.server.wait_for_guard(watch))
    try:
        report = await run_fleet(
            5 * bound, "127.0.0.1", port, 0.0, "balance-bob", tmp_path / "fleet",
            sessions_each=1, sign_on_concurrency=bound,
        )  # fmt: skip
    finally:
        watcher.cancel()
        await host.close()
    refused = {
        reason: host.metrics.link_connections_closed.labels(reason=reason)._value.get()
        for reason in ("unauthenticated_limit", "connection_limit")
    }
    assert refused == {"unauthenticated_limit": 0, "connection_limit": 0}
    assert peak <= bound
    assert report.sign_on_repeats == 0
    assert report.sign_on_seconds > 0
    assert f"sign-on: all {5 * bound} in " in report.lines()[3]
    with host.sessions() as session:
        answered = session.scalars(
            select(LinkRequest.terminal_id).where(LinkRequest.response_code == "00")
        ).all()
    assert set(answered) == {f"ATM{n:05d}" for n in range(1, 5 * bound + 1)}


async def test_sign_on_concurrency_below_one_is_refused(host_config, tmp_path, capsys):
    with pytest.raises(ValueError, match="sign_on_concurrency must be at least 1"):
        await run_fleet(1, "127.0.0.1", 1, 0.0, "balance-bob", tmp_path, sign_on_concurrency=0)
    args = ["fleet", "--terminals", "1", "--sign-on-concurrency", "0"]
    assert await asyncio.to_thread(main, args) == 2
    assert capsys.readouterr().err == "atm fleet: --sign-on-concurrency is at least 1\n"
