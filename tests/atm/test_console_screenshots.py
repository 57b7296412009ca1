"""``scripts/console_screenshots.py`` still drives the console to every view it pictures, and
the pictures in ``docs/`` (shown by the README) are the ones it makes."""

from __future__ import annotations

import html
import re
from pathlib import Path

from scripts.console_screenshots import SHOTS, take_screenshots

ROOT = Path(__file__).resolve().parents[2]


def words(svg: str) -> str:
    """The text of a Textual SVG screenshot (its <text> elements), spaces restored."""
    return html.unescape(" ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))).replace(
        "\xa0", " "
    )


async def test_script_writes_every_screenshot_with_its_content(host_config, tmp_path):
    saved = await take_screenshots(tmp_path / "shots", host_config, tmp_path / "work")
    assert sorted(p.name for p in saved) == sorted(SHOTS)
    for path in saved:
        text = words(path.read_text())
        _, expected = SHOTS[path.name]
        missing = [w for w in expected if w not in text]
        assert missing == [], f"{path.name} lacks {missing}"
        assert "4000001234567899" not in text  # PAN masked everywhere on screen


def test_docs_hold_the_screenshots_the_readme_shows():
    readme = (ROOT / "README.md").read_text()
    for name, (_caption, expected) in SHOTS.items():
        path = ROOT / "docs" / name
        assert path.is_file(), f"run: .venv/bin/python -m scripts.console_screenshots ({name})"
        assert f"docs/{name}" in readme
        text = words(path.read_text())
        assert [w for w in expected if w not in text] == [], name
