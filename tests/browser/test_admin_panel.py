"""The bank operations panel (/admin/ on the host's ops port) in a real headless Chromium:
a wrong password, then log in, freeze an account from the accounts page, see the withdrawal
declined and the freeze in the audit log; a viewer is offered no change; an admin manages
operators (create, role, deactivate, password reset, all in the audit log) and a new operator
must change the password before anything else; the page is the host's own (CSP, no CDN).
Writes docs/admin-panel.png when ATM_WRITE_SCREENSHOTS=1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from sqlalchemy import func, select

from host.admin.models import OperatorSession
from host.admin.operators import create_operator
from host.app import Host
from host.config import HostConfig
from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path
from tests.conftest import TEST_ENV
from tests.host.conftest import ALICE_CHECKING, Requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "operator-password-2"


@dataclass
class PanelRig:
    host: Host
    url: str
    browser: Any


@pytest.fixture
async def panel(sqlite_url: str, tmp_path: Path) -> AsyncIterator[PanelRig]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    statements = str(tmp_path / "statements")
    config = HostConfig.from_env(
        {**TEST_ENV, "DATABASE_URL": sqlite_url, "STATEMENT_OUTPUT_DIR": statements}
    )
    host = Host(config)
    with host.sessions.begin() as session:
        for name, role in (("otto", "operator"), ("vera", "viewer"), ("ada", "admin")):
            create_operator(session, name, role, PASSWORD, rounds=4, now=dt.datetime.now(dt.UTC))
    port = await host.start_ops("127.0.0.1", 0)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_FLAGS, headless=True
            )
            try:
                yield PanelRig(host, f"http://127.0.0.1:{port}/admin/", browser)
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()
    finally:
        await host.close()


async def log_in(page: Page, url: str, name: str, password: str = PASSWORD) -> None:
    await page.goto(url)
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-name", name)
    await page.fill("#login-password", password)
    await page.click("#login-submit")


async def test_log_in_freeze_an_account_and_see_it_in_the_audit_log(panel: PanelRig):
    page = await panel.browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # a script that threw
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await log_in(page, panel.url, "otto", "not-the-password")
    await expect(page.locator("#login-error")).to_have_text("wrong operator name or password")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#who")).to_have_text("otto (operator)")
    await expect(page.locator("#login-form")).to_be_hidden()
    await expect(page.locator("#fig-customers")).to_have_text("3")
    await expect(page.locator("#fig-balance")).to_have_text("$18,700.75")

    await page.click("nav a[data-page=accounts]")
    row = page.locator(f"tr[data-account='{ALICE_CHECKING}']")
    await expect(row).to_contain_text("open")
    await row.get_by_role("button", name="Freeze").click()
    await expect(page.locator("#notice")).to_have_text(f"account {ALICE_CHECKING} frozen")
    await expect(row).to_contain_text("frozen")
    await expect(row.get_by_role("button", name="Unfreeze")).to_be_visible()

    # The ATM feels it on its next request: declined 78, nothing moves.
    outcome = await asyncio.to_thread(panel.host.service.authorize, Requests().withdrawal(2_000))
    assert outcome.response_code == "78"
    assert panel.host.balance(ALICE_CHECKING) == 525_000

    await page.click("nav a[data-page=audit]")
    await page.fill("#audit-action", "account.")
    await page.click("#audit-form button[type=submit]")
    first = page.locator("#audit tbody tr").first
    await expect(first).to_contain_text("account.freeze")
    await expect(first).to_contain_text("otto (operator)")
    await expect(first).to_contain_text("web 127.0.0.1")
    await expect(first).to_contain_text(f"account {ALICE_CHECKING}")
    await expect(first).to_contain_text('{"status":"open",')
    await expect(first).to_contain_text('→ {"status":"frozen",')
    await expect(page.locator("#audit tbody tr")).to_have_count(1)
    csv_link = await page.get_attribute("#audit-csv", "href")
    assert csv_link == "/admin/api/audit.csv?action=account."
    if os.environ.get("ATM_WRITE_SCREENSHOTS") == "1":
        await page.click("nav a[data-page=accounts]")
        await expect(row).to_contain_text("frozen")
        await page.set_viewport_size({"width": 1100, "height": 520})
        await page.screenshot(path=str(ROOT / "docs" / "admin-panel.png"), full_page=False)
    assert all(url.startswith(panel.url.removesuffix("/admin/")) for url in requests)
    assert errors == []

    await page.click("#logout")
    await expect(page.locator("#login-form")).to_be_visible()
    await page.reload()
    await expect(page.locator("#login-form")).to_be_visible()


async def test_a_viewer_is_offered_no_change(panel: PanelRig):
    page = await panel.browser.new_page()
    await log_in(page, panel.url, "vera")
    await expect(page.locator("#who")).to_have_text("vera (viewer)")
    await page.click("nav a[data-page=accounts]")
    row = page.locator(f"tr[data-account='{ALICE_CHECKING}']")
    await expect(row).to_contain_text("open")
    await expect(row.get_by_role("button", name="Freeze")).to_be_hidden()
    await expect(page.locator("#account-form")).to_be_hidden()
    # Even a request sent by hand from the page is refused.
    status = await page.evaluate(
        """async (number) => (await fetch(`/admin/api/accounts/${number}/freeze`, {
             method: "POST", headers: {"Content-Type": "application/json"}, body: "{}",
           })).status""",
        ALICE_CHECKING,
    )
    assert status == 403
    assert panel.host.balance(ALICE_CHECKING) == 525_000


async def test_an_admin_manages_operators_and_a_new_one_changes_the_password(panel: PanelRig):
    page = await panel.browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, panel.url, "ada")
    await expect(page.locator("#who")).to_have_text("ada (admin)")
    await page.click("nav a[data-page=operators]")
    rows = page.locator("#operators tbody tr")
    await expect(rows).to_have_count(3)
    await expect(page.locator("tr[data-operator=ada]")).to_contain_text("(you)")

    await page.fill("#operator-name", "nina")
    await page.select_option("#operator-role", "viewer")
    await page.fill("#operator-password", "nina-first-password")
    await page.click("#operator-form button[type=submit]")
    await expect(page.locator("#notice")).to_have_text(
        "operator nina created (viewer): they change the password at first login"
    )
    await expect(page.locator("tr[data-operator=nina]")).to_contain_text("password change due")

    otto = page.locator("tr[data-operator=otto]")
    await otto.get_by_label("role of otto").select_option("admin")
    await otto.get_by_role("button", name="Set role").click()
    await expect(page.locator("#notice")).to_have_text("operator otto is now admin")
    await expect(otto.locator("td").nth(1)).to_have_text("admin")

    vera = page.locator("tr[data-operator=vera]")
    await vera.get_by_role("button", name="Deactivate").click()
    await expect(vera).to_contain_text("deactivated")
    await expect(vera.get_by_role("button", name="Reactivate")).to_be_visible()

    await page.select_option("#reset-name", "otto")
    await page.fill("#reset-password", "otto-reset-password")
    await page.click("#reset-form button[type=submit]")
    await expect(page.locator("#notice")).to_have_text(
        "password of otto reset: they change it at next login"
    )
    await expect(otto).to_contain_text("password change due")

    await page.click("nav a[data-page=audit]")
    await page.fill("#audit-action", "operator.")
    await page.fill("#audit-actor", "ada")
    await page.click("#audit-form button[type=submit]")
    actions = page.locator("#audit tbody tr td:nth-child(4)")
    await expect(actions).to_have_text(
        [
            "operator.reset_password",
            "operator.deactivate",
            "operator.set_role",
            "operator.create",
            "operator.login",
        ]
    )
    await expect(page.locator("#audit tbody")).not_to_contain_text("otto-reset-password")

    # The new operator, in another browser: the password change comes first.
    context = await panel.browser.new_context()
    nina = await context.new_page()
    nina.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(nina, panel.url, "nina", "nina-first-password")
    await expect(nina.locator("#password-page")).to_be_visible()
    await expect(nina.locator("#app")).to_be_hidden()
    await expect(nina.locator("#password-cancel")).to_be_hidden()
    await nina.fill("#password-current", "nina-first-password")
    await nina.fill("#password-new", "nina-own-password")
    await nina.fill("#password-again", "nina-own-password")
    await nina.click("#password-submit")
    await expect(nina.locator("#app")).to_be_visible()
    await expect(nina.locator("#who")).to_have_text("nina (viewer)")
    await expect(nina.locator("#notice")).to_have_text("your password is changed")
    await expect(nina.locator("nav a[data-page=operators]")).to_be_hidden()
    await context.close()
    assert errors == []


EVIL_PAGE = """<!doctype html><title>win a prize</title>
<form id="f" method="post" enctype="text/plain" action="{login}">
<input type="hidden" name='{{"name": "otto", "password": "{password}", "x": "' value='"}}'>
</form><script>document.getElementById("f").submit()</script>"""


async def test_a_login_from_another_site_is_refused(panel: PanelRig):
    """Login CSRF in a real browser: a page on another site (localhost is not 127.0.0.1)
    submits a form logging the visitor in as otto. The host refuses it, says why, and the
    browser holds no admin session."""
    login = panel.url + "api/login"
    page_text = EVIL_PAGE.format(login=login, password=PASSWORD)

    async def evil(request: web.Request) -> web.Response:
        return web.Response(text=page_text, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", evil)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        context = await panel.browser.new_context()
        page = await context.new_page()
        await page.goto(f"http://localhost:{port}/")
        await page.wait_for_url(login)
        await expect(page.locator("body")).to_contain_text(
            "refused: the request came from another site (Sec-Fetch-Site: cross-site)"
        )
        assert [c for c in await context.cookies() if c["name"] == "atm_admin"] == []
        await page.goto(panel.url)
        await expect(page.locator("#login-form")).to_be_visible()
        await context.close()
    finally:
        await runner.cleanup()
    with panel.host.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OperatorSession)) == 0
