"""The real host over TCP, driven by a client written only from docs/protocol.md with plain
pyiso8583 and cryptography: sign-on with keys, withdrawal, partial reversal, balances."""

import ast
import asyncio
from pathlib import Path

import pytest

from host.link.config import LinkConfig
from protocol.keyblock import KeyBlockFormat
from protocol.security import KeyScheme
from tests.host import independent_client
from tests.host.link_helpers import ALICE_CHECKING, start_host

TMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
PAN = "4000001234567899"
TRACK = PAN + "=30121010000000000000"


def test_the_client_imports_nothing_of_ours():
    tree = ast.parse(Path(independent_client.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {
        "__future__",
        "copy",
        "datetime",
        "os",
        "socket",
        "typing",
        "iso8583",
        "cryptography",
    }


def _session(port: int, terminal: str, scheme: str) -> dict[str, int]:
    client = independent_client.Client(port, terminal, scheme, TMK)
    try:
        client.sign_on()
        assert client.echo() == "00"
        before = client.available_balance(PAN, TRACK, "1234")
        original = client.withdraw(PAN, TRACK, "1234", 10_000)
        assert original["39"] == "00"
        assert original["4"] == "000000010000"
        after_withdrawal = client.available_balance(PAN, TRACK, "1234")
        # Only $40.00 of the $100.00 came out: the advice credits back $60.00, once.
        ack = client.reverse(original, 4_000, "4004")
        assert ack["t"] == "0430" and ack["39"] == "00"
        repeat = client.reverse(original, 4_000, "4004")
        assert repeat["39"] == "00"
        after_reversal = client.available_balance(PAN, TRACK, "1234")
        wrong_pin = client.withdraw(PAN, TRACK, "4321", 2_000)["39"]
        return {
            "before": before,
            "after_withdrawal": after_withdrawal,
            "after_reversal": after_reversal,
            "wrong_pin": int(wrong_pin),
        }
    finally:
        client.close()


@pytest.mark.parametrize("scheme", ["T", "A"])
async def test_independent_client_signs_on_withdraws_and_reverses(host_config, scheme):
    terminal = "ATM00006"
    # The independent client is written from docs/protocol.md's legacy layout (section 7.5);
    # its terminal is configured for it, beside the TR-31 default.
    config = LinkConfig(
        schemes={terminal: KeyScheme(scheme)}, key_blocks={terminal: KeyBlockFormat.LEGACY}
    )
    host = await start_host(host_config, config)
    try:
        seen = await asyncio.to_thread(_session, host.server.port, terminal, scheme)
    finally:
        await host.close()
    assert seen == {
        "before": 525_000,
        "after_withdrawal": 515_000,
        "after_reversal": 521_000,
        "wrong_pin": 55,
    }
    assert host.balance(ALICE_CHECKING) == 521_000


async def test_independent_client_with_a_bad_mac_is_disconnected(host_config):
    host = await start_host(host_config, LinkConfig(key_blocks={"ATM00007": KeyBlockFormat.LEGACY}))

    def run() -> str:
        client = independent_client.Client(host.server.port, "ATM00007", "T", TMK)
        try:
            client.sign_on()
            client.tak = bytes(16)  # wrong key: the host must refuse and close
            try:
                client.withdraw(PAN, TRACK, "1234", 10_000)
            except independent_client.LinkRefused as exc:
                return str(exc)
            return "answered"
        finally:
            client.close()

    try:
        outcome = await asyncio.to_thread(run)
    finally:
        await host.close()
    assert outcome == "host closed the connection"
    assert host.balance(ALICE_CHECKING) == 525_000
