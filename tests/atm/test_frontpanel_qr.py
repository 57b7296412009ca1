"""The receipt's QR code as the views draw it (SVG for the web panel, block characters for
the console) reads back, with a real decoder, to the transaction reference."""

from __future__ import annotations

import re

import pytest

from atm.frontpanel.qr import QUIET_ZONE, qr_blocks, qr_matrix, qr_svg
from device.receipt import ReceiptData, receipt_reference
from tests.qr import read_blocks

REFERENCE = "ATM00001-000042-000000000042"


def test_blocks_read_back_to_the_text():
    lines = qr_blocks(REFERENCE)
    side = len(qr_matrix(REFERENCE)) + 2 * QUIET_ZONE
    assert all(len(line) == side for line in lines)
    assert len(lines) == (side + 1) // 2
    assert read_blocks(lines) == [REFERENCE]


def test_svg_has_one_square_per_dark_module():
    svg = qr_svg(REFERENCE)
    dark = sum(sum(row) for row in qr_matrix(REFERENCE))
    assert len(re.findall(r"h1v1h-1z", svg)) == dark
    assert svg.startswith("<svg") and 'aria-label="QR code' in svg


def test_too_long_or_empty_text_is_a_clear_error():
    with pytest.raises(ValueError, match="too long"):
        qr_matrix("x" * 5000)
    with pytest.raises(ValueError, match="needs some text"):
        qr_matrix("")


def test_reference_is_terminal_stan_and_rrn():
    import datetime as dt

    data = ReceiptData("ATM00001", dt.datetime(2026, 1, 1), "4000001234567899", "000042", "W", "OK")
    assert receipt_reference(data) == "ATM00001-000042"
    with_rrn = ReceiptData(
        "ATM00001", dt.datetime(2026, 1, 1), "4000001234567899", "000042", "W", "OK",
        rrn="000000000042",
    )  # fmt: skip
    assert receipt_reference(with_rrn) == REFERENCE
    no_stan = ReceiptData("ATM00001", dt.datetime(2026, 1, 1), "4000001234567899", "", "", "")
    assert receipt_reference(no_stan) == ""
