"""Checks that a rendered screen fits the display: no line wider than the box, and every word
of the screen's text shown whole (wrapped at word boundaries, never cut)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import atm.demo
from device.screens import Screen, render_text

WIDTH = 44


def problems(screen: Screen, rendered: str, width: int = WIDTH) -> list[str]:
    found = []
    for line in rendered.splitlines():
        if len(line) > width:
            found.append(f"{screen.id}: line wider than {width}: {line!r}")
    shown = set(rendered.replace("|", " ").split())
    texts = [screen.title, *screen.lines, *(label for label in screen.soft_keys.values())]
    if screen.input_label is not None:
        texts.append(screen.input_label)
    for text in texts:
        for word in text.split():
            if word not in shown:
                found.append(f"{screen.id}: word {word!r} cut or missing in\n{rendered}")
    return found


@pytest.fixture
def screens_fit(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Screen]]:
    """Records every screen the demo renders (through the real ``render_text``) and, at the
    end of the test, asserts that each fits the display with no word split."""
    seen: list[tuple[Screen, str]] = []

    def recording(screen: Screen, width: int = WIDTH) -> str:
        rendered = render_text(screen, width)
        seen.append((screen, rendered))
        return rendered

    monkeypatch.setattr(atm.demo, "render_text", recording)
    screens: list[Screen] = []
    yield screens
    screens.extend(screen for screen, _ in seen)
    assert seen, "no screen was rendered"
    found = [p for screen, rendered in seen for p in problems(screen, rendered)]
    assert not found, "\n".join(found[:5])
