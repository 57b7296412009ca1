"""Operators' switches over the real link with a plain test terminal, on SQLite and
PostgreSQL: maintenance and out-of-service answers to echo, sign-on and card requests, the
host's own 0800/901 (MAC'd under the TAK), a forced key change answered 88, reversals still
taken (and audited) whatever the switches say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from host.bank import controls
from host.bank.audit import Actor, list_audit
from host.config import HostConfig
from protocol.mac import verify_signed
from protocol.messages import encode
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal, start_host

OPERATOR = Actor("olga", "operator", "cli")


@pytest.fixture
async def terminal(seeded_config: HostConfig) -> AsyncIterator[TestTerminal]:
    host = await start_host(seeded_config)
    await host.server.stop_switch_poller()  # the tests push when they mean to
    async with TestTerminal(host.server.port) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        terminal.host = host  # type: ignore[attr-defined]
        yield terminal
    await host.close()


def operate(terminal: TestTerminal, fn: object, *args: object) -> None:
    with terminal.host.sessions.begin() as session:  # type: ignore[attr-defined]
        fn(session, OPERATOR, *args)  # type: ignore[operator]


async def echo(terminal: TestTerminal) -> str:
    message = terminal.header("0800")
    message["70"] = "301"
    return str((await terminal.request(message))["39"])


async def test_maintenance_declines_everything_but_reversals(terminal: TestTerminal) -> None:
    original = terminal.withdrawal(10_000)
    assert (await terminal.request(original))["39"] == "00"
    operate(terminal, controls.set_maintenance, True)
    assert await echo(terminal) == "90"
    assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "90"
    assert (await terminal.request(terminal.reversal(original)))["39"] == "00"
    assert terminal.host.balance(ALICE_CHECKING) == 525_000  # type: ignore[attr-defined]
    assert (await terminal.sign_on())["39"] == "90"
    operate(terminal, controls.set_maintenance, False)
    assert (await terminal.sign_on())["39"] == "00"
    with terminal.host.sessions() as session:  # type: ignore[attr-defined]
        (reversal,) = list_audit(session, action="reversal")
        codes = [r.after["code"] for r in list_audit(session, action="txn.") if r.after]
    assert reversal.after is not None and reversal.after["status"] == "applied"
    assert reversal.after["reversed_cents"] == 10_000 and reversal.actor == "ATM00002"
    assert codes == ["00", "90"]


async def test_out_of_service_is_pushed_once_with_a_mac(terminal: TestTerminal) -> None:
    operate(terminal, controls.terminal_out_of_service, "ATM00002")
    server = terminal.host.server  # type: ignore[attr-defined]
    assert await server.push_switches() == 1
    assert await server.push_switches() == 0  # told once per connection
    pushed = await asyncio.wait_for(terminal.from_host.get(), 10)
    assert (pushed["t"], pushed["70"], pushed["48"], pushed["41"]) == (
        "0800",
        "901",
        "89",
        "ATM00002",
    )
    assert terminal.keys is not None
    # The terminal's codec verified it under the TAK; so does a fresh check of the bytes.
    verify_signed(encode(pushed), pushed, terminal.codec.scheme, terminal.keys.tak)
    assert await echo(terminal) == "89"
    assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "89"
    operate(terminal, controls.terminal_in_service, "ATM00002")
    assert await echo(terminal) == "00"
    assert await server.push_switches() == 0


async def test_forced_key_change_is_asked_on_the_next_echo(terminal: TestTerminal) -> None:
    operate(terminal, controls.force_key_change, "ATM00002")
    assert await echo(terminal) == "88"
    assert (await terminal.sign_on("161"))["39"] == "00"
    assert await echo(terminal) == "00"
    with terminal.host.sessions() as session:  # type: ignore[attr-defined]
        (view,) = [t for t in controls.list_terminals(session) if t.terminal_id == "ATM00002"]
    assert not view.key_change_due and view.last_message == "0800/301 echo"
