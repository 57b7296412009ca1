"""``atm console``: the ATM in a terminal (Textual), a view of ``atm.frontpanel.FrontPanel``.

Left, the ATM front: the screen with its soft keys beside it, the PIN pad, the cash tray and
the card slot; then the receipt roll. Right, three tabs: the engineer's view (controller
state and the transition that led to it, devices, the decoded host-link log, pausable and
filterable, and the journal tail), the fault panel, and the operator's view (supervisor
switch and keys, counters, balances).

Keyboard: digits, Enter, Backspace (CLEAR), Escape (CANCEL), F1..F8 for the soft keys;
Ctrl+S turns the supervisor switch; Ctrl+Q quits once the ATM is at rest.
"""

from __future__ import annotations

import textwrap
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Footer,
    Input,
    Label,
    RichLog,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)
from textual.widgets.button import ButtonVariant

from atm.frontpanel import SEEDED_CARDS, SUPERVISOR_KEYS, Change, FrontPanel, PanelError
from atm.frontpanel.model import NOTES
from atm.frontpanel.qr import qr_blocks
from device.screens import Screen, money
from device.states import State

__all__ = ["ConsoleApp", "screen_text"]

SCREEN_WIDTH = 34
KINDS = ("card-reader", "pin-pad", "dispenser", "printer")
ACCOUNTS = {
    "1000-0001-0001": "Alice checking",
    "1000-0001-0002": "Alice savings",
    "1000-0002-0001": "Bob checking",
    "1000-0003-0001": "Charlie checking",
    "1000-0003-0002": "Charlie savings",
}


def screen_text(screen: Screen | None, width: int = SCREEN_WIDTH) -> Text:
    """The ATM screen: title, the lines wrapped to the screen's width, the input field."""
    text = Text()
    if screen is None:
        text.append("(no screen yet)", style="dim")
        return text
    text.append(screen.title.center(width)[:width] + "\n\n", style="bold")
    for line in screen.lines:
        for part in textwrap.wrap(line, width) or [""]:
            text.append(part + "\n")
    if screen.input_label is not None:
        text.append("\n" + screen.input_label + " ", style="bold")
        text.append(screen.input_display or "_", style="reverse")
    return text


def _short_journal(line: str) -> str:
    """A journal line without its date and terminal: time of day, event, fields."""
    parts = line.split(" | ")
    if len(parts) < 3 or len(parts[0]) < 19:
        return line
    return " ".join([parts[0][11:19], *parts[2:]])


class KeyButton(Button, can_focus=False):
    """A key on the ATM: never takes the focus, so the keyboard keeps typing on the PIN pad."""


