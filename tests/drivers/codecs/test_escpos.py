"""ESC/POS codec: golden bytes of each command, status bytes (python-escpos masks: OK 0x12,
near end 0x1E, no paper 0x72), the printer-side parser byte by byte, fuzz."""

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import escpos
from drivers.codecs.escpos import (
    Barcode,
    Cut,
    EscPosParser,
    Feed,
    FeedDots,
    Image,
    Init,
    LineFeed,
    QrCode,
    Setting,
    StatusByte,
    StatusRequest,
    Text,
    Unknown,
    qr_modules,
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
    assert EscPosParser().feed(H("1B 01") + b"A") == [Unknown(H("1B 01")), Text(b"A")]


# What python-escpos 3.1 sends for a native QR code of "https://x.test/1" (size 3, EC level L,
# model 2): five GS ( k functions, 165 model, 167 size, 169 EC, 180 store, 181 print.
QR_NATIVE = (
    H("1D 28 6B 04 00 31 41 32 00")
    + H("1D 28 6B 03 00 31 43 03")
    + H("1D 28 6B 03 00 31 45 30")
    + H("1D 28 6B 13 00 31 50 30")
    + b"https://x.test/1"
    + H("1D 28 6B 03 00 31 51 30")
)


def text_of(events: Sequence[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Text))


def test_our_qr_code_command_is_python_escpos_bytes():
    # The driver's receipts send the same five functions python-escpos sends.
    assert escpos.qr_code(b"https://x.test/1", module_size=3, error_correction="L") == QR_NATIVE
    events = EscPosParser().feed(escpos.qr_code(b"ATM00001-000042-000000000042"))
    assert [e for e in events if isinstance(e, QrCode)] == [
        QrCode(b"ATM00001-000042-000000000042", module_size=4, error_correction="M")
    ]
    with pytest.raises(ValueError, match="error correction"):
        escpos.qr_code(b"x", error_correction="X")
    with pytest.raises(ValueError, match=r"1\.\.2331 bytes"):
        escpos.qr_code(b"")


def test_native_qr_code_is_one_item_and_no_text():
    events = EscPosParser().feed(QR_NATIVE)
    assert text_of(events) == b""
    (qr,) = [e for e in events if isinstance(e, QrCode)]
    assert qr == QrCode(b"https://x.test/1", module_size=3, error_correction="L")
    # 16 bytes fit version 1 (21 modules) at level L; quiet zone 4 modules a side.
    assert qr_modules(16, "L") == 21 and qr.height == (21 + 8) * 3
    assert qr_modules(17, "L") == 21 and qr_modules(18, "L") == 25


def test_barcodes_function_a_and_b():
    a = H("1D 68 50") + H("1D 6B 02") + b"4006381333931" + H("00")
    b = H("1D 6B 49 0A") + b"{BREF-1234"
    events = EscPosParser().feed(a + b + b"after\n")
    assert [e for e in events if isinstance(e, Barcode)] == [
        Barcode("EAN13", b"4006381333931", 80),
        Barcode("CODE128", b"{BREF-1234", 80),
    ]
    assert text_of(events) == b"after"


def test_raster_bit_and_graphics_images_are_skipped_by_length():
    raster = H("1D 76 30 00 02 00 03 00") + bytes(range(0x41, 0x47))  # 2 bytes x 3 rows
    bit_image = H("1B 2A 21 02 00") + b"ABCDEF"  # 24-dot double density, 2 columns
    graphics = H("1D 28 4C 0C 00 30 70 30 01 01 31 08 00 02 00") + b"AB"  # store 8x2
    events = EscPosParser().feed(raster + bit_image + graphics + b"ok\n")
    assert [e for e in events if isinstance(e, Image)] == [
        Image("GS v 0", 16, 3),
        Image("ESC *", 2, 24),
        Image("GS ( L", 8, 2),
    ]
    assert text_of(events) == b"ok"


def test_styles_and_code_pages_are_settings_not_text():
    stream = (
        H("1B 21 08") + H("1D 21 11") + H("1B 61 01") + H("1B 74 10") + H("1B 45 01")
        + H("1B 2D 01") + H("1B 4D 01") + H("1D 42 01") + H("1B 7B 00") + H("1B 33 40")
        + H("1B 44 08 10 00") + H("1B 70 00 32 32") + H("1D 48 02") + H("1D 77 03")
        + H("1B 4A 18") + b"X"
    )  # fmt: skip
    events = EscPosParser().feed(stream)
    assert text_of(events) == b"X"
    assert Setting("GS !", H("11")) in events and Setting("ESC t", H("10")) in events
    assert FeedDots(0x18) in events
    assert not [e for e in events if isinstance(e, Unknown)]


def test_every_command_byte_at_a_time_gives_the_same_events():
    stream = H("1B 40") + QR_NATIVE + H("1D 76 30 00 01 00 02 00 FF 00") + b"T\n" + H("1D 56 41 03")
    whole = EscPosParser().feed(stream)
    parser = EscPosParser()
    assert [e for b in stream for e in parser.feed(bytes([b]))] == whole


@given(st.binary(max_size=300))
def test_any_input_parses(data):
    parser = EscPosParser()
    parser.feed(data)
