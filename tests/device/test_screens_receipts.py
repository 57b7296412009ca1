"""The screen model, the receipt layout and the mini-statement (DE 62)."""

import datetime as dt

import pytest

from device import screens as S
from device.receipt import ReceiptData, layout_receipt
from device.screens import render_text
from device.statement import StatementError, parse_mini_statement


def test_pin_input_is_masked_in_every_rendering():
    screen = S.enter_pin(4)
    assert screen.input_masked and screen.input_display == "****"
    assert "PIN: ****" in render_text(screen)
    assert S.new_pin(3, confirm=True).input_display == "***"


def test_soft_keys_are_rendered_on_both_sides():
    text = render_text(S.main_menu())
    assert "<F1 Withdrawal" in text and "Cancel F8>" in text
    assert "<F1 Withdrawal" not in render_text(S.main_menu(cash=False))


def test_receipt_layout():
    lines = layout_receipt(
        ReceiptData(
            terminal_id="ATM00001",
            moment=dt.datetime(2026, 11, 28, 15, 4, 5, tzinfo=dt.UTC),
            pan="4000001234567899",
            stan="000042",
            transaction="TRANSFER",
            response_text="Approved",
            amount_cents=25_000,
            balance_cents=500_000,
            account="Checking",
            to_account="Savings",
            rrn="263321234567",
            auth_code="123456",
        )
    )
    assert all(len(line) <= 32 for line in lines)
    text = "\n".join(lines)
    for expected in (
        "DATE                  2026-11-28",
        "TIME                    15:04:05",
        "TERMINAL                ATM00001",
        "STAN                      000042",
        "CARD            400000******7899",
        "FROM                    Checking",
        "TO                       Savings",
        "AMOUNT                   $250.00",
        "BALANCE                $5,000.00",
        "RESULT                  APPROVED",
    ):
        assert expected in text
    assert "4000001234567899" not in text


ENTRIES = "20261128D000000010000ATM WITHDRAWAL     20261127C000000250000SALARY             "


def test_mini_statement_parses_and_renders():
    first, second = parse_mini_statement(ENTRIES)
    assert (first.date, first.cents, first.description) == (
        dt.date(2026, 11, 28),
        -10_000,
        "ATM WITHDRAWAL",
    )
    assert second.cents == 250_000
    assert first.line() == "11/28 ATM WITHDRAWAL    -$100.00"
    assert len(first.line()) == 32
    screen = S.show_balance("Checking", 500_000, (first.line(), second.line()))
    assert "Recent transactions:" in screen.lines


@pytest.mark.parametrize("bad", ["x" * 39, ENTRIES * 3, "20261128X000000010000ATM WITHDRAWAL     "])
def test_bad_mini_statement_is_refused(bad):
    with pytest.raises(StatementError):
        parse_mini_statement(bad)
