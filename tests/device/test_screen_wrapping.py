"""Customer text is wrapped at word boundaries, never cut; soft keys too long for one row
take two; every screen of every demo script is checked in tests/atm/test_demo_scripts.py."""

from __future__ import annotations

from device import screens as S
from device.screens import render_text, wrap
from tests.screen_fit import problems


def test_wrap_breaks_between_words_only() -> None:
    text = "Your account has insufficient funds for this withdrawal; press ENTER to go on"
    lines = wrap(text, 40)
    assert all(len(line) <= 40 for line in lines)
    assert " ".join(lines) == text
    assert wrap("", 40) == [""]


def test_long_customer_lines_are_wrapped_not_cut() -> None:
    screen = S.fault("the cash dispenser reported a jam in cassette two; call for service")
    rendered = render_text(screen)
    assert problems(screen, rendered) == []
    assert "| (the cash dispenser reported a jam in    |" in rendered.splitlines()


def test_supervisor_reports_show_every_line_and_every_key() -> None:
    report = tuple(f"Cassette {n}: 480 x $20 loaded, 20 dispensed, 0 rejected" for n in (1, 2, 3))
    screen = S.supervisor(report, "Balancing")
    rendered = render_text(screen)
    assert problems(screen, rendered) == []
    for n in (1, 2, 3):
        assert f"Cassette {n}: 480 x $20 loaded, 20" in rendered
    assert "Suspect: not paid F6>" in rendered  # the widest soft key, whole


def test_every_screen_of_the_flow_fits() -> None:
    for screen in (
        S.out_of_service(),
        S.welcome(),
        S.enter_pin(4, retry=True),
        S.main_menu(cash=False, text="Your PIN has been changed"),
        S.new_pin(2, confirm=True, text="The two PINs did not match, please try again"),
        S.select_amount((2000, 4000, 10000, 20000), "55", "Amount not available, try again"),
        S.show_balance("Checking", 525_000, ("11/28 WITHDRAWAL -100.00",) * 5, receipt=False),
        S.card_retained("Your card has been retained for your security"),
        S.take_card("Your account has insufficient funds"),
    ):
        assert problems(screen, render_text(screen)) == [], screen.id
