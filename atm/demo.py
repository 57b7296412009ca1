"""The demo: a fresh host on embedded SQLite, one simulated ATM over a real TCP socket, and a
scripted customer.

A script is data: the card to insert and a list of steps, each "when this screen shows, do
this". The runner prints every screen, every host-link message (PAN masked, PIN block never
shown), the receipt, and the balances before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from atm.devices import DEVICE_SETS, KINDS, CardSlot, CashSlot, Keypad, open_kit
from device.config import DeviceConfig
from device.controller import AtmController
from device.events import DeviceEvent, LinkMessage, ReceiptPrinted, ScreenShown, StateChanged
from device.screens import money, render_text
from host.app import Host
from host.config import HostConfig
from protocol.display import describe

__all__ = ["SCRIPTS", "Customer", "DemoResult", "DemoScript", "Step", "run_demo"]

TRACKS = {
    "alice": "4000001234567899=30121010000000000000",
    "bob": "4000009876543219=30121010000000000000",
    "charlie": "4000005555555557=30121010000000000000",
    "expired": "4000001111222238=24011010000000000000",
    "stolen": "4000009999999991=30121010000000000000",
}


@dataclass
class Customer:
    """The person at the ATM, acting on the simulated devices' customer side."""

    card_reader: CardSlot
    pin_pad: Keypad
    dispenser: CashSlot

    def insert(self, who: str) -> None:
        self.card_reader.insert(TRACKS[who])

    def keys(self, *keys: str) -> None:
        self.pin_pad.press(*keys)

    def type(self, digits: str, then: str = "ENTER") -> None:
        self.pin_pad.type_digits(digits)
        self.pin_pad.press(then)

    def take_cash(self) -> None:
        self.dispenser.take_cash()

    def take_card(self) -> None:
        self.card_reader.take_card()


@dataclass(frozen=True)
class Step:
    screen: str
    action: Callable[[Customer], None]
    says: str


@dataclass(frozen=True)
class DemoScript:
    name: str
    description: str
    steps: tuple[Step, ...]
    account: str
    expected_change_cents: int


SCRIPTS: dict[str, DemoScript] = {
    s.name: s
    for s in (
        DemoScript(
            "withdraw-alice",
            "Alice withdraws $100.00 from checking and takes cash, receipt and card",
            (
                Step("welcome", lambda c: c.insert("alice"), "inserts Alice's card"),
                Step("enter_pin", lambda c: c.type("1234"), "types her PIN and ENTER"),
                Step("main_menu", lambda c: c.keys("F1"), "presses F1 Withdrawal"),
                Step("select_account", lambda c: c.keys("F1"), "presses F1 Checking"),
                Step("select_amount", lambda c: c.keys("F4"), "presses F4 $100.00"),
                Step("take_cash", lambda c: c.take_cash(), "takes the cash"),
                Step("take_card", lambda c: c.take_card(), "takes the card"),
            ),
            account="1000-0001-0001",
            expected_change_cents=-10_000,
        ),
        DemoScript(
            "wrong-pin",
            "Alice types a wrong PIN for a balance inquiry, sees the wrong-PIN screen, cancels",
            (
                Step("welcome", lambda c: c.insert("alice"), "inserts Alice's card"),
                Step("enter_pin", lambda c: c.type("9999"), "types a wrong PIN and ENTER"),
                Step("main_menu", lambda c: c.keys("F2"), "presses F2 Balance"),
                Step("select_account", lambda c: c.keys("F1"), "presses F1 Checking"),
                Step("pin_retry", lambda c: c.keys("CANCEL"), "presses CANCEL"),
                Step("take_card", lambda c: c.take_card(), "takes the card"),
            ),
            account="1000-0001-0001",
            expected_change_cents=0,
        ),
        DemoScript(
            "balance-bob",
            "Bob checks his checking balance and asks for a receipt",
            (
                Step("welcome", lambda c: c.insert("bob"), "inserts Bob's card"),
                Step("enter_pin", lambda c: c.type("5678"), "types his PIN and ENTER"),
                Step("main_menu", lambda c: c.keys("F2"), "presses F2 Balance"),
                Step("select_account", lambda c: c.keys("F1"), "presses F1 Checking"),
                Step("balance", lambda c: c.keys("F4"), "presses F4 Receipt"),
                Step("take_card", lambda c: c.take_card(), "takes the card"),
            ),
            account="1000-0002-0001",
            expected_change_cents=0,
        ),
    )
}


