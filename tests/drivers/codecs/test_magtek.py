"""MagTek HID report layout: 337 bytes, statuses, lengths, tracks at 7/117/227."""

import pytest

from drivers.codecs.magtek import REPORT_LENGTH, Swipe, decode_report, encode_report

TRACK2 = ";4000001234567899=30121010000000000000?"


def test_report_layout():
    report = encode_report(Swipe((0, 0, 0), ("%B4000^X^30?", TRACK2, ""), encoding=2))
    assert len(report) == REPORT_LENGTH
    assert report[0:3] == b"\0\0\0"
    assert report[3:6] == bytes([12, len(TRACK2), 0])
    assert report[6] == 2
    assert report[117 : 117 + len(TRACK2)] == TRACK2.encode()
    swipe = decode_report(report)
    assert swipe.track2 == TRACK2[1:-1] and swipe.track2_ok
    assert "4000001234567899" not in repr(swipe)


def test_bad_reports():
    with pytest.raises(ValueError):
        decode_report(b"\0" * 10)
    report = bytearray(REPORT_LENGTH)
    report[4] = 200
    with pytest.raises(ValueError):
        decode_report(bytes(report))
    assert not decode_report(encode_report(Swipe((0, 1, 0), ("", "", "")))).track2_ok
