"""LCDM-2000 codec: golden hex vectors for every command and reply we use, frames split and
fed a byte at a time, junk and bad BCC, and a fuzz check that any input decodes or is
reported as junk/bad frame (never an exception)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.events import Ack, BadFrame, Junk, Nak
from drivers.codecs.lcdm import (
    EOT,
    SOH,
    CassetteCounts,
    Command,
    DispenseReply,
    LcdmDecoder,
    LcdmFrame,
    PurgeReply,
    StatusReply,
    encode_command,
    encode_count,
    encode_reply,
)

H = bytes.fromhex

COMMANDS = [
    (Command.PURGE, b"", "04 50 02 44 03 11"),
    (Command.UPPER_DISPENSE, b"05", "04 50 02 45 30 35 03 15"),
    (Command.STATUS, b"", "04 50 02 46 03 13"),
    (Command.ROM_VERSION, b"", "04 50 02 47 03 12"),
    (Command.LOWER_DISPENSE, b"03", "04 50 02 55 30 33 03 03"),
    (Command.UPPER_LOWER_DISPENSE, b"0201", "04 50 02 56 30 32 30 31 03 00"),
]


@pytest.mark.parametrize(("cmd", "data", "golden"), COMMANDS)
def test_command_golden_vectors(cmd, data, golden):
    assert encode_command(cmd, data) == H(golden)
    (frame,) = LcdmDecoder(EOT).feed(H(golden))
    assert frame == LcdmFrame(cmd, data, reply=False)


REPLIES = [
    (Command.STATUS, StatusReply(0x30, 0x20, 0x0C).encode(), "01 50 02 46 30 60 4C 03 0A"),
    (
        Command.UPPER_DISPENSE,
        DispenseReply(0x30, (CassetteCounts(5, 5, 0, 0x30),)).encode(),
        "01 50 02 45 30 35 30 35 30 30 30 30 03 15",
    ),
    (
        Command.UPPER_LOWER_DISPENSE,
        DispenseReply(
            0x30, (CassetteCounts(3, 2, 1, 0x30), CassetteCounts(1, 1, 0, 0x30))
        ).encode(),
        "01 50 02 56 30 33 30 32 30 31 30 31 30 30 30 30 31 30 30 03 36",
    ),
    (Command.PURGE, PurgeReply(0x30, 3).encode(), "01 50 02 44 30 30 33 03 27"),
    (
        Command.ROM_VERSION,
        b"LCDM-2000 SIM 1.0",
        "01 50 02 47 4C 43 44 4D 2D 32 30 30 30 20 53 49 4D 20 31 2E 30 03 46",
    ),
]


@pytest.mark.parametrize(("cmd", "data", "golden"), REPLIES)
def test_reply_golden_vectors(cmd, data, golden):
    assert encode_reply(cmd, data) == H(golden)
    (frame,) = LcdmDecoder(SOH).feed(H(golden))
    assert frame == LcdmFrame(cmd, data, reply=True)


def test_reply_layouts_round_trip():
    reply = DispenseReply.decode(
        Command.UPPER_LOWER_DISPENSE, H("30 33 30 32 30 31 30 31 30 30 30 30 31 30 30")
    )
    assert reply.error == 0x30
    assert reply.cassettes == (CassetteCounts(3, 2, 1, 0x30), CassetteCounts(1, 1, 0, 0x30))
    status = StatusReply.decode(H("30 60 4C"))
    assert status.notes_in_tray and status.cassettes == 0x0C
    assert PurgeReply.decode(b"003") == PurgeReply(0x30, 3)
    with pytest.raises(ValueError):
        StatusReply.decode(b"0\x01\x02")
    with pytest.raises(ValueError):
        DispenseReply.decode(Command.UPPER_DISPENSE, b"short")


def test_byte_at_a_time_with_ack_nak_and_junk():
    stream = H("06 15 FF") + H("01 50 02 46 30 60 4C 03 0A")
    decoder = LcdmDecoder(SOH)
    events = [e for byte in stream for e in decoder.feed(bytes([byte]))]
    assert events == [Ack(), Nak(), Junk(b"\xff"), LcdmFrame(0x46, H("30 60 4C"), True)]


def test_split_anywhere_gives_the_same_frame():
    raw = H("01 50 02 56 30 33 30 32 30 31 30 31 30 30 30 30 31 30 30 03 36")
    for cut in range(1, len(raw)):
        decoder = LcdmDecoder(SOH)
        assert decoder.feed(raw[:cut]) == []
        assert decoder.feed(raw[cut:]) == [LcdmFrame(0x56, raw[4:-2], True)]


def test_bad_bcc_and_bad_header_are_bad_frames():
    (bad,) = LcdmDecoder(SOH).feed(H("01 50 02 46 30 60 4C 03 0B"))
    assert isinstance(bad, BadFrame) and "BCC" in bad.reason
    (bad,) = LcdmDecoder(SOH).feed(H("01 51 02 46 03 15"))
    assert isinstance(bad, BadFrame) and "header" in bad.reason


def test_buffer_is_bounded():
    events = LcdmDecoder(SOH).feed(b"\x01" + b"A" * 100)
    assert isinstance(events[-1], BadFrame)


def test_encoding_refuses_control_bytes_in_data():
    with pytest.raises(ValueError):
        encode_command(Command.STATUS, b"\x03")
    with pytest.raises(ValueError):
        encode_count(100)


@given(st.binary(max_size=200), st.sampled_from([EOT, SOH]))
def test_any_input_decodes_to_events_never_raises(data, side):
    decoder = LcdmDecoder(side)
    for event in decoder.feed(data):
        assert isinstance(event, (Ack, Nak, Junk, BadFrame, LcdmFrame))
