"""Sankyo ICT3K5-style codec: golden vectors (CRC-16/XMODEM checked against an independent
bitwise implementation and the published status vector), split frames, bad CRC, fuzz."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.events import Ack, BadFrame, Junk, Nak
from drivers.codecs.sankyo import (
    SankyoCommand,
    SankyoDecoder,
    SankyoFrame,
    SankyoReply,
    crc16_xmodem,
    encode_frame,
)

H = bytes.fromhex


def bitwise_crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_published_status_vector():
    assert SankyoCommand(b"1", b"0").encode() == H("F2 00 03 43 31 30 C5 2A")


COMMANDS = [
    (b"0", b"2", "F2 00 03 43 30 32 D6 59"),  # initialise, keep card
    (b"1", b"0", "F2 00 03 43 31 30 C5 2A"),  # status
    (b":", b"0", "F2 00 03 43 3A 30 19 D0"),  # enable entry
    (b":", b"1", "F2 00 03 43 3A 31 09 F1"),  # inhibit entry
    (b"6", b"2", "F2 00 03 43 36 32 7C FF"),  # read track 2
    (b"3", b"0", "F2 00 03 43 33 30 A3 48"),  # eject to gate
    (b"3", b"1", "F2 00 03 43 33 31 B3 69"),  # capture
]


@pytest.mark.parametrize(("cmd", "param", "golden"), COMMANDS)
def test_command_golden_vectors(cmd, param, golden):
    raw = H(golden)
    assert SankyoCommand(cmd, param).encode() == raw
    assert bitwise_crc16_xmodem(raw[:-2]) == int.from_bytes(raw[-2:], "big")
    (frame,) = SankyoDecoder().feed(raw)
    assert isinstance(frame, SankyoFrame)
    assert SankyoCommand.parse(frame.text) == SankyoCommand(cmd, param)


REPLIES = [
    (SankyoReply(True, b"1", b"0", "00"), "F2 00 05 50 31 30 30 30 38 26"),
    (SankyoReply(True, b"1", b"0", "02"), "F2 00 05 50 31 30 30 32 18 64"),
    (SankyoReply(False, b"6", b"2", "23"), "F2 00 05 4E 36 32 32 33 9A 98"),
    (SankyoReply(False, b"3", b"1", "50"), "F2 00 05 4E 33 31 35 30 D6 79"),
    (
        SankyoReply(True, b"6", b"2", "02", b"4000001234567899=30121010000000000000"),
        "F2 00 2A 50 36 32 30 32 34 30 30 30 30 30 31 32 33 34 35 36 37 38 39 39 3D 33 30 "
        "31 32 31 30 31 30 30 30 30 30 30 30 30 30 30 30 30 30 5E 3F",
    ),
]


@pytest.mark.parametrize(("reply", "golden"), REPLIES)
def test_reply_golden_vectors(reply, golden):
    raw = H(golden)
    assert reply.encode() == raw
    assert bitwise_crc16_xmodem(raw[:-2]) == int.from_bytes(raw[-2:], "big")
    (frame,) = SankyoDecoder().feed(raw)
    assert isinstance(frame, SankyoFrame)
    assert SankyoReply.parse(frame.text) == reply


def test_error_texts():
    assert SankyoReply(False, b"3", b"1", "50").error_text.startswith("capture counter")
    assert SankyoReply(False, b"3", b"1", "99").error_text == "error 99"


def test_byte_at_a_time_split_and_control_bytes():
    raw = H("06") + H("F2 00 05 50 31 30 30 32 18 64") + H("15")
    decoder = SankyoDecoder()
    events = [e for b in raw for e in decoder.feed(bytes([b]))]
    assert events == [Ack(), SankyoFrame(b"P1002"), Nak()]


def test_bad_crc_and_bad_length():
    (bad,) = SankyoDecoder().feed(H("F2 00 03 43 31 30 C5 2B"))
    assert isinstance(bad, BadFrame) and "CRC" in bad.reason
    events = SankyoDecoder().feed(H("F2 FF FF 00"))
    assert isinstance(events[0], BadFrame)


def test_frame_limits():
    with pytest.raises(ValueError):
        encode_frame(b"")
    assert crc16_xmodem(b"123456789") == 0x31C3  # the catalogued check value


@given(st.binary(max_size=300))
def test_any_input_decodes_to_events_never_raises(data):
    for event in SankyoDecoder().feed(data):
        assert isinstance(event, (Ack, Nak, Junk, BadFrame, SankyoFrame))
