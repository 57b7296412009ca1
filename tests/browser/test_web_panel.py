"""The ATM front panel in a real browser: a withdrawal by clicks and key presses ending with
the new balance on the receipt, wrong PIN three times, a dispenser jam injected from the fault
panel that shows the fault screen and a reversal on the receipt, two tabs in step (one drives,
one watches), and what the page may never receive."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.qr import read_png

ALICE_CHECKING = "1000-0001-0001"


async def open_page(web: Any) -> tuple[Page, list[str]]:
    """A tab on the panel; returns it and every WebSocket frame it received."""
    page = await web.browser.new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(str(data))))
    await page.goto(web.url)
    await expect(page.locator("#screen-title")).to_have_text("Welcome")
    return page, frames


async def screen(page: Page, screen_id: str) -> None:
    await expect(page.locator("#screen")).to_have_attribute("data-screen", screen_id)


async def test_withdrawal_by_clicks_and_keys(web):
    page, frames = await open_page(web)
    await expect(page.locator("#role")).to_contain_text("you drive this ATM")
    await page.click("#insert-card")  # Alice, the first seeded card
    await screen(page, "enter_pin")
    await page.keyboard.type("123")
    await expect(page.locator("#screen-input")).to_have_text("PIN: ***")
    await page.keyboard.press("4")
    await page.keyboard.press("Enter")
    await screen(page, "main_menu")
    await expect(page.locator("#key-F1")).to_have_text("F1 Withdrawal")
    await page.click("#key-F1")
    await screen(page, "select_account")
    await page.keyboard.press("F1")  # checking, from the keyboard
    await screen(page, "select_amount")
    await page.click("#key-F4")  # $100.00
    await screen(page, "take_cash")
    await expect(page.locator("#tray")).to_contain_text("2 x $50.00")
    await page.click("#take-cash")
    await screen(page, "take_card")
    await expect(page.locator("#card-slot")).to_contain_text("card at the slot")
    await page.click("#take-card")
    await screen(page, "welcome")
    receipt = page.locator("#receipt")
    await expect(receipt).to_contain_text("BALANCE                $5,150.00")
    await expect(receipt).to_contain_text("400000******7899")
    assert web.panel.balance(ALICE_CHECKING) == 515_000
    # The receipt's QR code (SVG drawn by the server) reads back, from a screenshot, to the
    # transaction reference: terminal, STAN and RRN as the receipt prints them.
    lines = (await receipt.text_content() or "").splitlines()
    reference = "-".join(
        next(x for x in lines if x.startswith(f"{name} ")).split()[-1]
        for name in ("TERMINAL", "STAN", "RRN")
    )
    await expect(page.locator("#receipt-qr-text")).to_have_text(f"QR: {reference}")
    assert read_png(await page.locator("#receipt-qr-code").screenshot()) == [reference]
    # The link log drawer shows the decoded messages, PAN masked, PIN block hidden.
    await page.click("#drawer summary")
    await expect(page.locator("#link-log")).to_contain_text("0210 financial response")
    everything = "".join(frames)
    assert "4000001234567899" not in everything  # never a full PAN
    assert '"input": "1' not in everything  # never a PIN digit on the screen's input line
    assert "[8 bytes hidden]" in everything


async def test_wrong_pin_three_times(web):
    page, _ = await open_page(web)
    await page.select_option("#card-pick", "bob")
    await page.click("#insert-card")
    await screen(page, "enter_pin")
    for pin in ("1111", "2222"):
        await page.keyboard.type(pin)
        await page.keyboard.press("Enter")
        if pin == "1111":
            await screen(page, "main_menu")
            await page.click("#key-F2")  # balance
            await screen(page, "select_account")
            await page.click("#key-F1")
        await screen(page, "pin_retry")
        await expect(page.locator("#screen-lines")).to_contain_text("Incorrect PIN.")
    await page.keyboard.type("3333")
    await page.keyboard.press("Enter")
    await screen(page, "take_card")
    await expect(page.locator("#screen-lines")).to_contain_text("PIN tries exceeded")
    await page.click("#take-card")
    await screen(page, "welcome")
    assert web.panel.link_entries("RC 75")


async def test_dispenser_jam_from_the_fault_panel(web):
    page, _ = await open_page(web)
    await page.select_option("#fault-device", "dispenser")
    await page.select_option("#fault-name", "jam")
    await page.click("#inject")
    await expect(page.locator("#devices")).to_contain_text("faults jam")
    await page.click("#insert-card")
    await screen(page, "enter_pin")
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await screen(page, "main_menu")
    await page.click("#key-F1")
    await screen(page, "select_account")
    await page.click("#key-F1")
    await screen(page, "select_amount")
    await page.click("#key-F4")
    await expect(page.locator("#screen-lines")).to_contain_text("Unable to dispense cash")
    await screen(page, "take_card")
    await page.click("#take-card")
    await expect(page.locator("#receipt")).to_contain_text("NO CASH DISPENSED - REVERSED")
    await web.panel.wait_for(lambda p: bool([e for e in p.link_log if e.mti == "0430"]))
    assert web.panel.balance(ALICE_CHECKING) == 525_000


async def test_two_tabs_stay_in_step_and_only_one_drives(web):
    driver, _ = await open_page(web)
    watcher, _ = await open_page(web)
    await expect(watcher.locator("#role")).to_contain_text("watching")
    await expect(watcher.locator("#insert-card")).to_be_disabled()
    await expect(driver.locator("#role")).to_contain_text("2 tabs open")
    await driver.click("#insert-card")
    await screen(watcher, "enter_pin")  # the watcher sees what the driver did
    await driver.keyboard.type("12")
    await expect(watcher.locator("#screen-input")).to_have_text("PIN: **")
    await watcher.keyboard.type("9")  # refused: the watcher's keys do not reach the ATM
    await expect(watcher.locator("#notices")).to_contain_text("this tab watches")
    await expect(driver.locator("#screen-input")).to_have_text("PIN: **")
    await driver.keyboard.press("Escape")  # cancel
    await screen(watcher, "take_card")
    await driver.close()  # the watcher takes over
    await expect(watcher.locator("#role")).to_contain_text("you drive this ATM")
    await watcher.click("#take-card")
    await screen(watcher, "welcome")


async def test_a_page_from_another_origin_cannot_open_the_socket(web):
    page = await web.browser.new_page()
    await page.goto("about:blank")
    result = await page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onerror = () => resolve("refused");
        })""",
        web.url.replace("http", "ws") + "ws",
    )
    assert result == "refused"


