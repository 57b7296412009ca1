"""HTTPS on the ops API over real sockets: the ops API served with the link's development
certificate, verified by a client that trusts only the development CA; a plain-HTTP client is
refused and the server goes on serving; production refuses plain HTTP unless allowed."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from atm.certs import DevPki, write_dev_pki
from host.app import Host
from host.config import HostConfig, OpsTls
from host.errors import ConfigError
from tests.host.conftest import ALICE_CHECKING

TOKEN = "ops-https-token-0123456789"
PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "Zt4Hq8LmW2xVc7RnK1pBs5JdG9fYe3Tu",
    "PIN_PEPPER": "Pq7Wd2Xk9Lm4Rs8Tv3Yb6Nc1Hf5Gj0Ze",
    "OPS_API_TOKEN": "t" * 32,
    "TERMINAL_MASTER_KEYS": "ATM00001=0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    "LINK_ALLOW_PLAINTEXT": "true",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return write_dev_pki(tmp_path_factory.mktemp("pki"), ["ATM00001"])


@pytest.fixture
async def host(host_config: HostConfig, sqlite_url: str, pki: DevPki) -> AsyncIterator[Host]:
    # The link's certificate reused for the ops API, as the Terraform stack does.
    config = dataclasses.replace(
        host_config,
        database_url=sqlite_url,
        ops_api_token=TOKEN,
        ops_tls=OpsTls(str(pki.host_cert), str(pki.host_key)),
    )
    host = Host(config)
    await host.start_ops("127.0.0.1", 0)
    yield host
    await host.close()


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def test_the_ops_api_serves_https_verified_against_the_ca(host, pki):
    _, writer = await asyncio.open_connection(
        "127.0.0.1", host.ops_port, ssl=_trusting(pki.ca), server_hostname="127.0.0.1"
    )
    assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    writer.close()
    async with aiohttp.ClientSession() as client:
        base = f"https://127.0.0.1:{host.ops_port}"
        async with client.get(f"{base}/health", ssl=_trusting(pki.ca)) as reply:
            assert reply.status == 200
        async with client.get(
            f"{base}/accounts/{ALICE_CHECKING}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            ssl=_trusting(pki.ca),
        ) as reply:
            assert (await reply.json())["balance_cents"] == 525_000
        async with client.get(f"{base}/accounts/{ALICE_CHECKING}", ssl=_trusting(pki.ca)) as reply:
            assert reply.status == 401  # HTTPS does not replace the token


async def test_a_client_that_does_not_trust_the_ca_is_refused(host, tmp_path):
    other = write_dev_pki(tmp_path / "other", [])
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await client.get(f"https://127.0.0.1:{host.ops_port}/health", ssl=_trusting(other.ca))


async def test_plain_http_to_the_https_port_gets_nothing_and_the_server_goes_on(host, pki):
    reader, writer = await asyncio.open_connection("127.0.0.1", host.ops_port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    # Not an HTTP answer: the TLS layer refuses the bytes (an alert at most) and closes.
    answer = await asyncio.wait_for(reader.read(), 10)
    assert not answer.startswith(b"HTTP/")
    writer.close()
    async with aiohttp.ClientSession() as client:
        async with client.get(
            f"https://127.0.0.1:{host.ops_port}/health", ssl=_trusting(pki.ca)
        ) as reply:
            assert reply.status == 200


# -- configuration -------------------------------------------------------------------------


def test_production_refuses_a_plain_http_ops_api_unless_allowed():
    with pytest.raises(ConfigError) as refused:
        HostConfig.from_env(PRODUCTION)
    assert refused.value.problems == [
        "OPS_TLS_CERT: production refuses a plain-HTTP ops API "
        "(set OPS_TLS_CERT and OPS_TLS_KEY, or OPS_ALLOW_PLAINTEXT=true)"
    ]
    assert HostConfig.from_env({**PRODUCTION, "OPS_ALLOW_PLAINTEXT": "true"}).ops_tls is None


def test_production_starts_with_the_ops_certificate_as_files_or_pem_text(pki):
    by_path = HostConfig.from_env(
        {**PRODUCTION, "OPS_TLS_CERT": str(pki.host_cert), "OPS_TLS_KEY": str(pki.host_key)}
    )
    assert by_path.ops_tls is not None
    by_text = HostConfig.from_env(
        {
            **PRODUCTION,
            "OPS_TLS_CERT": pki.host_cert.read_text(),
            "OPS_TLS_KEY": pki.host_key.read_text(),
        }
    )
    assert by_text.ops_tls is not None
    assert "BEGIN" not in repr(by_text)


def test_ops_tls_settings_that_do_not_load_are_named(pki, tmp_path: Path):
    with pytest.raises(ConfigError) as missing:
        HostConfig.from_env(
            {"OPS_TLS_CERT": str(tmp_path / "missing.pem"), "OPS_TLS_KEY": str(pki.host_key)}
        )
    assert missing.value.problems == [
        f"OPS_TLS_CERT: host certificate: no such file: {tmp_path / 'missing.pem'}"
    ]
    with pytest.raises(ConfigError) as lone_key:
        HostConfig.from_env({"OPS_TLS_KEY": str(pki.host_key)})
    assert lone_key.value.problems == ["OPS_TLS_CERT: required with OPS_TLS_KEY"]
    with pytest.raises(ConfigError) as lone_cert:
        HostConfig.from_env({"OPS_TLS_CERT": str(pki.host_cert)})
    assert lone_cert.value.problems == ["OPS_TLS_KEY: required with OPS_TLS_CERT"]
    with pytest.raises(ConfigError) as bad_flag:
        HostConfig.from_env({"OPS_ALLOW_PLAINTEXT": "yes"})
    assert bad_flag.value.problems == ["OPS_ALLOW_PLAINTEXT: true or false"]
