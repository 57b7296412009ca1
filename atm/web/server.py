"""The ATM's front panel in a browser: an aiohttp app served by the ATM process.

The page is a view of the ``FrontPanel`` model (``atm.frontpanel``), the same model the
Textual console renders; it is never a second source of truth. Over one WebSocket per tab the
server sends a snapshot of the panel after every change (coalesced per event-loop turn) and
takes a person's actions (a key, a card, cash taken, a fault, the supervisor switch).

Tabs: the first tab to connect drives the ATM; later tabs watch (they see every change, their
actions are refused with a message) until the driving tab closes, when the oldest watcher
drives. A snapshot holds what a person standing at the ATM could see: the screen (a PIN as
asterisks, never its digits), masked card numbers, the decoded link log with the PAN masked and
the PIN block and MAC hidden; never a key.

Security: bound to 127.0.0.1 unless told otherwise; the WebSocket refuses a handshake whose
Origin is not this server's own (a page on another site cannot drive the ATM); the fault panel
can be switched off (``faults=False``), and then fault actions are refused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from atm.frontpanel import FrontPanel
from atm.frontpanel.model import (
    KEYS,
    NOTES,
    SEEDED_CARDS,
    SUPERVISOR_KEYS,
    Change,
    NoteSlot,
    PanelError,
)
from atm.frontpanel.qr import qr_svg
from device.screens import money
from webpanel import StaticFiles, cross_site

__all__ = ["WebPanel", "make_app", "snapshot", "start_web"]

log = logging.getLogger(__name__)

LINK_LOG_ROWS = 60
JOURNAL_ROWS = 30
NOTICE_ROWS = 6

STATIC = StaticFiles(
    resources.files("atm.web") / "static",
    {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": "default-src 'self'; connect-src 'self'",
        "X-Content-Type-Options": "nosniff",
    },
)


@functools.lru_cache(maxsize=32)
def _receipt_qr_svg(text: str) -> str:
    """The receipt's QR code as SVG, drawn once per reference (every snapshot carries it)."""
    return qr_svg(text)


def snapshot(panel: FrontPanel, *, faults: bool) -> dict[str, Any]:
    """What a tab shows, as JSON-ready data."""
    screen = panel.screen
    devices = {}
    for kind, side in panel.sides.items():
        state = side.state()
        devices[kind] = {
            "where": side.where,
            "acts": side.acts,
            "summary": state.summary,
            "faults": list(state.faults),
            "fault_names": list(side.fault_names) if faults else [],
        }
    tray = panel.cash_tray()
    qr = panel.receipt_qr[-1] if panel.receipt_qr else ""
    notes = panel.note_slot()
    return {
        "state": panel.state,
        "supervisor": panel.in_supervisor_mode,
        "transition": str(panel.last_transition) if panel.last_transition else "",
        "screen": None
        if screen is None
        else {
            "id": screen.id,
            "title": screen.title,
            "lines": list(screen.lines),
            "soft_keys": dict(screen.soft_keys),
            "input_label": screen.input_label,
            "input": screen.input_display,  # asterisks for a PIN, never its digits
        },
        "card_slot": panel.card_slot(),
        "card_acts": panel.side("card-reader").acts,
        "cash_tray": [{"note": money(d), "count": n} for d, n in tray],
        "cash_tray_total": money(panel.cash_tray_cents()),
        "note_slot": {
            "present": panel.has_note_slot,
            "text": notes.describe(),
            "escrow": [{"note": money(c), "count": n} for c, n in notes.escrow],
            "escrow_total": money(NoteSlot.total(notes.escrow)),
            "returned": [{"note": money(c), "count": n} for c, n in notes.returned],
            "returned_total": money(NoteSlot.total(notes.returned)),
        },
        "envelope_slot": {"present": panel.has_envelope_slot, "text": panel.envelope_slot()},
        "receipt": list(panel.receipts[-1]) if panel.receipts else [],
        "receipt_qr": qr,
        # Drawn here in Python from the reference (our own markup, no customer input).
        "receipt_qr_svg": _receipt_qr_svg(qr) if qr else "",
        "receipts": len(panel.receipts),
        "devices": devices,
        "counters": panel.counters(),
        "link_status": panel.link_status(),
        "link_log": [
            {
                "n": e.number,
                "at": e.at.strftime("%H:%M:%S"),
                "direction": e.direction,
                "summary": e.summary,
                "text": e.text,
            }
            for e in list(panel.link_log)[-LINK_LOG_ROWS:]
        ],
        "journal": list(panel.journal_tail)[-JOURNAL_ROWS:],
        "notices": [{"text": n.text, "error": n.error} for n in list(panel.notices)[-NOTICE_ROWS:]],
        "faults_enabled": faults,
        "host_controls": panel.link_controls.host_down is not None,
        "host_down": panel.host_down,
    }


