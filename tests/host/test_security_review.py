"""The security review as tests, generated from the tables they guard so that a route or a message
type added later is covered without anyone remembering to:

* every route of the ops app (read from its router) answers 401 without a valid bearer token,
  except ``/health`` and ``/ready``;
* every MTI (``protocol.messages.Mti``, each network code for 0800/0810) sent on a connection
  that has not signed on, unsigned or MAC'd under any key but the right one, is not processed:
  no answer, the connection closed with one security log line, nothing written. Only sign-on
  and key change (0800, DE 70 = 001/161), MAC'd under the sign-on key derived from the
  terminal's master key, are answered before sign-on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from host.app import Host
from host.bank.models import LinkRequest
from host.config import HostConfig
from host.link.config import DEVELOPMENT_TMK
from protocol.framing import encode_frame
from protocol.mac import encode_signed
from protocol.messages import Mti, NetworkCode, encode, format_amount, is_request
from protocol.security import KeyScheme, generate_key, signon_mac_key
from tests.host.conftest import ALICE_CHECKING
from tests.host.link_helpers import ALICE_PAN, ALICE_TRACK, next_stan, next_time

TOKEN = "review-ops-token-0123456789"
# The bank operators' panel and its login are open by design; every other /admin/api route
# needs an operator session (tests/host/admin/test_route_security.py checks them one by one).
OPEN_ROUTES = {
    "/health",
    "/ready",
    "/admin",
    "/admin/",
    "/admin/static/admin.js",
    "/admin/api/login",
    "/admin/api/openapi.json",
}
SAMPLE = {
    "job_id": "1",
    "number": ALICE_CHECKING,
    "name": "admin.js",
    "customer_id": "1",
    "card_id": "1",
    "terminal_id": "ATM00001",
}


@pytest.fixture
async def host(seeded_config: HostConfig) -> AsyncIterator[Host]:
    host = Host(HostConfig(**{**seeded_config.__dict__, "ops_api_token": TOKEN}))
    await host.start("127.0.0.1", 0)
    await host.start_ops("127.0.0.1", 0)
    yield host
    await host.close()


def _routes(host: Host) -> list[tuple[str, str]]:
    runner = host._ops_runner
    assert runner is not None
    found = []
    for route in runner.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        assert template, f"a route the review cannot read: {route}"
        path = re.sub(r"\{(\w+)[^}]*\}", lambda m: SAMPLE[m[1]], template)
        found.append((route.method, path))
    return found


async def test_no_ops_route_answers_without_authentication(host):
    routes = _routes(host)
    assert {path for _, path in routes} >= {"/metrics", "/statements", "/health"}
    answered_openly = set()
    async with aiohttp.ClientSession() as client:
        for method, path in routes:
            for headers in (None, {"Authorization": "Bearer wrong-token-0123456789"}):
                url = f"http://127.0.0.1:{host.ops_port}{path}"
                async with client.request(method, url, headers=headers, json={}) as response:
                    if response.status != 401:
                        answered_openly.add(path)
    assert answered_openly == OPEN_ROUTES


# -- the link -----------------------------------------------------------------------------


def _message(mti: str, code: str | None) -> dict[str, str]:
    message = {"t": mti, "7": next_time(), "11": next_stan(), "41": "ATM00003"}
    message["42"] = "ATMSIM000000001"
    if mti in (Mti.AUTHORIZATION_REQUEST, Mti.FINANCIAL_REQUEST):
        amount = 0 if mti == Mti.AUTHORIZATION_REQUEST else 2_000
        message |= {"2": ALICE_PAN, "35": ALICE_TRACK, "49": "840", "52": "0" * 16}
        message |= {"3": "302000" if amount == 0 else "012000", "4": format_amount(amount)}
    elif mti in (Mti.REVERSAL_ADVICE, Mti.REVERSAL_ADVICE_REPEAT):
        message |= {"3": "012000", "4": format_amount(2_000), "49": "840", "60": "4018"}
        message["90"] = "0200" + message["11"] + message["7"] + "0" * 22
    if code is not None:
        message["70"] = code
    if mti in (Mti.NETWORK_REQUEST, Mti.NETWORK_RESPONSE):
        message["48"] = "T"
    if not is_request(mti):
        message["39"] = "00"
    return message


_NETWORK = (Mti.NETWORK_REQUEST, Mti.NETWORK_RESPONSE)
CASES: list[tuple[str, str | None]] = [
    (mti.value, code.value) for mti in Mti if mti in _NETWORK for code in NetworkCode
] + [(mti.value, None) for mti in Mti if mti not in _NETWORK]
SIGN_ON_CLASS = {(Mti.NETWORK_REQUEST.value, NetworkCode.SIGN_ON.value)} | {
    (Mti.NETWORK_REQUEST.value, NetworkCode.KEY_CHANGE.value)
}
SIGNON_KEY = signon_mac_key(KeyScheme.TDES, DEVELOPMENT_TMK)


def _signed(message: dict[str, str], how: str) -> bytes:
    if how == "unsigned":
        return encode(message)
    if how == "guessed key":
        return encode_signed(message, KeyScheme.TDES, generate_key(KeyScheme.TDES))
    return encode_signed(message, KeyScheme.TDES, SIGNON_KEY)


async def _exchange(port: int, *payloads: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for payload in payloads:
            writer.write(encode_frame(payload))
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


@pytest.mark.parametrize(("mti", "code"), CASES, ids=[f"{m}-{c or ''}" for m, c in CASES])
async def test_no_link_message_is_processed_before_sign_on(host, mti, code, caplog: Any):
    caplog.set_level(logging.WARNING, "host.security")
    for how in ("unsigned", "guessed key", "sign-on key"):
        caplog.clear()
        message = _message(mti, code)
        if (mti, code) in SIGN_ON_CLASS and how == "sign-on key":
            answer = await _exchange(host.server.port, _signed(message, how))
            assert answer[2:6] == b"0810", how  # sign-on and key change: answered
            continue
        if code in ("001", "161") and how == "sign-on key":
            # An 0810 from a terminal under the sign-on key: authentic but unsolicited, so
            # ignored. Proof: the first answer on the connection is the sign-on's that follows.
            sign_on = _message(Mti.NETWORK_REQUEST, NetworkCode.SIGN_ON)
            answer = await _exchange(host.server.port, _signed(message, how), _signed(sign_on, how))
            assert answer[2:6] == b"0810" and sign_on["11"].encode() in answer
            assert [r for r in caplog.records if r.name == "host.security"] == []
            continue
        answer = await _exchange(host.server.port, _signed(message, how))
        assert answer == b"", (mti, code, how)  # closed, nothing answered
        lines = [r for r in caplog.records if r.name == "host.security"]
        assert len(lines) == 1, (mti, code, how, [r.getMessage() for r in lines])
        assert "connection closed" in lines[0].getMessage()
    with host.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LinkRequest)) == 0
    assert host.balance(ALICE_CHECKING) == 525_000
