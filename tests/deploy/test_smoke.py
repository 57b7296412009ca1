"""scripts/smoke_iso.py and scripts/smoke_test.sh against a real host on a real TCP socket
(SQLite, migrated and seeded), the way they run against a deployed one.

The ops API (GET /health, /ready) belongs to the HOST issue and is not on this branch yet, so
the shell-script test serves those two routes from a minimal aiohttp stand-in next to the real
link server; everything ISO-8583 is the real host.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from host.app import Host
from host.config import HostConfig
from scripts.smoke_iso import TerminalKeys, balance_inquiry, main, terminal_keys

from .conftest import ROOT

ALICE_CHECKING_CENTS = 525_000


@pytest.fixture
async def link_port(host_config: HostConfig) -> AsyncIterator[int]:
    host = Host(host_config)
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    yield port
    await host.close()


@pytest.fixture
async def ops_url() -> AsyncIterator[str]:
    """Stand-in for the HOST issue's ops API: the two unauthenticated routes only."""

    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health", ok)
    app.router.add_get("/ready", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_balance_inquiry_is_approved_with_the_seed_balance(link_port: int) -> None:
    result = await balance_inquiry("127.0.0.1", link_port, timeout=10)
    assert result.signed_on
    assert result.response_code == "00"
    assert result.balance_cents == ALICE_CHECKING_CENTS
    assert result.ok
    assert result.masked_pan != "4000001234567899" and result.masked_pan.endswith("7899")


async def test_wrong_pin_is_reported_as_a_failure(link_port: int) -> None:
    result = await balance_inquiry("127.0.0.1", link_port, pin="9999", timeout=10)
    assert result.signed_on
    assert result.response_code == "55"
    assert not result.ok


async def test_no_host_is_reported_as_no_sign_on() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await balance_inquiry("127.0.0.1", port, timeout=2)
    assert not result.signed_on and not result.ok


def test_terminal_keys_come_from_the_hosts_variables() -> None:
    env = {
        "TERMINAL_MASTER_KEYS": "ATM00001=" + "11" * 16 + ", ATM00010=" + "22" * 16,
        "TERMINAL_PIN_KEY": "33" * 16,
    }
    keys = terminal_keys("ATM00010", env)
    assert keys == TerminalKeys("22" * 16, "33" * 16)
    assert "22" not in repr(keys)
    assert terminal_keys("ATM00005", {}) == TerminalKeys(None, None)


def test_bad_terminal_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "127.0.0.1", "--terminal-id", "TOO-LONG-ID"]) == 2
    assert "bad option" in capsys.readouterr().err


async def _run_smoke(*args: str, tries: str = "3") -> tuple[int, str]:
    env = dict(os.environ, PYTHON=sys.executable, SMOKE_HTTP_TRIES=tries)
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "scripts" / "smoke_test.sh"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_smoke_script_passes_against_a_running_host(link_port: int, ops_url: str) -> None:
    code, out = await _run_smoke(ops_url, f"127.0.0.1:{link_port}")
    assert code == 0, out
    assert "ok   GET /health -> 200" in out
    assert "ok   GET /ready -> 200" in out
    assert "response 00, available balance 5,250.00" in out
    assert "smoke: all checks passed" in out


async def test_smoke_script_fails_when_the_ops_api_is_down(link_port: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    code, out = await _run_smoke(f"http://127.0.0.1:{dead}", f"127.0.0.1:{link_port}", tries="1")
    assert code == 1, out
    assert "FAIL GET /health" in out
    assert "ok   ISO-8583 balance inquiry" in out  # the link is checked independently
    assert "2 check(s) failed" in out


async def test_smoke_script_rejects_bad_usage() -> None:
    code, out = await _run_smoke("not-a-url")
    assert code == 2
    assert "usage" in out