@dataclass(eq=False)
class _Tab:
    """One browser tab. Its sender sends the latest snapshot whenever ``dirty`` is set, so a
    slow tab gets fewer, never stale or out-of-order, pictures."""

    ws: web.WebSocketResponse
    number: int
    dirty: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class WebPanel:
    """The web front panel of one ATM: its model, its tabs and their roles."""

    panel: FrontPanel
    faults: bool = True
    tabs: list[_Tab] = field(default_factory=list)
    _count: int = 0
    _unsubscribe: Any = None

    def attach(self) -> None:
        self._unsubscribe = self.panel.subscribe(self._on_change)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @property
    def driver(self) -> _Tab | None:
        return self.tabs[0] if self.tabs else None

    def _on_change(self, change: Change) -> None:
        self._flush()

    def _flush(self) -> None:
        for tab in self.tabs:
            tab.dirty.set()

    async def _sender(self, tab: _Tab) -> None:
        while not tab.ws.closed:
            await tab.dirty.wait()
            tab.dirty.clear()
            await self._send_state(tab)

    async def _send_state(self, tab: _Tab) -> None:
        message = {
            "type": "state",
            "role": "driver" if tab is self.driver else "watcher",
            "tab": tab.number,
            "tabs": len(self.tabs),
            "panel": snapshot(self.panel, faults=self.faults),
        }
        with contextlib.suppress(ConnectionError, RuntimeError):
            await tab.ws.send_str(json.dumps(message))

    async def _send_error(self, tab: _Tab, text: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await tab.ws.send_str(json.dumps({"type": "error", "text": text}))

    async def serve(self, request: web.Request) -> web.StreamResponse:
        # A browser sends Origin on every WebSocket handshake; it must be this server.
        refused = cross_site(request, origin_required=True)
        if refused:
            log.warning("web panel: WebSocket refused (%s)", refused)
            raise web.HTTPForbidden(text="cross-origin WebSocket refused")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
        await ws.prepare(request)
        self._count += 1
        tab = _Tab(ws, self._count)
        self.tabs.append(tab)
        self._flush()  # everyone learns the new tab count (and roles)
        sender = asyncio.create_task(self._sender(tab))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._act(tab, message.data)
        finally:
            self.tabs.remove(tab)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._flush()
        return ws

    async def _act(self, tab: _Tab, data: str) -> None:
        try:
            action = json.loads(data)
            if not isinstance(action, dict) or not isinstance(action.get("action"), str):
                raise ValueError("an action is an object with an 'action' name")
        except ValueError as exc:
            await self._send_error(tab, f"bad message: {exc}")
            return
        if tab is not self.driver:
            await self._send_error(tab, "this tab watches: another tab drives this ATM")
            return
        try:
            await self._do(action)
        except PanelError as exc:
            await self._send_error(tab, str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            await self._send_error(tab, f"bad action {action.get('action')!r}: {exc}")

    async def _do(self, action: dict[str, Any]) -> None:
        name = action["action"]
        panel = self.panel
        if name == "press":
            key = str(action["key"]).upper()
            if key not in KEYS:
                raise PanelError(f"no key {key!r} on the PIN pad")
            await panel.press(key)
        elif name == "insert":
            await panel.insert_card(str(action["card"]))
        elif name == "insert_pan":
            await panel.insert_pan(str(action["pan"]), str(action["expiry"]))
        elif name == "take_card":
            await panel.take_card()
        elif name == "take_cash":
            await panel.take_cash()
        elif name == "insert_note":
            cents = action["cents"]
            if not isinstance(cents, int) or cents not in NOTES:
                raise PanelError(f"the note slot takes {', '.join(money(n) for n in NOTES)}")
            await panel.insert_notes(cents)
        elif name == "take_notes":
            await panel.take_notes()
        elif name == "insert_envelope":
            await panel.insert_envelope()
        elif name == "supervisor":
            await panel.supervisor_switch()
        elif name == "replenish":
            await panel.replenish()
        elif name in ("inject", "clear", "host_down", "host_up"):
            if not self.faults:
                raise PanelError("the fault panel is switched off on this ATM (--no-faults)")
            if name == "inject":
                arg = action.get("arg") or None
                await panel.inject(str(action["device"]), str(action["fault"]), arg)
            elif name == "clear":
                await panel.clear(str(action["device"]))
            else:
                await panel.set_host_down(name == "host_down")
        else:
            raise PanelError(f"unknown action {name!r}")


PANEL_KEY = web.AppKey("panel", WebPanel)


async def _config(request: web.Request) -> web.Response:
    web_panel = request.app[PANEL_KEY]
    return web.json_response(
        {
            "cards": SEEDED_CARDS,
            "keys": list(KEYS),
            "supervisor_keys": SUPERVISOR_KEYS,
            "notes": {str(cents): money(cents) for cents in NOTES},
            "faults": web_panel.faults,
            "terminal": web_panel.panel.controller.config.terminal_id,
        }
    )


async def _ws(request: web.Request) -> web.StreamResponse:
    web_panel: WebPanel = request.app[PANEL_KEY]
    return await web_panel.serve(request)


def make_app(panel: FrontPanel, *, faults: bool = True) -> web.Application:
    app = web.Application()
    web_panel = WebPanel(panel, faults)
    app[PANEL_KEY] = web_panel
    app.router.add_get("/", STATIC.index)
    app.router.add_get("/static/{name}", STATIC.named)
    app.router.add_get("/config", _config)
    app.router.add_get("/ws", _ws)

    async def lifecycle(app: web.Application) -> Any:
        web_panel.attach()
        yield
        web_panel.detach()
        for tab in list(web_panel.tabs):
            await tab.ws.close()

    app.cleanup_ctx.append(lifecycle)
    return app


async def start_web(
    panel: FrontPanel, port: int, *, listen: str = "127.0.0.1", faults: bool = True
) -> tuple[web.AppRunner, int]:
    """Serve the panel; returns the runner (``await runner.cleanup()`` to stop) and the port."""
    runner = web.AppRunner(make_app(panel, faults=faults), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, listen, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)
