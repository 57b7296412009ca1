"""The ops API over a real socket (aiohttp server and client), on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pypdf import PdfReader

from host.app import Host
from host.config import HostConfig
from tests.host.conftest import ALICE_CHECKING
from tests.host.link_helpers import TestTerminal

TOKEN = "test-ops-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def ops(seeded_config: HostConfig) -> AsyncIterator[tuple[Host, str]]:
    host = Host(seeded_config)
    await host.start("127.0.0.1", 0)
    port = await host.start_ops("127.0.0.1", 0)
    host.start_worker(poll_seconds=30)
    yield host, f"http://127.0.0.1:{port}"
    await host.close()


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client, client.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_health_and_ready_need_no_token(ops):
    _, base = ops
    assert await _get(f"{base}/health") == (200, {"status": "ok"})
    assert await _get(f"{base}/ready") == (200, {"status": "ready", "database": "ok"})


BAD_HEADERS = [
    None,
    {"Authorization": "Bearer wrong-token-0123456789"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": "Bearer"},
]


async def test_everything_else_needs_the_token(ops):
    _, base = ops
    for path in ("/metrics", f"/accounts/{ALICE_CHECKING}", "/statements/1", "/nothing"):
        for headers in BAD_HEADERS:
            status, body = await _get(base + path, headers)
            assert status == 401, (path, headers)
            assert body == {"error": "a valid bearer token is required"}


async def test_without_a_configured_token_nothing_protected_opens(seeded_config):
    host = Host(HostConfig(**{**seeded_config.__dict__, "ops_api_token": ""}))
    port = await host.start_ops("127.0.0.1", 0)
    try:
        status, _ = await _get(f"http://127.0.0.1:{port}/metrics", {"Authorization": "Bearer "})
        assert status == 401
    finally:
        await host.close()


async def test_account_and_entries_views(ops):
    _, base = ops
    status, body = await _get(f"{base}/accounts/{ALICE_CHECKING}", AUTH)
    assert status == 200
    assert body == {
        "number": ALICE_CHECKING,
        "kind": "checking",
        "customer": "Alice Johnson",
        "currency": "840",
        "balance_cents": 525_000,
    }
    status, body = await _get(f"{base}/accounts/{ALICE_CHECKING}/entries?limit=10", AUTH)
    assert status == 200
    assert [e["amount_cents"] for e in body["entries"]] == [525_000]
    assert body["entries"][0]["kind"] == "opening"


async def test_unknown_account_is_404_json(ops):
    _, base = ops
    assert await _get(f"{base}/accounts/0000-0000-0000", AUTH) == (
        404,
        {"error": "no account 0000-0000-0000"},
    )
    status, body = await _get(f"{base}/accounts/0000-0000-0000/entries", AUTH)
    assert status == 404 and "error" in body
    status, body = await _get(f"{base}/no/such/route", AUTH)
    assert status == 404 and "error" in body
    status, body = await _get(f"{base}/accounts/{ALICE_CHECKING}/entries?limit=0", AUTH)
    assert status == 400 and "limit" in body["error"]


async def _withdraw_over_the_link(host: Host, amount: int) -> dict[str, str]:
    """Sign on as ATM00001 (working keys, MAC) and withdraw ``amount`` from Alice's checking."""
    async with TestTerminal(host.server.port, "ATM00001") as terminal:
        assert (await terminal.sign_on())["39"] == "00"
        return await terminal.client.request(terminal.withdrawal(amount))


async def test_metrics_count_requests_by_mti_and_code(ops):
    host, base = ops
    response = await _withdraw_over_the_link(host, 5_000)
    assert response["39"] == "00"
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base}/metrics", headers=AUTH) as reply:
            assert reply.status == 200
            assert reply.content_type == "text/plain"
            text = await reply.text()
    assert 'atm_host_requests_total{mti="0200",response_code="00"} 1.0' in text
    assert 'atm_host_requests_total{mti="0800",response_code="00"} 1.0' in text
    assert 'atm_host_request_seconds_bucket{le="+Inf",mti="0200"} 1.0' in text
    assert "atm_host_active_sessions 1.0" in text
    assert "atm_host_locked_cards 0.0" in text
    assert "atm_host_lockouts_total 0.0" in text


async def test_statement_request_status_and_download(ops):
    host, base = ops
    today = dt.datetime.now(dt.UTC).date().isoformat()
    async with aiohttp.ClientSession(headers=AUTH) as client:
        body = {"account": ALICE_CHECKING, "from": "2026-01-01", "to": today}
        async with client.post(f"{base}/statements", json=body) as reply:
            assert reply.status == 202
            job = await reply.json()
        assert job["status"] in ("queued", "running", "done")
        # The in-process worker was woken by the request (its poll is 30 s): wait for it.
        assert await asyncio.to_thread(host.worker.wait_finished, job["job"], 30)
        async with client.get(f"{base}{job['links']['self']}") as reply:
            view = await reply.json()
        assert view["ready"] is True and view["status"] == "done"
        async with client.get(f"{base}{job['links']['pdf']}") as reply:
            assert reply.status == 200 and reply.content_type == "application/pdf"
            pdf = await reply.read()
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Closing balance: $5,250.00" in text


BAD_STATEMENT_REQUESTS = [
    ({"account": "0000-0000-0000", "from": "2026-01-01", "to": "2026-01-02"}, 404, "no"),
    ({"account": ALICE_CHECKING, "from": "2026-01-41", "to": "2026-01-02"}, 400, "date"),
    ({"from": "2026-01-01", "to": "2026-01-02"}, 400, "account"),
    ([1, 2], 400, "object"),
]


async def test_bad_statement_requests(ops):
    _, base = ops
    async with aiohttp.ClientSession(headers=AUTH) as client:
        for body, status, message in BAD_STATEMENT_REQUESTS:
            async with client.post(f"{base}/statements", json=body) as reply:
                assert reply.status == status
                assert message in (await reply.json())["error"]
        async with client.get(f"{base}/statements/999999") as reply:
            assert reply.status == 404
        async with client.post(f"{base}/statements", data=b"{not json") as reply:
            assert reply.status == 400