class ConsoleApp(App[int]):
    TITLE = "ATM console"
    AUTO_FOCUS = None
    CSS = """
    Screen { layout: horizontal; }
    #front { width: 64; padding: 0 1; }
    #roll { width: 42; border: round $secondary; border-title-align: center; }
    #tabs { width: 1fr; }
    #display { height: 16; }
    .softkeys { width: 14; }
    .softkeys KeyButton { width: 100%; height: 3; margin-bottom: 1; }
    #atm-screen {
        width: 1fr; height: 16; border: heavy $success; padding: 0 1;
        background: $boost; border-title-align: center;
    }
    #middle { height: 12; }
    #pinpad { grid-size: 4 4; grid-gutter: 0 1; width: 40; height: 12; }
    #pinpad KeyButton { width: 100%; min-width: 6; height: 3; }
    #tray-box { width: 1fr; border: round $warning; padding: 0 1; border-title-align: center; }
    #card-box { height: auto; border: round $primary; padding: 0 1; border-title-align: center; }
    #card-box Horizontal { height: auto; }
    #card-pick { width: 1fr; }
    #pan { width: 24; }
    #expiry { width: 10; }
    #notice { height: 2; color: $warning; }
    #receipt { padding: 0 1; }
    .row { height: auto; }
    .row Input { width: 1fr; }
    .row Label { width: auto; }
    .row .switch-label { padding: 1 0; }
    .row .fault-kind { width: 13; }
    .row Switch { width: auto; }
    .fault-kind { width: 13; }
    .fault-pick { width: 1fr; }
    #faults .row { margin-bottom: 1; }
    #link-log { height: 1fr; border: round $primary; }
    #journal { height: 12; border: round $primary; }
    #engineer-state { height: 3; margin-bottom: 1; }
    #devices { height: auto; margin-bottom: 1; }
    #counters { height: 5; margin-top: 1; }
    #balances { height: 7; margin-top: 1; }
    #link-state { height: 2; }
    #tray { height: 5; }
    #card-slot { height: 1; }
    #deposit-box { height: auto; border: round $success; padding: 0 1; border-title-align: center; }
    #deposit-box Horizontal { height: auto; }
    #deposit-box KeyButton { width: auto; min-width: 4; }
    #note-slot { width: 1fr; height: 1; }
    #envelope-slot { width: 1fr; height: 1; }
    #supervisor-state { width: 1fr; height: 1; }
    #operator-keys { grid-size: 2 5; grid-gutter: 0 1; height: 15; }
    #operator-keys KeyButton { width: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *[Binding(d, f"key('{d}')", show=False) for d in "0123456789"],
        Binding("enter", "key('ENTER')", "Enter", show=False),
        Binding("backspace", "key('CLEAR')", "Clear", show=False),
        Binding("escape", "key('CANCEL')", "Cancel", show=False),
        *[Binding(f"f{i}", f"key('F{i}')", show=False) for i in range(1, 9)],
        Binding("ctrl+s", "supervisor", "Supervisor switch"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, panel: FrontPanel) -> None:
        super().__init__()
        self.panel = panel
        self.link_paused = False
        self.link_filter = ""
        self._shown_link = 0
        self._quitting = False
        self._ticks = 0
        self._dirty: set[Change] = set()
        self._drawn: dict[str, str] = {}
        self._unsubscribe = panel.subscribe(self._on_change)

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="front"):
            with Horizontal(id="display"):
                with Vertical(classes="softkeys"):
                    for i in range(1, 5):
                        yield KeyButton(f"F{i}", id=f"key-F{i}", compact=True)
                screen = Static(id="atm-screen")
                screen.border_title = "ATM"
                yield screen
                with Vertical(classes="softkeys"):
                    for i in range(5, 9):
                        yield KeyButton(f"F{i}", id=f"key-F{i}", compact=True)
            with Horizontal(id="middle"):
                with Grid(id="pinpad"):
                    for key in ("1", "2", "3", "CANCEL", "4", "5", "6", "CLEAR"):
                        yield self._pad_key(key)
                    for key in ("7", "8", "9", "ENTER"):
                        yield self._pad_key(key)
                    yield Label("")
                    yield self._pad_key("0")
                with Vertical(id="tray-box") as tray:
                    tray.border_title = "Cash tray"
                    yield Static(id="tray")
                    yield KeyButton("Take cash", id="take-cash", compact=True)
            with Vertical(id="card-box") as card:
                card.border_title = "Card slot"
                yield Select(
                    [(label, name) for name, label in SEEDED_CARDS.items()],
                    value="alice",
                    allow_blank=False,
                    id="card-pick",
                    compact=True,
                )
                with Horizontal():
                    yield Input(placeholder="or any card number", id="pan", compact=True)
                    yield Input(placeholder="YYMM", id="expiry", max_length=5, compact=True)
                with Horizontal():
                    yield KeyButton("Insert card", id="insert-card", compact=True)
                    yield Label("  ")
                    yield KeyButton("Take card", id="take-card", compact=True)
                yield Static(id="card-slot")
            with Vertical(id="deposit-box") as deposit:
                deposit.border_title = "Note slot and envelope slot (deposits)"
                with Horizontal():
                    yield Label("Insert ")
                    for cents in NOTES:
                        yield KeyButton(f"${cents // 100}", id=f"note-{cents}", compact=True)
                        yield Label(" ")
                with Horizontal():
                    yield KeyButton("Take notes", id="take-notes", compact=True)
                    yield Label(" ")
                    yield Static(id="note-slot")
                with Horizontal():
                    yield KeyButton("Insert envelope", id="insert-envelope", compact=True)
                    yield Label(" ")
                    yield Static(id="envelope-slot")
            yield Static(id="notice")
        with VerticalScroll(id="roll") as roll:
            roll.border_title = "Receipt roll"
            yield Static(id="receipt")
        with TabbedContent(id="tabs"):
            with TabPane("Engineer", id="engineer"):
                yield Static(id="engineer-state")
                yield Static(id="devices")
                with Horizontal(classes="row"):
                    yield Input(placeholder="filter the link log", id="link-filter", compact=True)
                    yield Label(" pause ", classes="switch-label")
                    yield Switch(id="link-pause")
                yield RichLog(id="link-log", wrap=True, max_lines=2000, min_width=40)
                yield RichLog(id="journal", wrap=True, max_lines=400, min_width=40)
            with TabPane("Faults", id="faults"):
                yield from self._fault_rows()
            with TabPane("Operator", id="operator"):
                with Horizontal(classes="row"):
                    yield KeyButton("Supervisor switch", id="supervisor", variant="warning")
                    yield Static(id="supervisor-state")
                with Grid(id="operator-keys"):
                    for key, label in SUPERVISOR_KEYS.items():
                        yield KeyButton(f"{key} {label}", id=f"sup-{key}", compact=True)
                yield Static(id="counters")
                yield Static(id="balances")
        yield Footer()

    def _pad_key(self, key: str) -> KeyButton:
        variants: dict[str, ButtonVariant] = {
            "CANCEL": "error",
            "CLEAR": "warning",
            "ENTER": "success",
        }
        return KeyButton(key, id=f"key-{key}", variant=variants.get(key, "default"))

    def _fault_rows(self) -> ComposeResult:
        for kind in KINDS:
            side = self.panel.sides.get(kind)
            names = side.fault_names if side is not None else ()
            with Horizontal(classes="row"):
                yield Label(kind, classes="fault-kind")
                yield Select(
                    [(name, name) for name in names],
                    prompt="fault",
                    id=f"fault-{kind}",
                    classes="fault-pick",
                    compact=True,
                )
                yield Button("Inject", id=f"inject-{kind}", variant="error", compact=True)
                yield Label(" ")
                yield Button("Clear", id=f"clear-{kind}", compact=True)
        with Horizontal(classes="row"):
            yield Label("argument", classes="fault-kind")
            yield Input(
                placeholder="wire faults: delay s, split bytes, garble/drop/nak N",
                id="fault-arg",
                compact=True,
            )
        yield Label("Host link", classes="fault-kind")
        with Horizontal(classes="row"):
            yield Button("Host down", id="host-down", variant="error", compact=True)
            yield Label(" ")
            yield Button("Host up", id="host-up", variant="success", compact=True)
        with Horizontal(classes="row"):
            yield Label(" lose requests ", classes="switch-label")
            yield Switch(id="hold-requests")
            yield Label(" hold answers ", classes="switch-label")
            yield Switch(id="hold-replies")
        with Horizontal(classes="row"):
            yield Input(placeholder="answer delay, s", id="delay", compact=True)
            yield Button("Slow host", id="slow", compact=True)
        yield Static(id="link-state")

    # -- lifecycle ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._dirty.update(Change)
        self._redraw_dirty()
        self.set_interval(0.5, self._poll_devices)

    def on_unmount(self) -> None:
        self._unsubscribe()

    async def _poll_devices(self) -> None:
        # Devices change without telling (a card reaching the gate, a remote simulator).
        await self.panel.refresh_devices()
        self._ticks += 1
        if self._ticks % 4 == 1:
            await self.panel.refresh_balances(ACCOUNTS)

    # -- model -> view --------------------------------------------------------------------
    def _set(self, selector: str, content: str | Text, *, layout: bool = False) -> None:
        """Update a fixed-size Static only when its content changed (redraws are costly)."""
        key = content.plain + str(content.spans) if isinstance(content, Text) else content
        if self._drawn.get(selector) == key:
            return
        self._drawn[selector] = key
        self.query_one(selector, Static).update(content, layout=layout)

    def _on_change(self, change: Change) -> None:
        # Many changes come in a burst (a journal line per step): draw once per burst.
        if not self.is_running:
            return
        if not self._dirty:
            self.call_later(self._redraw_dirty)
        self._dirty.add(change)

    def _redraw_dirty(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for change in Change:
            if change in dirty:
                self._draw(change)

    def _draw(self, change: Change) -> None:
        if change in (Change.SCREEN, Change.STATE):
            self._show_screen()
            self._show_state()
        elif change is Change.LINK:
            self._show_link()
        elif change is Change.JOURNAL:
            self._show_journal()
        elif change is Change.RECEIPT:
            self._show_receipts()
        elif change is Change.DEVICES:
            self._show_devices()
        elif change is Change.NOTICE and self.panel.notices:
            notice = self.panel.notices[-1]
            self._set("#notice", notice.text)
            self.notify(notice.text, severity="error" if notice.error else "information")

    def _show_screen(self) -> None:
        screen = self.panel.screen
        self._set("#atm-screen", screen_text(screen))
        keys = screen.soft_keys if screen is not None else {}
        for i in range(1, 9):
            key = f"F{i}"
            label = keys.get(key, "")
            text = (f"{key} {label}" if i <= 4 else f"{label} {key}") if label else key
            button = self.query_one(f"#key-{key}", KeyButton)
            if str(button.label) != text:
                button.label = text
                button.variant = "primary" if label else "default"

    def _show_state(self) -> None:
        panel = self.panel
        transition = panel.last_transition
        lines = [f"State: {panel.state}"]
        if transition is not None:
            lines.append(f"Last transition: {transition} at {transition.at.strftime('%H:%M:%S')}")
        lines.append(f"Host link: {panel.link_status()}")
        self._set("#engineer-state", "\n".join(lines))
        switch = "ON (supervisor mode)" if panel.in_supervisor_mode else "off"
        self._set("#supervisor-state", f"  switch {switch}")

    def _show_devices(self) -> None:
        panel = self.panel
        lines = []
        for kind in KINDS:
            side = panel.sides[kind]
            state = side.state()
            faults = ",".join(state.faults) or "-"
            lines.append(f"{kind:<12} {side.where}")
            detail = f"  faults {faults}"
            if state.frames:
                detail += f"\n  frames {state.frames}"
            if kind == "dispenser" and state.cassettes:
                detail += "; cassettes " + ", ".join(
                    f"{money(d)} x {n}" for d, n in state.cassettes
                )
            if kind == "card-reader" and state.card_position:
                detail += f"; card {state.card_position}; captured {state.cards_captured}"
            if kind == "printer" and "paper_left=" in state.summary:
                detail += "; " + state.summary.split("paper_left=")[1].split()[0] + " lines left"
            lines.append(detail)
        self._set("#devices", "\n".join(lines), layout=True)
        tray = panel.cash_tray()
        if tray:
            text = "\n".join(f"{n} x {money(d)}" for d, n in tray)
            text += f"\n= {money(panel.cash_tray_cents())}"
        else:
            text = "empty"
        self._set("#tray", text)
        self._set("#card-slot", f"Slot: {panel.card_slot()}")
        notes = panel.note_slot().describe() if panel.has_note_slot else "no note slot here"
        self._set("#note-slot", f"Notes: {notes}")
        self._set("#envelope-slot", panel.envelope_slot())
        self._set("#counters", "Cash counters\n" + "\n".join(panel.counters()))
        if panel.has_host:
            balances = [
                f"{label:<17} {number}  {money(panel.balances.get(number, 0)):>12}"
                for number, label in ACCOUNTS.items()
            ]
            self._set("#balances", "Host balances\n" + "\n".join(balances))
        else:
            self._set("#balances", "Host balances: the host runs elsewhere")
        self._set("#link-state", f"Link: {panel.link_status()}")

    def _show_link(self) -> None:
        log = self.query_one("#link-log", RichLog)
        if self.link_paused:
            return
        for entry in self.panel.link_log:
            if entry.number <= self._shown_link:
                continue
            self._shown_link = entry.number
            if entry.matches(self.link_filter):
                self._write_link(log, entry.number)

    def _write_link(self, log: RichLog, number: int) -> None:
        for entry in self.panel.link_log:
            if entry.number == number:
                style = "cyan" if entry.direction == "send" else "green"
                log.write(Text(f"{entry.at.strftime('%H:%M:%S')} {entry.summary}", style=style))
                log.write(Text(entry.text, style="dim"))

    def _rewrite_link(self) -> None:
        log = self.query_one("#link-log", RichLog)
        log.clear()
        for entry in self.panel.link_entries(self.link_filter):
            self._write_link(log, entry.number)
        if self.panel.link_log:
            self._shown_link = self.panel.link_log[-1].number

    def _show_journal(self) -> None:
        log = self.query_one("#journal", RichLog)
        log.clear()
        for line in list(self.panel.journal_tail)[-40:]:
            log.write(_short_journal(line))

    def _show_receipts(self) -> None:
        text = Text()
        receipts = list(zip(self.panel.receipts, self.panel.receipt_qr, strict=True))
        for i, (receipt, qr) in enumerate(receipts[-5:]):
            if i:
                text.append("- - - - - - - - 8< - - - - - - - -\n", style="dim")
            text.append("\n".join(receipt) + "\n")
            if qr:
                # Dark modules dark on white paper, as printed (and as a phone scans it).
                for line in qr_blocks(qr):
                    text.append(line, style="black on white")
                    text.append("\n")
                text.append(f"QR: {qr}\n", style="dim")
        self._set("#receipt", text, layout=True)
        self.query_one("#roll", VerticalScroll).scroll_end(animate=False)

    # -- view -> model --------------------------------------------------------------------
    async def _do(self, action: Any) -> None:
        try:
            await action
        except PanelError as exc:
            self.panel.notify(str(exc), error=True)

    async def action_key(self, key: str) -> None:
        await self._do(self.panel.press(key))

    async def action_supervisor(self) -> None:
        await self._do(self.panel.supervisor_switch())

    async def action_quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self._quit()

    @work(exclusive=True, group="quit")
    async def _quit(self) -> None:
        if self.panel.state_enum not in (State.idle, State.out_of_service, State.fault):
            self.panel.notify("Quitting: finishing the customer's session first")
        await self.panel.settle()
        self.exit(0)

    @on(Button.Pressed)
    async def _pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        panel = self.panel
        # After a click the keyboard belongs to the PIN pad again (Enter must not press the
        # same button twice).
        self.screen.set_focus(None)
        if button.startswith("key-"):
            await self._do(panel.press(button[4:]))
        elif button.startswith("sup-"):
            key = button[4:]
            await self._do(panel.replenish() if key == "F1" else panel.press(key))
        elif button == "insert-card":
            await self._do(self._insert())
        elif button == "take-card":
            await self._do(panel.take_card())
        elif button == "take-cash":
            await self._do(panel.take_cash())
        elif button.startswith("note-"):
            await self._do(panel.insert_notes(int(button[5:])))
        elif button == "take-notes":
            await self._do(panel.take_notes())
        elif button == "insert-envelope":
            await self._do(panel.insert_envelope())
        elif button == "supervisor":
            await self._do(panel.supervisor_switch())
        elif button.startswith("inject-"):
            kind = button[7:]
            fault = self.query_one(f"#fault-{kind}", Select).value
            if isinstance(fault, str):
                arg = self.query_one("#fault-arg", Input).value.strip() or None
                await self._do(panel.inject(kind, fault, arg))
            else:
                panel.notify(f"choose a {kind} fault first", error=True)
        elif button.startswith("clear-"):
            await self._do(panel.clear(button[6:]))
        elif button in ("host-down", "host-up"):
            await self._do(panel.set_host_down(button == "host-down"))
        elif button == "slow":
            value = self.query_one("#delay", Input).value.strip() or "0"
            try:
                panel.set_reply_delay(float(value))
            except ValueError:
                panel.notify(f"a delay is a number of seconds, got {value!r}", error=True)
            except PanelError as exc:
                panel.notify(str(exc), error=True)

    async def _insert(self) -> None:
        pan = self.query_one("#pan", Input).value.strip()
        if pan:
            expiry = self.query_one("#expiry", Input).value
            await self.panel.insert_pan(pan, expiry)
        else:
            name = self.query_one("#card-pick", Select).value
            await self.panel.insert_card(str(name))
        self.screen.set_focus(None)

    @on(Select.Changed)
    def _picked(self, event: Select.Changed) -> None:
        # A choice made: the keyboard goes back to the PIN pad (a focused Select would take
        # the digits as a search).
        self.screen.set_focus(None)

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        self.screen.set_focus(None)
        try:
            if event.switch.id == "link-pause":
                self.link_paused = event.value
                if not event.value:
                    self._rewrite_link()
            elif event.switch.id == "hold-requests":
                self.panel.set_requests_held(event.value)
            elif event.switch.id == "hold-replies":
                self.panel.set_replies_held(event.value)
        except PanelError as exc:
            self.panel.notify(str(exc), error=True)

    @on(Input.Changed, "#link-filter")
    def _filtered(self, event: Input.Changed) -> None:
        self.link_filter = event.value
        if not self.link_paused:
            self._rewrite_link()

    @on(Input.Submitted)
    async def _submitted(self, event: Input.Submitted) -> None:
        # Enter in the card number or expiry inserts the card; in any text field it ends the
        # typing, so the keyboard goes back to the PIN pad.
        if event.input.id in ("pan", "expiry"):
            await self._do(self._insert())
        self.screen.set_focus(None)
