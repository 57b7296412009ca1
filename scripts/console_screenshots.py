"""Write SVG screenshots of the console's main screens (``atm console``) to ``docs/``.

    .venv/bin/python -m scripts.console_screenshots [--out docs]

It runs the real console headless (Textual's pilot) on a host in this process and a simulated
ATM, drives it like a person (card, PIN, keys, fault panel, supervisor switch) and saves one
screenshot per view. ``tests/atm/test_console_screenshots.py`` runs it and checks what each
picture shows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Select, TabbedContent

from atm.console import ConsoleApp
from atm.frontpanel import Bench, BenchOptions, FrontPanel
from host.config import HostConfig

__all__ = ["SHOTS", "take_screenshots"]

ROOT = Path(__file__).resolve().parents[1]
SIZE = (180, 50)

# file -> (what it shows, words the picture must contain)
SHOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "console-customer.svg": (
        "The customer's front: main menu after the PIN, the engineer's link log",
        ("Select", "Withdrawal", "Balance", "0810", "Card", "slot"),
    ),
    "console-cash.svg": (
        "Cash in the tray by denomination, the withdrawal on the link",
        ("Take", "your", "cash", "$50.00", "0210"),
    ),
    "console-faults.svg": (
        "The fault panel: a dispenser jam, and the customer's notice",
        ("Inject", "jam", "Unable", "dispense", "Host", "down"),
    ),
    "console-operator.svg": (
        "Supervisor mode: balancing report on the screen and the receipt roll",
        ("Balancing", "BALANCED", "Supervisor", "Replenish", "counters"),
    ),
}


async def take_screenshots(out: Path, host_config: HostConfig, work: Path) -> list[Path]:
    """Run the console and save every screenshot in ``SHOTS`` under ``out``."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    bench = Bench(BenchOptions(work_dir=work, device={"reconnect_delay": 0.05}), host_config)
    panel = await bench.start()
    saved: list[Path] = []
    try:
        app = ConsoleApp(panel)
        async with app.run_test(size=SIZE) as pilot:

            async def until(check: Callable[[FrontPanel], bool]) -> None:
                await panel.wait_for(check)
                await pilot.pause()

            def on(screen_id: str) -> Callable[[FrontPanel], bool]:
                return lambda p: p.screen is not None and p.screen.id == screen_id

            async def shot(name: str) -> None:
                svg = app.export_screenshot(title=f"atm console: {SHOTS[name][0]}", simplify=True)
                await asyncio.to_thread((out / name).write_text, svg)
                saved.append(out / name)

            await until(on("welcome"))
            await pilot.click("#insert-card")
            await until(on("enter_pin"))
            await pilot.press("1", "2", "3", "4", "enter")
            await until(on("main_menu"))
            await shot("console-customer.svg")

            await pilot.press("f1")
            await until(on("select_account"))
            await pilot.press("f1")
            await until(on("select_amount"))
            await pilot.press("f4")
            await until(on("take_cash"))
            await until(lambda p: bool(p.cash_tray()))
            await shot("console-cash.svg")
            await pilot.click("#take-cash")
            await until(on("take_card"))
            await pilot.click("#take-card")
            await until(on("welcome"))

            app.query_one(TabbedContent).active = "faults"
            await pilot.pause()
            app.query_one("#fault-dispenser", Select).value = "jam"
            await pilot.click("#inject-dispenser")
            await until(lambda p: "jam" in p.device_state("dispenser").faults)
            await pilot.click("#insert-card")
            await until(on("enter_pin"))
            await pilot.press("1", "2", "3", "4", "enter")
            await until(on("main_menu"))
            await pilot.press("f1")
            await until(on("select_account"))
            await pilot.press("f1")
            await until(on("select_amount"))
            await pilot.press("f3")
            await until(
                lambda p: p.screen is not None and "Unable to dispense" in " ".join(p.screen.lines)
            )
            await shot("console-faults.svg")
            await until(on("take_card"))
            await pilot.click("#take-card")
            await until(on("welcome"))
            await panel.clear("dispenser")

            app.query_one(TabbedContent).active = "operator"
            await pilot.pause()
            await pilot.click("#supervisor")
            await until(on("supervisor"))
            await pilot.click("#sup-F5")
            await until(lambda p: p.screen is not None and p.screen.title == "Balancing")
            await until(lambda p: any(r and r[0] == "BALANCING" for r in p.receipts))
            await shot("console-operator.svg")
            await pilot.click("#supervisor")
            await until(on("welcome"))
    finally:
        await bench.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="directory (docs/)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="atm-shots-") as tmp:
        config = HostConfig.from_env(
            {
                "DATABASE_URL": f"sqlite:///{Path(tmp) / 'host.db'}",
                "BCRYPT_ROUNDS": "4",
                "ENVIRONMENT": "testing",
            }
        )
        for path in asyncio.run(take_screenshots(args.out, config, Path(tmp) / "console")):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
