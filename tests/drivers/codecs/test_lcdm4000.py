"""LCDM-4000 codec: golden bytes (the same bytes the puloon library sends), reply layouts and
their sizes, the host-side decoder dropping the closing EOT, byte at a time, fuzz."""

from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import lcdm, lcdm4000
from drivers.codecs.events import Ack
from drivers.codecs.lcdm import LcdmFrame
from drivers.codecs.lcdm4000 import (
    CassetteSensors,
    Command,
    DispenseReply,
    Error,
    PickCounts,
    StatusReply,
)

H = bytes.fromhex


def test_command_golden_vectors():
    assert lcdm4000.encode_command(Command.STATUS) == H("04 30 02 50 03 65")
    assert lcdm4000.encode_command(Command.PURGE) == H("04 30 02 51 03 64")
    # DISPENSE 2 from the top cassette and 1 from the third: QTY + 0x20, TO1 TO2, 9 reserved.
    assert lcdm4000.encode_command(Command.DISPENSE, lcdm4000.encode_dispense([2, 0, 1, 0])) == H(
        "04 30 02 52 22 20 21 20 20 20 20 20 20 20 20 20 20 20 20 03 44"
    )


def test_reply_layouts_have_the_sizes_clients_read():
    picks = (PickCounts(2, 0), PickCounts(1, 1), PickCounts(0, 0, False), PickCounts(3, 0))
    dispense = DispenseReply(Error.NONE, picks)
    frame = lcdm4000.encode_reply(Command.DISPENSE, dispense.encode())
    assert len(frame) == 29 and frame[4] == 0x20 and frame[5] == 0x30
    assert frame[6:9] == bytes([0x22, 0x20, 0x31]) and frame[12:15] == bytes([0x20, 0x20, 0x30])
    assert DispenseReply.decode(dispense.encode()) == dispense
    purge = DispenseReply(Error.NONE, picks, reserved=False)
    assert len(lcdm4000.encode_reply(Command.PURGE, purge.encode())) == 20
    status = StatusReply(
        Error.NONE, lcdm4000.EXIT, tuple(CassetteSensors(0x30, True) for _ in range(4))
    )
    assert len(lcdm4000.encode_reply(Command.STATUS, status.encode())) == 24
    assert StatusReply.decode(status.encode()) == status and status.notes_in_tray


def test_host_decoder_drops_the_closing_eot_byte_at_a_time():
    reply = lcdm4000.encode_reply(Command.STATUS, StatusReply(Error.PICKUP, 0, tuple(
        CassetteSensors(0x32, i < 2) for i in range(4))).encode())  # fmt: skip
    decoder = lcdm4000.decoder(lcdm.SOH)
    events = [e for b in bytes([0x06]) + reply + bytes([0x04]) for e in decoder.feed(bytes([b]))]
    assert events[0] == Ack()
    (frame,) = events[1:]
    assert isinstance(frame, LcdmFrame) and frame.reply
    decoded = StatusReply.decode(frame.data)
    assert decoded.error == Error.PICKUP
    assert [c.present for c in decoded.cassettes] == [True, True, False, False]


def test_an_lcdm_2000_frame_is_not_an_lcdm_4000_frame():
    events = lcdm4000.decoder(lcdm.SOH).feed(lcdm.encode_reply(0x46, b"0@@"))
    assert [type(e).__name__ for e in events] == ["BadFrame"]


@given(st.binary(max_size=200))
def test_any_input_decodes_without_raising(data):
    lcdm4000.decoder(lcdm.SOH).feed(data)
    lcdm4000.decoder(lcdm.EOT).feed(data)
