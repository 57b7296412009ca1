"""Browser tests: the web front panel in a real headless Chromium (Debian's ``chromium``) driven
by Playwright for Python with ``executable_path`` (no browser download). They run in
``make test-browser`` (called by ``.ci/run``, which installs Chromium), not in ``make test``.
Without Chromium they are skipped on a developer's machine and fail under CI=true."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from atm.frontpanel import Bench, BenchOptions, FrontPanel
from atm.web import start_web
from host.config import HostConfig

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but Chromium is not installed (.ci/run installs it)", pytrace=False)
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@dataclass
class WebRig:
    bench: Bench
    panel: FrontPanel
    url: str
    browser: Any


@pytest.fixture
async def web(host_config: HostConfig, tmp_path: Path) -> AsyncIterator[WebRig]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    bench = Bench(
        BenchOptions(work_dir=tmp_path / "web", device={"reconnect_delay": 0.05}), host_config
    )
    panel = await bench.start()
    runner, port = await start_web(panel, 0)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_FLAGS, headless=True
            )
            try:
                yield WebRig(bench, panel, f"http://127.0.0.1:{port}/", browser)
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()
    finally:
        await runner.cleanup()
        await bench.close()
