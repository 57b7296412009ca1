"""The link server's connection limits over real TCP (host.link.guard, docs/protocol.md section
1): stalled and silent connections are closed, unauthenticated connections and connections in
all are bounded (below the open-file limit), a known terminal keeps a slot, and each close or
refusal is counted and logged at most once per interval. Timeouts are injected small; the tests
wait on the server's own admission/close notifications, never on sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import resource
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from host.app import Host
from host.config import HostConfig
from host.link.guard import FD_HEADROOM, LinkLimits, RateLimitedLog, connection_bound
from tests.host.link_helpers import TestTerminal, start_host

STALLED = 500
ATTACKER = "127.0.0.2"  # the whole 127/8 is loopback on Linux: a second address for the flood


@pytest.fixture(autouse=True)
def enough_descriptors() -> Iterator[None]:
    """Both ends of every test connection live in this process: make room for them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def host_with(config: HostConfig, limits: LinkLimits) -> Host:
    return await start_host(dataclasses.replace(config, link_limits=limits))


async def connect_from(
    address: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))


def closed_count(host: Host, reason: str) -> float:
    return float(host.metrics.link_connections_closed.labels(reason=reason)._value.get())


@pytest.fixture
async def flood_host(host_config: HostConfig) -> AsyncIterator[Host]:
    limits = LinkLimits(
        frame_timeout=2.0, idle_timeout=60.0, max_unauthenticated=STALLED + 50, log_interval=60
    )
    host = await host_with(host_config, limits)
    yield host
    await host.close()


async def test_500_stalled_connections_are_closed_while_a_terminal_is_served(
    flood_host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="host.link")
    port = flood_host.server.port
    async with TestTerminal(port, terminal_id="ATM00003") as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        stalled = []
        for number in range(STALLED):
            reader, writer = await connect_from(ATTACKER, port)
            if number % 2 == 0:  # promise a 256-byte frame and send 10 bytes of it
                writer.write(b"\x01\x00" + b"0800723800")
            stalled.append((reader, writer))  # the other half say nothing at all

        async def until_closed(reader: asyncio.StreamReader) -> bytes:
            return await reader.read()

        closing = asyncio.gather(*(until_closed(reader) for reader, _ in stalled))
        served = 0
        async with asyncio.timeout(60):  # without the limits they would stay open for ever
            while not closing.done():  # a real terminal is answered throughout
                response = await terminal.request(terminal.balance_inquiry())
                assert response["39"] == "00"
                served += 1
        assert await asyncio.wait_for(closing, 60) == [b""] * STALLED
        assert served >= 1
        await flood_host.server.wait_for_guard(lambda g: g.open == 1 and g.unauthenticated == 0)
        # The terminal's own connection is still open and answers.
        assert (await terminal.request(terminal.balance_inquiry()))["39"] == "00"
        for _, writer in stalled:
            writer.close()

    assert closed_count(flood_host, "frame_timeout") == STALLED // 2
    assert closed_count(flood_host, "first_frame_timeout") == STALLED // 2
    lines = [r.getMessage() for r in caplog.records if r.name == "host.link"]
    timeout_lines = [line for line in lines if "in time" in line or "time allowed" in line]
    # One line per reason per interval, however many connections it stood for.
    assert 2 <= len(timeout_lines) <= 4, timeout_lines


async def test_idle_authenticated_connection_is_closed_after_the_idle_timeout(
    host_config: HostConfig,
) -> None:
    host = await host_with(host_config, LinkLimits(frame_timeout=5.0, idle_timeout=0.5))
    try:
        async with TestTerminal(host.server.port) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            await host.server.wait_for_guard(lambda g: g.open == 0)
        assert closed_count(host, "idle_timeout") == 1
    finally:
        await host.close()


async def test_unauthenticated_connections_are_capped_but_a_known_terminal_gets_in(
    host_config: HostConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="host.link")
    limits = LinkLimits(frame_timeout=60.0, max_unauthenticated=5, log_interval=60)
    host = await host_with(host_config, limits)
    port = host.server.port
    try:
        async with TestTerminal(port, terminal_id="ATM00004") as first:
            assert (await first.sign_on())["39"] == "00"  # 127.0.0.1 is now a known address
            held = [await connect_from(ATTACKER, port) for _ in range(5)]
            await host.server.wait_for_guard(lambda g: g.unauthenticated == 5)
            refused = [await connect_from(ATTACKER, port) for _ in range(20)]
            for reader, _ in refused:  # closed at once, long before any timeout
                assert await asyncio.wait_for(reader.read(), 30) == b""
            async with TestTerminal(port, terminal_id="ATM00005") as second:
                assert (await second.sign_on())["39"] == "00"
                assert (await second.request(second.balance_inquiry()))["39"] == "00"
            for _, writer in held + refused:
                writer.close()
        assert closed_count(host, "unauthenticated_limit") == 20
        lines = [
            r.getMessage() for r in caplog.records if "not yet authenticated" in r.getMessage()
        ]
        assert len(lines) == 1, lines
    finally:
        await host.close()


