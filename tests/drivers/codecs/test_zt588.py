"""ZT588-style PIN pad codec: golden vectors, key bytes outside frames (digits only as ``*``
during PIN entry), split frames, bad checksum, fuzz."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.events import Ack, BadFrame, Junk, Nak
from drivers.codecs.zt588 import Key, PadFrame, PadReply, Zt588Decoder, encode_frame

H = bytes.fromhex

VECTORS = [
    (b"0", "02 30 30 31 30 03 30 32"),  # status
    (b"51", "02 30 30 32 35 31 03 33 35"),  # keypad open for one key
    (b"50", "02 30 30 32 35 30 03 33 34"),  # keypad closed
    (b"7", "02 30 30 31 37 03 30 35"),  # get PIN block
    (
        b"63000406030000123456789",  # start PIN entry: TPK, format 0, 4-6 digits, 30 s, PAN12
        "02 30 32 33 36 33 30 30 30 34 30 36 30 33 30 30 30 30 31 32 33 34 35 36 37 38 39 03 30 37",
    ),
    (b"000ZT588-SIM", "02 30 31 32 30 30 30 5A 54 35 38 38 2D 53 49 4D 03 34 31"),
    (b"5300", "02 30 30 34 35 33 30 30 03 33 31"),  # reply: load key ok
    (
        b"70000123456789ABCDEF",  # reply: PIN block, format 0
        "02 30 32 30 37 30 30 30 30 31 32 33 34 35 36 37 38 39 41 42 43 44 45 46 03 33 30",
    ),
    (b"7E4", "02 30 30 33 37 45 34 03 37 36"),  # reply: no PIN entered
]


@pytest.mark.parametrize(("text", "golden"), VECTORS)
def test_golden_vectors(text, golden):
    assert encode_frame(text) == H(golden)
    assert Zt588Decoder(keys=False).feed(H(golden)) == [PadFrame(text)]


def test_reply_parse():
    reply = PadReply.parse(b"7E4")
    assert not reply.ok and reply.status_text == "no PIN entered"
    assert PadReply.parse(b"70000123456789ABCDEF").data == b"00123456789ABCDEF"


def test_keys_outside_frames_on_the_host_side():
    stream = b"*" + H("0D") + H("1B") + H("08") + H("41") + H("1A") + H("06") + b"5"
    events = Zt588Decoder(keys=True).feed(stream)
    assert events == [
        Key("*"),
        Key("ENTER"),
        Key("CANCEL"),
        Key("CLEAR"),
        Key("F1"),
        Key("TIMEOUT"),
        Ack(),
        Key("5"),
    ]
    # On the pad side the same bytes are junk (apart from ACK).
    assert Junk(b"*\r\x1b\x08A\x1a") in Zt588Decoder(keys=False).feed(stream)


def test_split_frames_and_keys_interleaved():
    raw = b"*" + encode_frame(b"600") + b"*"
    decoder = Zt588Decoder(keys=True)
    events = [e for b in raw for e in decoder.feed(bytes([b]))]
    assert events == [Key("*"), PadFrame(b"600"), Key("*")]


def test_bad_checksum_and_bad_length():
    (bad,) = Zt588Decoder(keys=False).feed(H("02 30 30 31 30 03 30 33"))
    assert isinstance(bad, BadFrame) and "checksum" in bad.reason
    assert isinstance(Zt588Decoder(keys=False).feed(b"\x02ABC")[0], BadFrame)
    (bad,) = Zt588Decoder(keys=False).feed(H("02 30 30 31 30 04 30 32"))
    assert isinstance(bad, BadFrame) and "ETX" in bad.reason


@given(st.binary(max_size=300), st.booleans())
def test_any_input_decodes_to_events_never_raises(data, keys):
    for event in Zt588Decoder(keys=keys).feed(data):
        assert isinstance(event, (Ack, Nak, Junk, BadFrame, PadFrame, Key))
