"""``scripts/web_screenshots.py`` still drives the panel and writes every picture the README
and docs/web.md show."""

from pathlib import Path

from scripts.web_screenshots import ROOT, SHOTS, take_screenshots
from tests.browser.conftest import chromium_path


async def test_screenshots_are_written(host_config, tmp_path):
    chromium_path()  # skip (or fail under CI) without Chromium
    saved = await take_screenshots(tmp_path / "shots", host_config, tmp_path / "work")
    check_pictures(saved)


def check_pictures(saved: list[Path]) -> None:
    assert sorted(p.name for p in saved) == sorted(SHOTS)
    for path in saved:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
        assert (ROOT / "docs" / path.name).exists(), f"docs/{path.name} missing: run the script"
    assert Path(ROOT / "README.md").read_text().count("docs/web-panel.png") == 1
