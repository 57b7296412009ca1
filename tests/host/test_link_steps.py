"""The link server's step hook (``host.link.server.StepHook``; ``atm.scenario.hostcrash``
kills the host at a step with it): a card request is told ``received`` before anything is
posted and ``posted`` once its money has moved, and every answer ``sent`` once written."""

from __future__ import annotations

import asyncio

from host.app import Host
from protocol.messages import Message
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal


async def test_a_withdrawal_is_received_posted_then_sent(host_config):
    seen: list[tuple[str, str, str, int]] = []
    answered = asyncio.Event()
    host: Host | None = None

    def step(name: str, message: Message) -> None:
        assert host is not None
        # The hook runs on the event loop, between the steps: the balance as it stands.
        seen.append((name, message["t"], message.get("39", ""), host.balance(ALICE_CHECKING)))
        if message["t"] == "0210":
            answered.set()

    host = Host(host_config, steps=step)
    await asyncio.to_thread(host.upgrade_and_seed)
    await host.start("127.0.0.1", 0)
    try:
        before = host.balance(ALICE_CHECKING)
        async with TestTerminal(host.server.port) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
            assert (await terminal.client.request(terminal.withdrawal(2_000)))["39"] == "00"
            # The terminal may read the answer before the server's write returns to it.
            await asyncio.wait_for(answered.wait(), 10)
    finally:
        await host.close()
    assert seen == [
        ("sent", "0810", "00", before),  # the sign-on's answer
        ("received", "0200", "", before),
        ("posted", "0200", "", before - 2_000),
        ("sent", "0210", "00", before - 2_000),
    ]
