"""Write PNG screenshots of the web front panel's main screens to ``docs/``.

    .venv/bin/python -m scripts.web_screenshots [--out docs]

It serves the real front panel (``atm.web``) on a host in this process and a simulated ATM,
opens it in headless Chromium (Debian's ``chromium`` through Playwright's ``executable_path``),
drives it like a person and saves one picture per view; at phone width too.
``tests/browser/test_web_screenshots.py`` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from atm.frontpanel import Bench, BenchOptions
from atm.web import start_web
from host.config import HostConfig

__all__ = ["SHOTS", "take_screenshots"]

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = {
    "web-panel.png": "the front panel at a desktop width: PIN entry after Alice's card",
    "web-cash.png": "cash in the tray by denomination",
    "web-phone.png": "the same panel at phone width",
    "web-receipt.png": "card slot, note and envelope slots, the receipt with its QR code",
}


async def _screen(page: Page, screen_id: str) -> None:
    await expect(page.locator("#screen")).to_have_attribute("data-screen", screen_id)


async def take_screenshots(out: Path, host_config: HostConfig, work: Path) -> list[Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("Chromium is not installed (apt-get install chromium)")
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    bench = Bench(BenchOptions(work_dir=work), host_config)
    panel = await bench.start()
    runner, port = await start_web(panel, 0)
    saved: list[Path] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"http://127.0.0.1:{port}/")
            await _screen(page, "welcome")
            await page.click("#insert-card")
            await _screen(page, "enter_pin")
            await page.keyboard.type("12")
            await expect(page.locator("#screen-input")).to_have_text("PIN: **")
            saved.append(out / "web-panel.png")
            await page.screenshot(path=str(saved[-1]), full_page=True)
            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            await phone.goto(f"http://127.0.0.1:{port}/")
            await _screen(phone, "enter_pin")
            saved.append(out / "web-phone.png")
            await phone.screenshot(path=str(saved[-1]))
            await phone.close()
            await page.keyboard.type("34")
            await page.keyboard.press("Enter")
            await _screen(page, "main_menu")
            for key, screen_id in (("F1", "select_account"), ("F1", "select_amount")):
                await page.click(f"#key-{key}")
                await _screen(page, screen_id)
            await page.click("#key-F4")
            await _screen(page, "take_cash")
            saved.append(out / "web-cash.png")
            await page.screenshot(path=str(saved[-1]), full_page=True)
            await page.click("#take-cash")
            await _screen(page, "take_card")
            await page.click("#take-card")
            await _screen(page, "welcome")
            await expect(page.locator("#receipt-qr-text")).to_contain_text("QR: ATM00001-")
            saved.append(out / "web-receipt.png")
            await page.locator(".slots").screenshot(path=str(saved[-1]))
            await browser.close()
    finally:
        await runner.cleanup()
        await bench.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNG files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="atm-web-shots-") as work:
        config = HostConfig.from_env(
            {"DATABASE_URL": f"sqlite:///{work}/host.db", "BCRYPT_ROUNDS": "4"}
        )
        for path in asyncio.run(take_screenshots(Path(args.out), config, Path(work) / "atm")):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