@dataclass
class DemoResult:
    completed: bool
    balance_before: int
    balance_after: int
    receipts: list[list[str]] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.completed


class _Printer:
    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet

    def __call__(self, text: str = "") -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)


async def run_demo(
    script: DemoScript,
    *,
    out: TextIO,
    database_url: str | None = None,
    work_dir: Path | None = None,
    host_config: HostConfig | None = None,
    quiet: bool = False,
    timeout: float = 60.0,
    devices: str = "sim",
) -> DemoResult:
    say = _Printer(out, quiet)
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atm-demo-")))
        url = database_url or f"sqlite:///{work_dir / 'host.db'}"
        base = host_config or HostConfig.from_env({})
        config = HostConfig(**{**base.__dict__, "database_url": url})
        return await _run(script, config, work_dir, say, timeout, devices)
    raise AssertionError("unreachable")


async def _run(
    script: DemoScript,
    config: HostConfig,
    work_dir: Path,
    say: _Printer,
    timeout: float,
    devices: str = "sim",
) -> DemoResult:
    host = Host(config)
    say(f"== demo '{script.name}': {script.description}")
    say(f"== host database {config.database_url}")
    await asyncio.to_thread(host.upgrade_and_seed)
    port = await host.start("127.0.0.1", 0)
    say(f"== host listening on 127.0.0.1:{port}")
    before = host.balance(script.account)
    say(f"== balance of {script.account} before: {money(before)}")

    device_config = DeviceConfig(
        port=port, state_dir=work_dir / "device", terminal_pin_key=config.terminal_pin_key
    )
    scheme = DEVICE_SETS[devices]
    kit = await open_kit(dict.fromkeys(KINDS, scheme), device_config)
    if scheme != "sim":
        for kind, url in kit.urls.items():
            say(f"== {kind} on a serial simulator at {url}")
    assert kit.card_reader and kit.pin_pad and kit.dispenser
    reader, pin_pad, dispenser = kit.card_reader, kit.pin_pad, kit.dispenser
    controller = AtmController(device_config, kit.devices)
    customer = Customer(reader, pin_pad, dispenser)
    result = DemoResult(False, before, before)
    done = asyncio.Event()
    steps = list(script.steps)
    last_screen = ""

    def on_event(event: DeviceEvent) -> None:
        nonlocal last_screen
        if isinstance(event, ScreenShown):
            text = render_text(event.screen)
            if text != last_screen:
                say(text)
                last_screen = text
            result.screens.append(event.screen.id)
            if steps and event.screen.id == steps[0].screen:
                step = steps.pop(0)
                say(f"   [customer {step.says}]")
                asyncio.get_running_loop().call_soon(step.action, customer)
            elif not steps and event.screen.id == "welcome":
                done.set()
        elif isinstance(event, LinkMessage):
            arrow = "ATM -> HOST" if event.direction == "send" else "HOST -> ATM"
            say(f"-- {arrow}  {describe(event.message)}")
        elif isinstance(event, ReceiptPrinted):
            result.receipts.append(list(event.lines))
        elif isinstance(event, StateChanged):
            pass

    controller.events.subscribe(on_event)
    runner = asyncio.create_task(controller.run())
    try:
        await asyncio.wait_for(done.wait(), timeout)
        result.completed = True
    except TimeoutError:
        say(f"!! script stopped: still waiting for screen '{steps[0].screen if steps else '?'}'")
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        result.journal = [line for line in controller.journal.path.read_text().splitlines()]
        result.balance_after = host.balance(script.account)
        await host.close()
        kit.close()
    for receipt in result.receipts:
        say("== receipt")
        for line in receipt:
            say(f"   {line}")
    if not result.receipts:
        say("== no receipt printed")
    say(f"== balance of {script.account} before: {money(before)}")
    say(f"== balance of {script.account} after:  {money(result.balance_after)}")
    counts = ", ".join(f"{money(c.denomination_cents)} x {c.count}" for c in dispenser.cassettes)
    say(f"== dispenser cassettes: {counts}")
    change = result.balance_after - before
    if result.completed and change != script.expected_change_cents:
        say(f"!! expected a change of {script.expected_change_cents} cents, saw {change}")
        result.completed = False
    return result
