"""TLS on the host link over real sockets: handshake and a withdrawal over mutual TLS, and the
refusals: a host from another CA, a terminal certificate for another terminal, an expired
certificate, a plaintext client. After every refusal the server goes on serving."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest

from atm.certs import Issued, issue, make_ca, write_dev_pki
from host.errors import ConfigError
from host.link.config import LinkConfig, LinkTls
from protocol.errors import LinkError, LinkUnavailable
from protocol.framing import encode_frame
from protocol.tls import client_context
from scripts.smoke_iso import balance_inquiry
from tests.host.link_helpers import ALICE_CHECKING, TestTerminal, start_host

TERMINAL = "ATM00002"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    return write_dev_pki(tmp_path_factory.mktemp("pki"), [TERMINAL, "ATM00003"])


def _tls(pki, terminal: str = TERMINAL):
    return client_context(
        str(pki.ca), str(pki.terminal_cert(terminal)), str(pki.terminal_key(terminal))
    )


@pytest.fixture
async def host(host_config, pki):
    tls = LinkTls(str(pki.host_cert), str(pki.host_key), str(pki.ca))
    host = await start_host(host_config, LinkConfig(tls=tls))
    yield host
    await host.close()


async def _still_serving(host, pki) -> None:
    async with TestTerminal(host.server.port, TERMINAL, tls=_tls(pki)) as terminal:
        assert (await terminal.sign_on())["39"] == "00"


async def _closed(terminal: TestTerminal) -> None:
    task = terminal.client._read_task
    assert task is not None
    await asyncio.wait_for(asyncio.shield(task), 10)
    assert not terminal.client.connected


async def test_withdrawal_over_mutual_tls(host, pki):
    async with TestTerminal(host.server.port, TERMINAL, tls=_tls(pki)) as terminal:
        writer = terminal.client._writer
        assert writer is not None
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        assert (await terminal.sign_on())["39"] == "00"
        response = await terminal.request(terminal.withdrawal(4_000))
    assert response["39"] == "00"
    assert host.balance(ALICE_CHECKING) == 521_000


async def test_the_acceptance_client_works_over_mutual_tls(host, pki):
    result = await balance_inquiry(
        "127.0.0.1", host.server.port, terminal_id=TERMINAL, tls_ca=str(pki.ca),
        tls_cert=str(pki.terminal_cert(TERMINAL)), tls_key=str(pki.terminal_key(TERMINAL)),
    )  # fmt: skip
    assert result.ok and result.balance_cents == 525_000


async def test_a_host_from_another_ca_is_refused(host, pki, tmp_path, caplog):
    other = write_dev_pki(tmp_path / "other", [TERMINAL])
    terminal = TestTerminal(host.server.port, TERMINAL, tls=_tls(other))
    with caplog.at_level(logging.ERROR, "protocol.security"):
        with pytest.raises(LinkUnavailable, match="TLS handshake"):
            await terminal.client.connect()
    assert "security: TLS handshake with host" in caplog.text
    # The host sends its chain up to its CA (built from its client-CA store): not ours.
    assert "self-signed certificate in certificate chain" in caplog.text
    await _still_serving(host, pki)


async def test_a_certificate_for_another_terminal_is_refused(host, pki, caplog):
    # A valid certificate from the right CA, but it names ATM00003 and DE 41 says ATM00002.
    caplog.set_level(logging.WARNING, "host.security")
    async with TestTerminal(host.server.port, TERMINAL, tls=_tls(pki, "ATM00003")) as terminal:
        await terminal.client.send(terminal.header("0800") | {"70": "001", "48": "T"})
        await _closed(terminal)
    lines = [r.getMessage() for r in caplog.records if r.name == "host.security"]
    assert len(lines) == 1
    assert "client certificate is for ATM00003" in lines[0] and "connection closed" in lines[0]
    await _still_serving(host, pki)


async def test_an_expired_terminal_certificate_is_refused(host, pki, tmp_path, caplog):
    ca = Issued(pki.ca.read_bytes(), (pki.directory / "ca-key.pem").read_bytes())
    now = dt.datetime.now(dt.UTC)
    expired = issue(
        ca, TERMINAL, client=True, not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )  # fmt: skip
    cert, key = tmp_path / "expired.pem", tmp_path / "expired-key.pem"
    cert.write_bytes(expired.certificate)
    key.write_bytes(expired.key)
    caplog.set_level(logging.WARNING, "host.security")
    terminal = TestTerminal(
        host.server.port, TERMINAL, tls=client_context(str(pki.ca), str(cert), str(key))
    )
    # TLS 1.3: the client's handshake completes before the host has judged its certificate,
    # so the refusal shows as the host closing the connection.
    try:
        await terminal.client.connect()
    except LinkUnavailable:
        pass
    else:
        with pytest.raises(LinkError):  # the host closed the connection
            await terminal.sign_on()
        await terminal.client.close()
    await _still_serving(host, pki)
    assert "certificate has expired" in caplog.text


async def test_an_expired_host_certificate_is_refused(host_config, tmp_path, caplog):
    ca = make_ca()
    now = dt.datetime.now(dt.UTC)
    leaf = issue(
        ca, "localhost", server_names=["127.0.0.1"], not_before=now - dt.timedelta(days=9),
        not_after=now - dt.timedelta(days=2),
    )  # fmt: skip
    for name, data in (
        ("ca.pem", ca.certificate),
        ("h.pem", leaf.certificate),
        ("k.pem", leaf.key),
    ):
        (tmp_path / name).write_bytes(data)
    tls = LinkTls(str(tmp_path / "h.pem"), str(tmp_path / "k.pem"))
    host = await start_host(host_config, LinkConfig(tls=tls))
    try:
        terminal = TestTerminal(
            host.server.port, TERMINAL, tls=client_context(str(tmp_path / "ca.pem"))
        )
        with caplog.at_level(logging.ERROR, "protocol.security"):
            with pytest.raises(LinkUnavailable):
                await terminal.client.connect()
    finally:
        await host.close()
    assert "certificate has expired" in caplog.text


async def test_a_plaintext_client_is_refused_cleanly(host, pki, caplog):
    caplog.set_level(logging.WARNING, "host.security")
    reader, writer = await asyncio.open_connection("127.0.0.1", host.server.port)
    writer.write(encode_frame(b"0800" + bytes(16)))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing answered
    writer.close()
    assert "security: TLS handshake refused" in caplog.text
    await _still_serving(host, pki)


async def test_a_tls_client_against_a_plaintext_host_fails_to_connect(host_config, pki):
    host = await start_host(host_config, LinkConfig())
    try:
        terminal = TestTerminal(host.server.port, TERMINAL, tls=_tls(pki), timeout=5)
        with pytest.raises(LinkUnavailable):
            await terminal.client.connect()
    finally:
        await host.close()


# -- configuration -------------------------------------------------------------------------


def test_production_refuses_a_plaintext_link_unless_allowed():
    env = {"ENVIRONMENT": "production", "TERMINAL_MASTER_KEYS": "ATM00001=" + "AB" * 16}
    with pytest.raises(ConfigError) as refused:
        LinkConfig.from_env(env)
    assert [p for p in refused.value.problems if p.startswith("LINK_TLS_CERT")] == [
        "LINK_TLS_CERT: production refuses a plaintext link "
        "(set LINK_TLS_CERT and LINK_TLS_KEY, or LINK_ALLOW_PLAINTEXT=true)"
    ]
    assert LinkConfig.from_env({**env, "LINK_ALLOW_PLAINTEXT": "true"}).tls is None


def test_tls_settings_load_from_files_or_pem_text(pki):
    by_path = LinkConfig.from_env(
        {"LINK_TLS_CERT": str(pki.host_cert), "LINK_TLS_KEY": str(pki.host_key)}
    )
    assert by_path.tls is not None and by_path.tls.client_ca is None
    by_text = LinkConfig.from_env(
        {
            "LINK_TLS_CERT": pki.host_cert.read_text(),
            "LINK_TLS_KEY": pki.host_key.read_text(),
            "LINK_TLS_CLIENT_CA": pki.ca.read_text(),
        }
    )
    assert by_text.tls is not None and by_text.tls.client_ca is not None
    assert "BEGIN" not in repr(by_text)


def test_tls_settings_that_do_not_load_are_named(pki, tmp_path: Path):
    with pytest.raises(ConfigError) as refused:
        LinkConfig.from_env(
            {"LINK_TLS_CERT": str(tmp_path / "missing.pem"), "LINK_TLS_KEY": str(pki.host_key)}
        )
    assert refused.value.problems == [
        f"LINK_TLS_CERT: host certificate: no such file: {tmp_path / 'missing.pem'}"
    ]
    with pytest.raises(ConfigError) as mismatched:
        LinkConfig.from_env(
            {"LINK_TLS_CERT": str(pki.host_cert), "LINK_TLS_KEY": str(pki.terminal_key(TERMINAL))}
        )
    assert mismatched.value.problems[0].startswith(
        "LINK_TLS_CERT: host certificate and key do not load"
    )
    with pytest.raises(ConfigError) as lone_key:
        LinkConfig.from_env({"LINK_TLS_KEY": str(pki.host_key)})
    assert lone_key.value.problems == [
        "LINK_TLS_CERT: required with LINK_TLS_KEY / LINK_TLS_CLIENT_CA"
    ]
