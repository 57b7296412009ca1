"""``atm device --web PORT`` as a real process against a real host over TCP, driven by a real
WebSocket client as a browser tab would: the panel follows the controller, the actions work,
a foreign Origin is refused, ``--no-faults`` refuses faults, SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.atm.test_device_command import host_port  # noqa: F401  (a fixture)

Snapshot = dict[str, Any]


async def start_device(
    port: int, state: Path, *args: str
) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "device", "--port", str(port), "--state-dir", str(state),
        "--web", "0", *args,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen = ""
    while "ATM front panel on" not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line, f"atm device ended: {seen}"
        seen += line.decode()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", seen)
    assert found, seen
    return process, found.group(0)


async def next_state(
    ws: aiohttp.ClientWebSocketResponse, check: Callable[[Snapshot], bool]
) -> Snapshot:
    while True:
        message = await asyncio.wait_for(ws.receive_json(), 30)
        panel: Snapshot = message.get("panel", {})
        if message["type"] == "state" and check(panel):
            return panel


def on(screen_id: str) -> Callable[[Snapshot], bool]:
    return lambda p: p["screen"] is not None and p["screen"]["id"] == screen_id


async def test_device_web_panel_drives_a_withdrawal(host_port: int, tmp_path: Path) -> None:  # noqa: F811
    process, url = await start_device(host_port, tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            # Another site's page cannot open the WebSocket.
            async with http.get(url + "ws", headers={"Origin": "http://evil.test"}) as refused:
                assert refused.status == 403
            async with http.get(url) as page:
                assert page.status == 200 and "ATM front" in await page.text()
            origin = url.rstrip("/")
            async with http.ws_connect(url + "ws", headers={"Origin": origin}) as ws:
                first = await next_state(ws, on("welcome"))
                assert first["card_slot"] == "empty" and first["faults_enabled"]

                async def send(**action: Any) -> None:
                    await ws.send_str(json.dumps(action))

                await send(action="insert", card="alice")
                await next_state(ws, on("enter_pin"))
                for key in "1234":
                    await send(action="press", key=key)
                await send(action="press", key="ENTER")
                await next_state(ws, on("main_menu"))
                await send(action="press", key="F1")
                await next_state(ws, on("select_account"))
                await send(action="press", key="F1")
                await next_state(ws, on("select_amount"))
                await send(action="press", key="F4")  # $100.00
                cash = await next_state(ws, lambda p: bool(p["cash_tray"]))
                assert cash["cash_tray_total"] == "$100.00"
                await send(action="take_cash")
                await next_state(ws, lambda p: "at the slot" in p["card_slot"])
                await send(action="take_card")
                done = await next_state(ws, lambda p: on("welcome")(p) and p["receipts"] == 1)
                receipt = "\n".join(done["receipt"])
                assert "BALANCE                $5,150.00" in receipt
                assert done["receipt_qr"].startswith("ATM00001-") and done["receipt_qr_svg"]
                assert "4000001234567899" not in json.dumps(done)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode()
    assert "Traceback" not in out.decode()


async def test_no_faults_refuses_fault_actions(host_port: int, tmp_path: Path) -> None:  # noqa: F811
    process, url = await start_device(host_port, tmp_path, "--no-faults")
    try:
        async with aiohttp.ClientSession() as http:
            origin = url.rstrip("/")
            async with http.ws_connect(url + "ws", headers={"Origin": origin}) as ws:
                first = await next_state(ws, on("welcome"))
                assert not first["faults_enabled"]
                assert all(not d["fault_names"] for d in first["devices"].values())
                await ws.send_str(
                    json.dumps({"action": "inject", "device": "dispenser", "fault": "jam"})
                )
                while True:
                    message = await asyncio.wait_for(ws.receive_json(), 30)
                    if message["type"] == "error":
                        break
                assert "switched off" in message["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0


async def test_frontend_enabled_false_serves_no_panel(host_port: int, tmp_path: Path) -> None:  # noqa: F811
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atm", "device", "--port", str(host_port),
        "--state-dir", str(tmp_path), "--web", "0", "--script", "balance-bob",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FRONTEND_ENABLED": "false"},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    assert process.returncode == 0, text
    assert "FRONTEND_ENABLED is false: no web front panel" in text
    assert "ATM front panel on" not in text and "== run 1: done" in text
