"""The two key layouts side by side on one host, over the real link: terminals configured for
TR-31 key blocks (the default) and terminals configured for the legacy layout sign on and
withdraw."""

from __future__ import annotations

import pytest

from host.link.config import LinkConfig
from protocol.keyblock import KeyBlockFormat
from protocol.security import KeyScheme
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal, start_host

TERMINALS = [
    ("ATM00002", KeyScheme.TDES, KeyBlockFormat.LEGACY, "T0"),
    ("ATM00005", KeyScheme.TDES, KeyBlockFormat.TR31, "B0120P0TE00N"),
    ("ATM00006", KeyScheme.AES, KeyBlockFormat.TR31, "D0176P0AE00N"),
    ("ATM00007", KeyScheme.AES, KeyBlockFormat.LEGACY, "A4"),
]


@pytest.fixture
async def host(host_config):
    config = LinkConfig(
        schemes={"ATM00006": KeyScheme.AES, "ATM00007": KeyScheme.AES},
        key_blocks={"ATM00002": KeyBlockFormat.LEGACY, "ATM00007": KeyBlockFormat.LEGACY},
    )
    host = await start_host(host_config, config)
    yield host
    await host.close()


async def test_legacy_and_tr31_terminals_side_by_side(host):
    for terminal_id, scheme, fmt, prefix in TERMINALS:
        async with TestTerminal(host.server.port, terminal_id, scheme, key_block=fmt) as terminal:
            response = await terminal.sign_on()
            assert response["39"] == "00", terminal_id
            assert response["48"].startswith(prefix), terminal_id
            assert (await terminal.request(terminal.withdrawal(2_000)))["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 525_000 - 4 * 2_000


def test_key_block_layouts_are_configured_per_terminal():
    config = LinkConfig.from_env({"TERMINAL_KEY_BLOCKS": "ATM00005=tr31, ATM00006=LEGACY"})
    assert config.key_block("ATM00005") is KeyBlockFormat.TR31
    assert config.key_block("ATM00006") is KeyBlockFormat.LEGACY
    assert config.key_block("ATM00001") is KeyBlockFormat.TR31  # the default
    assert LinkConfig().key_block("ATM00001") is KeyBlockFormat.TR31
    with pytest.raises(Exception, match="TERMINAL_KEY_BLOCKS: ATM00005: layout must be"):
        LinkConfig.from_env({"TERMINAL_KEY_BLOCKS": "ATM00005=x9"})
