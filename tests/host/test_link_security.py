"""Sign-on with key exchange, MAC enforcement, key change, sign-off and per-terminal schemes,
against the real host over TCP."""

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from host.bank.models import LinkRequest
from host.link.config import DEVELOPMENT_TMK, LinkConfig
from host.link.models import TerminalKeys
from protocol.errors import LinkError
from protocol.framing import encode_frame
from protocol.mac import encode_signed
from protocol.security import KeyScheme
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal, start_host

AES_TERMINAL = "ATM00009"
OTHER_TMK = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")


@pytest.fixture
async def host(host_config):
    config = LinkConfig(schemes={AES_TERMINAL: KeyScheme.AES}, master_keys={"ATM00008": OTHER_TMK})
    host = await start_host(host_config, config)
    yield host
    await host.close()


async def _closed(terminal: TestTerminal) -> bool:
    """True when the server closed the connection (the client's read loop ended)."""
    task = terminal.client._read_task
    assert task is not None
    await asyncio.wait_for(asyncio.shield(task), 10)
    return not terminal.client.connected


async def test_sign_on_delivers_keys_stored_wrapped(host):
    async with TestTerminal(host.server.port) as terminal:
        response = await terminal.sign_on()
    assert response["39"] == "00"
    assert terminal.keys is not None and terminal.keys.scheme is KeyScheme.TDES
    with host.sessions() as session:
        row = session.scalars(select(TerminalKeys)).one()
    assert row.terminal_id == "ATM00002" and row.key_version == 1
    assert terminal.keys.tak.hex() not in row.tak_wrapped.lower()
    assert terminal.keys.tpk.hex() not in row.tpk_wrapped.lower()


async def test_withdrawal_with_tdes_keys(host):
    async with TestTerminal(host.server.port) as terminal:
        await terminal.sign_on()
        response = await terminal.request(terminal.withdrawal(10_000))
    assert response["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 515_000


async def test_aes_terminal_uses_pin_format_4_and_cmac(host):
    async with TestTerminal(host.server.port, AES_TERMINAL, KeyScheme.AES) as terminal:
        response = await terminal.sign_on()
        # TR-31 (the default): version D (AES key derivation), PIN key P0, AES, encrypt only.
        assert response["48"].startswith("D0176P0AE00N")
        request = terminal.withdrawal(2_000)
        assert len(request["52"]) == 32
        assert (await terminal.request(request))["39"] == "00"
        wrong = terminal.withdrawal(2_000, pin="9999")
        assert (await terminal.request(wrong))["39"] == "55"
    assert host.balance(ALICE_CHECKING) == 523_000


async def test_scheme_other_than_configured_is_refused(host):
    async with TestTerminal(host.server.port, AES_TERMINAL, KeyScheme.TDES) as terminal:
        response = await terminal.sign_on()
    assert response["39"] == "12" and "48" not in response


async def test_configured_master_key_replaces_the_development_one(host, caplog):
    async with TestTerminal(host.server.port, "ATM00008", tmk=OTHER_TMK) as terminal:
        assert (await terminal.sign_on())["39"] == "00"
    async with TestTerminal(host.server.port, "ATM00008", tmk=DEVELOPMENT_TMK) as terminal:
        with pytest.raises(LinkError):
            await terminal.sign_on()
        assert await _closed(terminal)
    assert "MAC does not verify" in caplog.text


async def test_bad_mac_is_never_processed(host, caplog):
    caplog.set_level(logging.WARNING, "host.security")
    async with TestTerminal(host.server.port) as terminal:
        await terminal.sign_on()
        assert terminal.keys is not None
        request = terminal.withdrawal(10_000)
        payload = bytearray(encode_signed(request, KeyScheme.TDES, terminal.keys.tak))
        payload[-1] = ord("0") if payload[-1] != ord("0") else ord("1")
        assert terminal.client._writer is not None
        terminal.client._writer.write(encode_frame(bytes(payload)))
        assert await _closed(terminal)
    security = [r for r in caplog.records if r.name == "host.security"]
    assert len(security) == 1
    assert "MAC does not verify" in security[0].getMessage()
    assert "4000001234567899" not in caplog.text
    assert host.balance(ALICE_CHECKING) == 525_000
    with host.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LinkRequest)) == 0


async def test_message_under_the_sign_on_key_is_not_accepted_as_a_financial(host):
    async with TestTerminal(host.server.port) as terminal:
        await terminal.sign_on()
        terminal.codec.set_mac_key(DEVELOPMENT_TMK)  # wrong key for everything but sign-on
        with pytest.raises(LinkError):
            await terminal.request(terminal.withdrawal(10_000))
    assert host.balance(ALICE_CHECKING) == 525_000


async def test_unknown_terminal_cannot_sign_on(host):
    async with TestTerminal(host.server.port, "ATM99999") as terminal:
        response = await terminal.sign_on()
    assert response["39"] == "57"


async def test_key_change_retires_the_old_mac_key(host):
    port = host.server.port
    async with TestTerminal(port) as terminal:
        await terminal.sign_on()
        old = terminal.keys
        assert (await terminal.sign_on(code="161"))["39"] == "00"
        assert terminal.keys != old
        echo = terminal.header("0800")
        echo["70"] = "301"
        assert (await terminal.request(echo))["39"] == "00"
    async with TestTerminal(port) as stale:
        assert old is not None
        stale.codec.set_mac_key(old.tak)
        with pytest.raises(LinkError):
            await stale.request(echo | {"11": "123456"})


async def test_sign_off_revokes_the_keys(host):
    async with TestTerminal(host.server.port) as terminal:
        await terminal.sign_on()
        off = terminal.header("0800")
        off["70"] = "002"
        assert (await terminal.request(off))["39"] == "00"
        with pytest.raises(LinkError):
            await terminal.request(terminal.withdrawal(1_000))


async def test_a_response_with_a_bad_mac_is_not_acted_upon(host, caplog):
    """The terminal side: a response whose MAC fails closes the link (LinkClient)."""
    async with TestTerminal(host.server.port) as terminal:
        await terminal.sign_on()
        assert terminal.keys is not None
        terminal.codec.set_mac_key(bytes(16))  # responses now fail verification here
        tak = terminal.keys.tak
        terminal.codec.encode = lambda message: encode_signed(message, KeyScheme.TDES, tak)  # type: ignore[method-assign]
        with pytest.raises(LinkError, match="bad MAC"):
            await terminal.request(terminal.withdrawal(1_000))
    assert "security: message from host" in caplog.text


async def test_production_has_no_development_master_key(host_config, caplog):
    config = LinkConfig(production=True, master_keys={"ATM00008": OTHER_TMK})
    host = await start_host(host_config, config)
    try:
        async with TestTerminal(host.server.port, "ATM00002") as terminal:
            with pytest.raises(LinkError):
                await terminal.sign_on()
            assert await _closed(terminal)
        async with TestTerminal(host.server.port, "ATM00008", tmk=OTHER_TMK) as terminal:
            assert (await terminal.sign_on())["39"] == "00"
    finally:
        await host.close()
    assert "no master key for this terminal" in caplog.text