async def test_cash_deposit_through_the_note_slot(web):
    page, _ = await open_page(web)
    await page.click("#insert-card")  # Alice
    await screen(page, "enter_pin")
    await page.keyboard.type("1234")
    await page.keyboard.press("Enter")
    await screen(page, "main_menu")
    await expect(page.locator("#key-F5")).to_have_text("F5 Deposit cash")
    await page.click("#key-F5")
    await screen(page, "select_account")
    await page.click("#key-F1")  # checking
    await screen(page, "insert_notes")
    for cents in (10000, 10000, 5000, 5000):
        await page.click(f"#note-{cents}")
    await expect(page.locator("#screen-lines")).to_contain_text("Counted: 4 note(s), $300.00")
    await expect(page.locator("#note-slot")).to_have_attribute("data-escrow", "$300.00")
    await expect(page.locator("#note-slot")).to_contain_text("2 x $100.00, 2 x $50.00")
    await page.keyboard.press("Enter")
    await screen(page, "confirm_deposit")
    await page.click("#key-F1")  # confirm $300.00
    # $200 is available at once, $100 waits for the next business day.
    await expect(page.locator("#screen-lines")).to_contain_text("$300.00 deposited")
    await expect(page.locator("#screen-lines")).to_contain_text("$100.00 on hold")
    await expect(page.locator("#screen-lines")).to_contain_text("$200.00 available now")
    await expect(page.locator("#note-slot")).to_have_text("empty")
    await screen(page, "take_card")
    await page.click("#take-card")
    await screen(page, "welcome")
    receipt = page.locator("#receipt")
    await expect(receipt).to_contain_text("AMOUNT                   $300.00")
    await expect(receipt).to_contain_text("BALANCE                $5,450.00")  # available
    await expect(receipt).to_contain_text("ON HOLD $100.00")
    assert web.panel.note_slot().stacked == [(10000, 2), (5000, 2)]
