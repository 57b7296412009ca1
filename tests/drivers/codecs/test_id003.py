"""JCM ID003 codec: golden vectors (the first three as published for ID003 units, the rest
computed by our CRC and kept as regression vectors), frames fed a byte at a time, junk, bad
CRC and bad length, and a fuzz check that any input decodes or is reported, never raises."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.events import BadFrame, Junk
from drivers.codecs.id003 import (
    Command,
    Id003Decoder,
    Id003Frame,
    Status,
    crc16_kermit,
    denomination_cents,
    denomination_code,
    encode,
)

H = bytes.fromhex

GOLDEN = [
    (Command.STATUS_REQUEST, b"", "FC 05 11 27 56"),
    (Command.RESET, b"", "FC 05 40 2B 15"),
    (Command.ACK, b"", "FC 05 50 AA 05"),
    (Command.STACK_1, b"", "FC 05 41 A2 04"),
    (Command.RETURN, b"", "FC 05 43 B0 27"),
    (Command.INHIBIT, b"\x00", "FC 06 C3 00 04 D6"),
    (Command.INHIBIT, b"\x01", "FC 06 C3 01 8D C7"),
    (Status.ESCROW, b"\x65", "FC 06 13 65 94 BD"),  # a $20 note in escrow
    (Status.VEND_VALID, b"\x67", "FC 06 15 67 56 CA"),  # a $100 note stacked
    (Status.REJECTING, b"\x76", "FC 06 17 76 EE F8"),  # not recognised
    (Status.JAM_IN_STACKER, b"", "FC 05 46 1D 70"),
]


@pytest.mark.parametrize(("cmd", "data", "golden"), GOLDEN)
def test_golden_vectors(cmd, data, golden):
    assert encode(cmd, data) == H(golden)
    assert Id003Decoder().feed(H(golden)) == [Id003Frame(cmd, data)]


@pytest.mark.parametrize(("cmd", "data", "golden"), GOLDEN)
def test_byte_at_a_time(cmd, data, golden):
    decoder = Id003Decoder()
    events = []
    for byte in H(golden):
        events += decoder.feed(bytes([byte]))
    assert events == [Id003Frame(cmd, data)]


def test_two_frames_in_one_read_and_junk_before():
    data = b"\x00\x33" + encode(Status.ESCROW, b"\x63") + encode(Status.HOLDING)
    assert Id003Decoder().feed(data) == [
        Junk(b"\x00\x33"),
        Id003Frame(Status.ESCROW, b"\x63"),
        Id003Frame(Status.HOLDING),
    ]


def test_bad_crc_is_reported_and_the_next_frame_still_decodes():
    bad = bytearray(encode(Status.ESCROW, b"\x65"))
    bad[-1] ^= 0x01
    events = Id003Decoder().feed(bytes(bad) + encode(Status.IDLING))
    assert isinstance(events[0], BadFrame) and "CRC" in events[0].reason
    assert events[1] == Id003Frame(Status.IDLING)


def test_length_under_five_is_a_bad_frame():
    (event, *rest) = Id003Decoder().feed(b"\xfc\x02" + encode(Status.IDLING))
    assert isinstance(event, BadFrame)
    assert rest == [Id003Frame(Status.IDLING)]


def test_denominations_both_ways():
    assert denomination_cents(0x65) == 2000
    assert denomination_code(10000) == 0x67
    with pytest.raises(ValueError, match="0x70"):
        denomination_cents(0x70)
    with pytest.raises(ValueError, match="300 cents"):
        denomination_code(300)


def test_crc_is_kermit():
    assert crc16_kermit(b"123456789") == 0x2189  # the CRC catalogue's check value


def test_oversized_frame_is_refused():
    with pytest.raises(ValueError, match="over 255"):
        encode(Command.ENABLE, bytes(251))


@given(st.binary(max_size=300))
def test_any_input_decodes_or_is_reported(data):
    decoder = Id003Decoder()
    for event in decoder.feed(data):
        assert isinstance(event, (Id003Frame, BadFrame, Junk))


@given(st.integers(0, 0xFF), st.binary(max_size=40), st.integers(1, 7))
def test_round_trip_in_any_pieces(cmd, data, step):
    frame = encode(cmd, data)
    decoder = Id003Decoder()
    events = []
    for start in range(0, len(frame), step):
        events += decoder.feed(frame[start : start + step])
    assert events == [Id003Frame(cmd, data)]
