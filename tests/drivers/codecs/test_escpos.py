"""ESC/POS codec: golden bytes of each command, status bytes (python-escpos masks: OK 0x12,
near end 0x1E, no paper 0x72), the printer-side parser byte by byte, fuzz."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import escpos
from drivers.codecs.escpos import (
    Cut,
    EscPosParser,
    Feed,
    Init,
    LineFeed,
    StatusByte,
    StatusRequest,
    Text,
    Unknown,
)

H = bytes.fromhex


def test_command_golden_vectors():
    assert escpos.INIT == H("1B 40")
    assert escpos.CUT_FULL == H("1D 56 00")
    assert escpos.CUT_PARTIAL == H("1D 56 01")
    assert escpos.feed(4) == H("1B 64 04")
    assert [escpos.status_request(n) for n in (1, 2, 3, 4)] == [
        H("10 04 01"),
        H("10 04 02"),
        H("10 04 03"),
        H("10 04 04"),
    ]
    assert escpos.encode_line("AMOUNT $1.00") == b"AMOUNT $1.00\n"
    assert escpos.encode_line("a\x1b@b") == b"a@b\n"  # no command smuggled in text


@pytest.mark.parametrize(
    ("n", "value", "near_end", "paper_out", "cover_open"),
    [
        (4, 0x12, False, False, False),
        (4, 0x1E, True, False, False),
        (4, 0x72, False, True, False),
        (2, 0x16, False, False, True),
        (2, 0x32, False, True, False),
    ],
)
def test_status_bytes(n, value, near_end, paper_out, cover_open):
    status = StatusByte(n, value)
    assert (status.near_end, status.paper_out, status.cover_open) == (
        near_end,
        paper_out,
        cover_open,
    )


@pytest.mark.parametrize("value", [0x00, 0x13, 0x92, 0xFF, 0x06])
def test_status_byte_without_fixed_bits_is_refused(value):
    with pytest.raises(ValueError, match="fixed bits"):
        StatusByte(4, value)


def test_parser_byte_at_a_time():
    stream = (
        H("1B 40") + b"HELLO\n" + H("10 04 04") + H("1B 64 03") + H("1D 56 01") + H("1D 56 42 05")
    )
    parser = EscPosParser()
    events = [e for b in stream for e in parser.feed(bytes([b]))]
    texts = b"".join(e.data for e in events if isinstance(e, Text))
    assert texts == b"HELLO"
    others = [e for e in events if not isinstance(e, Text)]
    assert others == [Init(), LineFeed(), StatusRequest(4), Feed(3), Cut(True), Cut(True)]


def test_unknown_sequences_are_reported():
    assert EscPosParser().feed(H("1B 21 00")) == [Unknown(H("1B 21")), Unknown(H("00"))]


@given(st.binary(max_size=300))
def test_any_input_parses(data):
    parser = EscPosParser()
    parser.feed(data)
