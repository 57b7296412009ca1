import pytest

from protocol.errors import FrameError, LocalProtocolError
from protocol.framing import Framer, encode_frame


def test_golden_vector():
    assert encode_frame(b"0800") == bytes.fromhex("0004") + b"0800"
    assert encode_frame(b"x" * 300) == bytes.fromhex("012c") + b"x" * 300


def test_whole_frames_in_one_feed():
    framer = Framer()
    data = encode_frame(b"first") + encode_frame(b"second")
    assert framer.feed(data) == [b"first", b"second"]
    assert framer.buffered == 0


def test_byte_at_a_time():
    framer = Framer()
    data = encode_frame(b"hello") + encode_frame(b"world!")
    frames = []
    for i in range(len(data)):
        frames += framer.feed(data[i : i + 1])
    assert frames == [b"hello", b"world!"]


def test_partial_frame_waits():
    framer = Framer()
    assert framer.feed(bytes.fromhex("0005") + b"ab") == []
    assert framer.buffered == 4
    assert framer.feed(b"cde") == [b"abcde"]


def test_zero_length_keepalive_is_dropped():
    framer = Framer()
    assert framer.feed(bytes.fromhex("0000") + encode_frame(b"ping")) == [b"ping"]


def test_oversize_length_is_a_frame_error():
    framer = Framer(max_frame=100)
    with pytest.raises(FrameError, match="exceeds the maximum of 100"):
        framer.feed(bytes.fromhex("0065") + b"x")


def test_local_misuse():
    with pytest.raises(LocalProtocolError):
        encode_frame(b"")
    with pytest.raises(LocalProtocolError):
        Framer(max_frame=0)


def test_one_whole_frame_per_read_then_split_reads_share_the_buffer():
    framer = Framer(max_frame=100)
    assert framer.feed(encode_frame(b"whole")) == [b"whole"]
    assert framer.buffered == 0
    assert framer.feed(bytes.fromhex("0000")) == []  # a keep-alive on its own
    frame = encode_frame(b"split")
    assert framer.feed(frame[:3]) == []
    assert framer.feed(frame[3:] + encode_frame(b"next")) == [b"split", b"next"]


def test_oversize_whole_frame_is_a_frame_error():
    with pytest.raises(FrameError, match="exceeds the maximum of 4"):
        Framer(max_frame=4).feed(encode_frame(b"12345"))