async def test_connections_are_bounded_with_a_slot_kept_for_known_terminals(
    host_config: HostConfig,
) -> None:
    limits = LinkLimits(
        frame_timeout=60.0, max_unauthenticated=100, max_connections=20, reserved_for_known=4
    )
    host = await host_with(host_config, limits)
    port = host.server.port
    try:
        async with TestTerminal(port, terminal_id="ATM00006") as first:
            assert (await first.sign_on())["39"] == "00"
            # 16 general slots: the terminal holds one, the flood gets the other 15.
            held = [await connect_from(ATTACKER, port) for _ in range(15)]
            await host.server.wait_for_guard(lambda g: g.open == 16)
            refused = [await connect_from(ATTACKER, port) for _ in range(10)]
            for reader, _ in refused:
                assert await asyncio.wait_for(reader.read(), 30) == b""
            async with TestTerminal(port, terminal_id="ATM00007") as second:
                assert (await second.sign_on())["39"] == "00"  # a reserved slot
                assert host.server.guard.open == 17
            for _, writer in held + refused:
                writer.close()
        assert closed_count(host, "connection_limit") == 10
    finally:
        await host.close()


async def test_host_at_its_open_file_limit_refuses_cleanly_and_a_known_terminal_signs_on(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``atm host`` as a process with RLIMIT_NOFILE = 256 and 600 connections thrown at it
    at once: it stays below the limit (no "out of system resource" flood), writes a handful of
    refusal lines, and a terminal that signed on before reconnects and signs on again.

    "At once" is made certain rather than left to the machine's speed: the host is stopped
    (SIGSTOP) while the 600 connections complete in the kernel's listen queue, then resumed
    with all of them waiting to be accepted, the worst a loaded machine can do. With
    asyncio's accept burst of 100 this ran out of descriptors at 112 open connections."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": sqlite_url,
        "ENVIRONMENT": "testing",
        "BCRYPT_ROUNDS": "4",
        "STATEMENT_OUTPUT_DIR": str(tmp_path),
        "LINK_FRAME_TIMEOUT_SECONDS": "600",
        "LINK_MAX_UNAUTHENTICATED": "1000",  # so that the file limit is what binds
    }
    admitted = connection_bound(0, 256) - LinkLimits().reserved_for_known

    def low_file_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "host", "--port", "0", "--ops-port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=low_file_limit,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    flood: list[asyncio.StreamWriter] = []
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        port = int(line.split(" (", 1)[0].rsplit(":", 1)[1])
        async with TestTerminal(port, terminal_id="ATM00008") as terminal:
            assert (await terminal.sign_on())["39"] == "00"
        process.send_signal(signal.SIGSTOP)
        try:
            connections = await asyncio.gather(*(connect_from(ATTACKER, port) for _ in range(600)))
        finally:
            process.send_signal(signal.SIGCONT)
        flood = [writer for _, writer in connections]
        # All but the admitted ones are refused: closed at once by the host, not left to a
        # timeout (the admitted ones stay open: their frame timeout is 600 s).
        refused = asyncio.Event()
        closed = 0

        async def read_to_end(reader: asyncio.StreamReader) -> None:
            nonlocal closed
            if await reader.read() == b"":
                closed += 1
                if closed == len(connections) - admitted:
                    refused.set()

        readers = [asyncio.create_task(read_to_end(reader)) for reader, _ in connections]
        await asyncio.wait_for(refused.wait(), 60)
        for task in readers:
            task.cancel()
        async with TestTerminal(port, terminal_id="ATM00008") as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            assert (await terminal.request(terminal.balance_inquiry()))["39"] == "00"
    finally:
        for writer in flood:
            writer.close()
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    log = err.decode()
    assert "out of system resource" not in log
    refusals = [line for line in log.splitlines() if "refused: connection limit" in line]
    assert 1 <= len(refusals) <= 3, refusals
    assert len(log.splitlines()) < 60, log


def test_the_bound_stays_below_the_open_file_limit() -> None:
    assert connection_bound(0, 1024) == 1024 - FD_HEADROOM
    assert connection_bound(5000, 1024) == 1024 - FD_HEADROOM
    assert connection_bound(100, 1024) == 100
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_bound(0) == soft - FD_HEADROOM


def test_rate_limited_log_counts_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.limited"), 10.0, lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.limited"):
        assert limited.warning("k", "refused %s", "a")
        assert not limited.warning("k", "refused %s", "b")
        assert not limited.warning("k", "refused %s", "c")
        now[0] = 10.0
        assert limited.warning("k", "refused %s", "d")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a",
        "refused d (and 2 more since the last such line)",
    ]
