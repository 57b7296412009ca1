"""The client's address behind trusted proxies: the rule on its own (X-Forwarded-For read only
when the TCP peer is a trusted proxy, rightmost untrusted address), OPS_TRUSTED_PROXIES in the
configuration (a clear error for a bad value, a warning for trusting everyone), and the
address the admin API writes to the audit log over a real socket."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from host.config import HostConfig
from host.errors import ConfigError
from host.forwarded import client_address, parse_networks
from tests.conftest import TEST_ENV
from tests.host.admin.conftest import AdminRig, running_admin
from tests.host.conftest import Clock

ALB = parse_networks("10.0.1.0/24, 10.0.2.0/24, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        # No trusted proxy: the header is anyone's word, ignored.
        ("10.0.1.5", ["203.0.113.7"], (), "10.0.1.5"),
        # The peer is not a trusted proxy: ignored too.
        ("198.51.100.9", ["203.0.113.7"], ALB, "198.51.100.9"),
        # Behind the load balancer: the address it saw.
        ("10.0.1.5", ["203.0.113.7"], ALB, "203.0.113.7"),
        # A client that sends its own header: only the rightmost untrusted address counts.
        ("10.0.1.5", ["1.1.1.1, 203.0.113.7"], ALB, "203.0.113.7"),
        ("10.0.1.5", ["1.1.1.1", "203.0.113.7"], ALB, "203.0.113.7"),  # two header lines
        # Two trusted hops (a proxy behind the load balancer), then the client.
        ("10.0.1.5", ["203.0.113.7, 10.0.2.8"], ALB, "203.0.113.7"),
        # Every hop trusted: the leftmost.
        ("10.0.1.5", ["10.0.2.8"], ALB, "10.0.2.8"),
        # Trusted peer but no header: the peer.
        ("10.0.1.5", [], ALB, "10.0.1.5"),
        # Garbage stops the walk at the proxy that passed it on.
        ("10.0.1.5", ["203.0.113.7, not-an-address"], ALB, "10.0.1.5"),
        ("10.0.1.5", ["unknown, 10.0.2.8"], ALB, "10.0.2.8"),
        # IPv6, bracketed, and a dual-stack socket's IPv4-mapped peer.
        ("fd00::5", ["[2001:db8::1]"], ALB, "2001:db8::1"),
        ("::ffff:10.0.1.5", ["203.0.113.7"], ALB, "203.0.113.7"),
        (None, ["203.0.113.7"], ALB, "?"),
    ],
)
def test_the_rightmost_untrusted_address_is_the_client(peer, forwarded, trusted, client):
    assert client_address(peer, forwarded, trusted) == client


def test_trusted_proxies_in_the_configuration():
    assert HostConfig.from_env(TEST_ENV).ops_trusted_proxies == ()
    config = HostConfig.from_env({**TEST_ENV, "OPS_TRUSTED_PROXIES": " 10.0.1.0/24,10.0.2.7 "})
    assert [str(n) for n in config.ops_trusted_proxies] == ["10.0.1.0/24", "10.0.2.7/32"]
    assert config.widened == []
    for bad, why in (
        ("10.0.1.0/33", "'10.0.1.0/33' is not an address or a network in CIDR form"),
        ("10.0.1.5/24", "has host bits set"),
        ("alb.internal", "'alb.internal' is not an address"),
    ):
        with pytest.raises(ConfigError) as info:
            HostConfig.from_env({**TEST_ENV, "OPS_TRUSTED_PROXIES": bad})
        [line] = info.value.problems
        assert line.startswith("OPS_TRUSTED_PROXIES: ") and why in line, line
    everyone = HostConfig.from_env({**TEST_ENV, "OPS_TRUSTED_PROXIES": "0.0.0.0/0"})
    assert any("trusts every address" in w for w in everyone.widened)


@pytest.fixture
async def behind_proxy(seeded_config: HostConfig, clock: Clock) -> AsyncIterator[AdminRig]:
    """The admin API with the test's own address (the client's peer) as a trusted proxy."""
    config = dataclasses.replace(seeded_config, ops_trusted_proxies=parse_networks("127.0.0.0/8"))
    async with running_admin(config, clock, link=False) as rig:
        yield rig


async def login_sources(rig: AdminRig, forwarded: str) -> list[str]:
    client = await rig.client()
    async with client.http.post(
        rig.base + "/admin/api/login",
        json={"name": "otto", "password": "wrong-password-x"},
        headers={"X-Forwarded-For": forwarded},
    ) as response:
        assert response.status == 401
    ada = await rig.client("ada")
    _, body = await ada.get("/admin/api/audit?action=operator.login&actor=otto")
    return [r["source"] for r in body["rows"]]


async def test_the_audit_log_shows_the_forwarded_client_behind_a_trusted_proxy(
    behind_proxy: AdminRig,
):
    assert await login_sources(behind_proxy, "1.1.1.1, 203.0.113.7") == ["web 203.0.113.7"]


async def test_without_trusted_proxies_the_header_is_ignored(admin: AdminRig):
    assert await login_sources(admin, "203.0.113.7") == ["web 127.0.0.1"]
