"""The console (``atm console``) headless, through Textual's pilot: key presses and clicks on
the real app, over the real host link to a host in this process. Each test waits on the
front panel's events (``FrontPanel.wait_for``), never on sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Input, RichLog, Select, Static, TabbedContent

from atm.console import ConsoleApp
from atm.frontpanel import SUPERVISOR_KEYS, Bench, BenchOptions, FrontPanel
from atm.frontpanel.sides import LocalSide
from device.states import SUPERVISOR_KEYS as CONTROLLER_SUPERVISOR_KEYS
from device.states import State
from host.config import HostConfig
from tests.device.test_more_time import Clock
from tests.qr import read_blocks

ALICE_CHECKING = "1000-0001-0001"
BOB_CHECKING = "1000-0002-0001"
SIZE = (180, 50)


def receipt_field(receipt: str, name: str) -> str:
    """The value on a receipt's ``NAME      value`` line."""
    line = next(x for x in receipt.splitlines() if x.startswith(name + " "))
    return line.split()[-1]


@dataclass
class Console:
    bench: Bench
    panel: FrontPanel
    app: ConsoleApp
    pilot: Pilot[int]

    def text(self, selector: str) -> str:
        return str(self.app.query_one(selector, Static).render())

    def button(self, selector: str) -> str:
        return str(self.app.query_one(selector, Button).label)

    async def screen(self, screen_id: str) -> None:
        await self.panel.wait_for_screen(screen_id)
        await self.settled()

    async def settled(self) -> None:
        """Let the view catch up: devices change without an event (a card reaching the gate)
        and the app polls them; ask now instead, then let the app draw."""
        await self.panel.refresh_devices()
        await self.pilot.pause()

    async def keys(self, *keys: str) -> None:
        await self.pilot.press(*keys)

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Let the app process messages until ``condition`` holds. One pause is not always
        enough: a widget's message (an Input's or a Switch's Changed) bubbles to the app one
        hop at a time, each hop queued after the pause began; on a loaded machine Textual's
        idle heuristic can end the pause before the last hop. The deadline guards a hang."""
        deadline = asyncio.get_running_loop().time() + 30
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, f"never {what}"
            await self.pilot.pause()


@contextlib.asynccontextmanager
async def open_console(
    host_config: HostConfig, tmp_path: Path, clock: Any = None, **device: Any
) -> AsyncIterator[Console]:
    bench = Bench(
        BenchOptions(
            work_dir=tmp_path / "console",
            device={"reconnect_delay": 0.05, **device},
            clock=clock,
        ),
        host_config,
    )
    panel = await bench.start()
    try:
        app = ConsoleApp(panel)
        async with app.run_test(size=SIZE) as pilot:
            console = Console(bench, panel, app, pilot)
            await console.screen("welcome")
            yield console
    finally:
        await bench.close()


async def test_withdrawal_by_key_presses(host_config, tmp_path):
    async with open_console(host_config, tmp_path) as c:
        assert "Please insert your card" in c.text("#atm-screen")
        await c.pilot.click("#insert-card")  # Alice's card is picked by default
        await c.screen("enter_pin")
        await c.keys("1", "2", "3")
        await c.panel.wait_for(lambda p: p.screen is not None and p.screen.input_value == "***")
        await c.pilot.pause()
        assert "PIN: ***" in c.text("#atm-screen")
        await c.keys("4", "enter")
        await c.screen("main_menu")
        assert c.button("#key-F1") == "F1 Withdrawal"
        await c.keys("f1")
        await c.screen("select_account")
        await c.keys("f1")  # checking
        await c.screen("select_amount")
        assert c.button("#key-F4") == "F4 $100.00"
        await c.keys("f4")
        await c.screen("take_cash")
        assert "2 x $50.00" in c.text("#tray") and "$100.00" in c.text("#tray")
        await c.pilot.click("#take-cash")
        await c.screen("take_card")
        assert c.text("#tray") == "empty"
        await c.panel.wait_for(lambda p: "at the slot" in p.card_slot())
        await c.settled()
        assert "card at the slot" in c.text("#card-slot")
        await c.pilot.click("#take-card")
        await c.screen("welcome")
        receipt = c.text("#receipt")
        assert "BALANCE                $5,150.00" in receipt
        assert "400000******7899" in receipt and "4000001234567899" not in receipt
        assert c.panel.balance(ALICE_CHECKING) == 515_000
        # The receipt's QR code, drawn in blocks, reads back to the transaction reference:
        # terminal, STAN and RRN, as the receipt prints them.
        reference = "-".join(receipt_field(receipt, k) for k in ("TERMINAL", "STAN", "RRN"))
        blocks = [line for line in receipt.splitlines() if set(line) <= set(" ▀▄█") and line]
        assert read_blocks(blocks) == [reference]
        assert f"QR: {reference}" in receipt
        printer = c.panel.sides["printer"]
        assert isinstance(printer, LocalSide) and printer.device.qr_codes == [reference]
        # The engineer's view: the link log decoded, PAN masked, PIN block hidden.
        entries = [e for e in c.panel.link_log if e.mti == "0200"]
        assert entries and "400000******7899" in entries[0].summary
        assert "[8 bytes hidden]" in entries[0].text
        assert "4000001234567899" not in "".join(e.text for e in c.panel.link_log)
        assert "session_end -> idle (session_closed)" in c.text("#engineer-state")
        # The link log, filtered to one message type, then paused.
        log = c.app.query_one("#link-log", RichLog)
        c.app.query_one("#link-filter", Input).value = "0210"
        await c.until(lambda: c.app.link_filter == "0210", "filtered")
        await c.pilot.pause()
        shown = "\n".join(line.text for line in log.lines)
        assert "0210 financial response" in shown and "0800" not in shown
        await c.pilot.click("#link-pause")
        await c.until(lambda: c.app.link_paused, "paused")


async def test_wrong_pin_three_times(host_config, tmp_path):
    async with open_console(host_config, tmp_path) as c:
        c.app.query_one("#card-pick", Select).value = "bob"
        await c.pilot.click("#insert-card")
        await c.screen("enter_pin")
        await c.keys("1", "1", "1", "1", "enter")
        await c.screen("main_menu")
        await c.keys("f2")  # balance
        await c.screen("select_account")
        await c.keys("f1")
        await c.screen("pin_retry")
        assert "Incorrect PIN." in c.text("#atm-screen")
        await c.keys("2", "2", "2", "2", "enter")
        await c.panel.wait_for(lambda p: len(p.link_entries("RC 55")) == 2)
        await c.screen("pin_retry")
        await c.keys("3", "3", "3", "3", "enter")
        await c.screen("take_card")
        assert "PIN tries exceeded" in c.text("#atm-screen")
        await c.pilot.click("#take-card")
        await c.screen("welcome")
        assert c.panel.link_entries("RC 75")
        assert c.panel.balance(BOB_CHECKING) == 85_075
        assert not any("CARD_CAPTURED" in line for line in c.panel.journal_tail)


async def test_dispenser_jam_from_the_fault_panel_is_reversed(host_config, tmp_path):
    async with open_console(host_config, tmp_path) as c:
        c.app.query_one(TabbedContent).active = "faults"
        await c.pilot.pause()
        c.app.query_one("#fault-dispenser", Select).value = "jam"
        await c.pilot.click("#inject-dispenser")
        await c.panel.wait_for(lambda p: "jam" in p.device_state("dispenser").faults)
        await c.pilot.click("#insert-card")
        await c.screen("enter_pin")
        await c.keys("1", "2", "3", "4", "enter")
        await c.screen("main_menu")
        await c.keys("f1")
        await c.screen("select_account")
        await c.keys("f1")
        await c.screen("select_amount")
        await c.keys("f4")
        await c.panel.wait_for(
            lambda p: p.screen is not None and "Unable to dispense cash" in " ".join(p.screen.lines)
        )
        await c.pilot.pause()
        assert "Unable to dispense cash" in c.text("#atm-screen")
        await c.screen("take_card")
        await c.pilot.click("#take-card")
        # The reversal advice reaches the host and is answered.
        await c.panel.wait_for(lambda p: bool([e for e in p.link_log if e.mti == "0430"]))
        assert c.panel.balance(ALICE_CHECKING) == 525_000
        assert "NO CASH DISPENSED - REVERSED" in c.text("#receipt")
        assert any("DISPENSE_FAULT" in line for line in c.panel.journal_tail)
        c.app.query_one(TabbedContent).active = "engineer"
        await c.until(lambda: "faults jam" in c.text("#devices"), "showed the jam")
        # The next customer finds cash withdrawal unavailable until the operator acts.
        await c.screen("welcome")
        await c.pilot.click("#insert-card")
        await c.screen("enter_pin")
        await c.keys("1", "2", "3", "4", "enter")
        await c.screen("main_menu")
        assert "Cash withdrawal unavailable" in c.text("#atm-screen")
        assert c.button("#key-F1") == "F1"


async def test_supervisor_balancing(host_config, tmp_path):
    async with open_console(host_config, tmp_path) as c:
        c.app.query_one(TabbedContent).active = "operator"
        await c.pilot.pause()
        await c.pilot.click("#supervisor")
        await c.screen("supervisor")
        assert "switch ON" in c.text("#supervisor-state")
        assert c.button("#key-F5") == "Balancing F5"
        await c.pilot.click("#sup-F5")
        await c.panel.wait_for(lambda p: p.screen is not None and p.screen.title == "Balancing")
        await c.pilot.pause()
        assert "BALANCED" in c.text("#atm-screen")
        receipt = c.text("#receipt")
        assert "BALANCING" in receipt and "C0 500-0-0-0=500 count 500" in receipt
        assert "C0 $20.00: loaded 500" in c.text("#counters")
        await c.keys("ctrl+s")  # the switch back: leave supervisor mode
        await c.screen("welcome")
        assert "switch off" in c.text("#supervisor-state")


async def test_more_time_warning_with_its_countdown(host_config, tmp_path):
    clock = Clock()
    # The customer's wait is real time (asyncio), the warning's countdown the injected clock.
    # Nobody types: the wait at the PIN runs out, so no key press of the test races the
    # timer, however slow the machine (typing the PIN first made it a race: the wait could
    # run out between two keys, and a key at the warning resumes).
    async with open_console(host_config, tmp_path, clock, key_timeout=0.3) as c:
        await c.pilot.click("#insert-card")
        await c.screen("more_time")
        assert c.panel.controller.previous_state == State.pin_entry
        screen = c.text("#atm-screen")
        assert "Do you need more time?" in screen and "ends in 30 seconds" in screen
        assert c.button("#key-F4") == "F4 Yes" and c.button("#key-F8") == "No F8"
        clock.advance(12)
        await c.panel.wait_for(lambda p: p.screen is not None and "18 sec" in p.screen.lines[0])
        await c.pilot.pause()
        assert "ends in 18 seconds" in c.text("#atm-screen")
        await c.keys("f4")  # yes: back where the customer was
        # By the transitions, not the state: the resumed wait may run out again at once.
        await c.panel.wait_for(lambda p: any(t.source == "more_time" for t in p.transitions))
        back = [str(t) for t in c.panel.transitions if t.source == "more_time"]
        assert back[0] == "more_time -> pin_entry (resume_pin_entry)"


async def test_supervisor_keys_are_the_controllers_and_enter_accepts_a_damaged_line(
    host_config, tmp_path
):
    # The operator's keypad offers every key supervisor mode honours (device.states).
    assert set(SUPERVISOR_KEYS) == set(CONTROLLER_SUPERVISOR_KEYS)
    async with open_console(host_config, tmp_path):
        pass  # a first run writes the journal (sign-on and the session lines)
    journal = tmp_path / "console" / "device" / "journal-ATM00001.log"
    lines = journal.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines, 1) if b"|" in line)
    lines[number - 1] = lines[number - 1].replace(b"|", b"!", 1)
    journal.write_bytes(b"\n".join(lines))
    bench = Bench(
        BenchOptions(work_dir=tmp_path / "console", device={"reconnect_delay": 0.05}),
        host_config,
    )
    panel = await bench.start()
    try:
        await panel.wait_for(lambda p: p.state == "fault")
        app = ConsoleApp(panel)
        async with app.run_test(size=SIZE) as pilot:
            c = Console(bench, panel, app, pilot)
            c.app.query_one(TabbedContent).active = "operator"
            await c.pilot.pause()
            await c.pilot.click("#supervisor")
            await c.screen("supervisor")
            assert f"journal line {number} damaged" in c.text("#atm-screen")
            assert c.button("#sup-ENTER") == "ENTER Accept damaged line"
            await c.pilot.click("#sup-ENTER")
            await panel.wait_for(
                lambda p: p.screen is not None and any("accepted" in x for x in p.screen.lines)
            )
            await c.pilot.pause()
            assert f"Line {number} accepted" in c.text("#atm-screen")
            await c.pilot.click("#sup-F8")
            await c.screen("welcome")
    finally:
        await bench.close()


async def test_cash_deposit_through_the_note_slot(host_config, tmp_path):
    async with open_console(host_config, tmp_path) as c:
        await c.pilot.click("#insert-card")
        await c.screen("enter_pin")
        await c.keys("1", "2", "3", "4", "enter")
        await c.screen("main_menu")
        assert c.button("#key-F5") == "Deposit cash F5"
        await c.keys("f5")
        await c.screen("select_account")
        await c.keys("f1")
        await c.screen("insert_notes")
        # A first note, then CANCEL: the note comes back to the slot, to be taken.
        await c.pilot.click("#note-2000")
        await c.panel.wait_for(lambda p: p.note_slot().escrow == [(2000, 1)])
        await c.settled()
        assert "in escrow: 1 x $20.00 = $20.00" in c.text("#note-slot")
        await c.keys("escape")
        await c.screen("take_notes")
        assert "given back, take them: 1 x $20.00" in c.text("#note-slot")
        await c.pilot.click("#take-notes")
        await c.screen("another")  # the card stays in: another transaction?
        assert c.text("#note-slot") == "Notes: empty"
        await c.keys("f4")  # yes
        await c.screen("main_menu")
        await c.keys("f5")
        await c.screen("select_account")
        await c.keys("f1")
        await c.screen("insert_notes")
        for cents in (10000, 10000, 5000, 5000):
            await c.pilot.click(f"#note-{cents}")
        await c.panel.wait_for(lambda p: p.screen is not None and "$300.00" in str(p.screen.lines))
        await c.keys("enter")
        await c.screen("confirm_deposit")
        await c.keys("f1")
        await c.panel.wait_for(lambda p: "$100.00 on hold" in str(p.screen and p.screen.lines))
        await c.pilot.pause()
        assert c.panel.screen is not None
        assert (
            c.panel.screen.lines[0] == "$300.00 deposited: $200.00 available now, $100.00 on hold"
        )
        assert "$200.00 available now" in " ".join(c.text("#atm-screen").split())
        await c.screen("take_card")
        await c.pilot.click("#take-card")
        await c.screen("welcome")
        receipt = c.text("#receipt")
        assert "BALANCE                $5,450.00" in receipt and "ON HOLD $100.00" in receipt
        assert c.panel.note_slot().stacked == [(10000, 2), (5000, 2)]


async def test_check_deposit_through_the_envelope_slot(host_config, tmp_path):
    async with open_console(host_config, tmp_path) as c:
        await c.pilot.click("#insert-card")
        await c.screen("enter_pin")
        await c.keys("1", "2", "3", "4", "enter")
        await c.screen("main_menu")
        assert c.button("#key-F6") == "Deposit check F6"
        await c.keys("f6")
        await c.screen("select_account")
        await c.keys("f1")
        await c.screen("check_amount")
        await c.keys("5", "0", "0", "enter")
        await c.screen("check_number")
        await c.keys("1", "0", "4", "2", "enter")
        await c.screen("insert_envelope")
        assert "0 envelope(s) in the bin" in c.text("#envelope-slot")
        await c.pilot.click("#insert-envelope")
        await c.screen("take_card")
        assert "1 envelope(s) in the bin" in c.text("#envelope-slot")
        await c.pilot.click("#take-card")
        await c.screen("welcome")
        receipt = c.text("#receipt")
        assert "CHECK NO 1042" in receipt and "AMOUNT                   $500.00" in receipt
