"""The web front panel's server without a browser (the browser tests are in tests/browser):
the page and its assets are served from the package, the WebSocket refuses a foreign or missing
Origin, snapshots never carry a PIN digit or a full PAN, a watcher cannot act, bad messages get
an error and change nothing, and ``--no-faults`` refuses fault actions."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from atm.frontpanel import Bench, BenchOptions, FrontPanel
from atm.web import start_web
from host.config import HostConfig


@contextlib.asynccontextmanager
async def serving(
    host_config: HostConfig, tmp_path: Path, *, faults: bool = True
) -> AsyncIterator[tuple[FrontPanel, str]]:
    bench = Bench(
        BenchOptions(work_dir=tmp_path / "web", device={"reconnect_delay": 0.05}), host_config
    )
    panel = await bench.start()
    runner, port = await start_web(panel, 0, faults=faults)
    try:
        yield panel, f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await bench.close()


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.receive_str(timeout=10))
        if message["type"] == kind:
            return dict(message)


async def test_page_assets_and_origin_check(host_config, tmp_path):
    async with serving(host_config, tmp_path) as (_panel, where), aiohttp.ClientSession() as http:
        async with http.get(f"http://{where}/") as page:
            assert page.status == 200
            assert "PIN pad" in await page.text()
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for name in ("panel.js", "panel.css"):
            async with http.get(f"http://{where}/static/{name}") as asset:
                assert asset.status == 200
        async with http.get(f"http://{where}/static/..%2Fserver.py") as bad:
            assert bad.status == 404
        for origin in (None, "http://evil.example", "null"):
            headers = {"Origin": origin} if origin else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(f"ws://{where}/ws", headers=headers)
            assert info.value.status == 403


async def test_snapshots_roles_and_refusals(host_config, tmp_path):
    async with serving(host_config, tmp_path) as (panel, where), aiohttp.ClientSession() as http:
        origin = {"Origin": f"http://{where}"}
        driver = await http.ws_connect(f"ws://{where}/ws", headers=origin)
        first = await next_of(driver, "state")
        assert first["role"] == "driver" and first["panel"]["screen"]["id"] == "welcome"
        watcher = await http.ws_connect(f"ws://{where}/ws", headers=origin)
        assert (await next_of(watcher, "state"))["role"] == "watcher"
        await watcher.send_str(json.dumps({"action": "insert", "card": "alice"}))
        assert "this tab watches" in (await next_of(watcher, "error"))["text"]
        await driver.send_str("not json")
        assert (await next_of(driver, "error"))["text"].startswith("bad message")
        await driver.send_str(json.dumps({"action": "press", "key": "X"}))
        assert "no key" in (await next_of(driver, "error"))["text"]
        await driver.send_str(json.dumps({"action": "insert", "card": "alice"}))
        await panel.wait_for_screen("enter_pin")
        for digit in "1234":
            await driver.send_str(json.dumps({"action": "press", "key": digit}))
        await panel.wait_for(lambda p: p.screen is not None and len(p.screen.input_value) == 4)
        seen = []
        while True:
            message = await next_of(watcher, "state")
            seen.append(json.dumps(message))
            if message["panel"]["screen"]["input"] == "****":
                break
        assert "4000001234567899" not in "".join(seen)
        assert not any('"input": "1' in s for s in seen)
        await driver.send_str(json.dumps({"action": "press", "key": "CANCEL"}))
        await panel.wait_for_screen("take_card")
        await driver.send_str(json.dumps({"action": "take_card"}))
        await panel.wait_for_screen("welcome")
        await driver.close()
        await watcher.close()


async def test_no_faults_refuses_fault_actions(host_config, tmp_path):
    async with (
        serving(host_config, tmp_path, faults=False) as (panel, where),
        aiohttp.ClientSession() as http,
    ):
        ws = await http.ws_connect(f"ws://{where}/ws", headers={"Origin": f"http://{where}"})
        state = await next_of(ws, "state")
        assert state["panel"]["faults_enabled"] is False
        assert all(not d["fault_names"] for d in state["panel"]["devices"].values())
        await ws.send_str(json.dumps({"action": "inject", "device": "dispenser", "fault": "jam"}))
        assert "switched off" in (await next_of(ws, "error"))["text"]
        assert "jam" not in panel.device_state("dispenser").faults
        await ws.close()


async def test_note_slot_refuses_a_note_it_does_not_take(host_config, tmp_path):
    async with serving(host_config, tmp_path) as (panel, where), aiohttp.ClientSession() as http:
        headers = {"Origin": f"http://{where}"}
        async with http.ws_connect(f"ws://{where}/ws", headers=headers) as ws:
            state = await next_of(ws, "state")
            assert state["panel"]["note_slot"]["present"]
            assert state["panel"]["envelope_slot"]["text"] == "0 envelope(s) in the bin"
            for cents in (300, "2000", None):
                await ws.send_str(json.dumps({"action": "insert_note", "cents": cents}))
                error = await next_of(ws, "error")
                assert "the note slot takes $1.00, $5.00" in error["text"]
        assert panel.note_slot().escrow == [] and panel.note_slot().returned == []
