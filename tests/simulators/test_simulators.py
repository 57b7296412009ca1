"""Simulator behaviour on its own: money conservation in the dispenser, card positions,
PIN echo without digits, paper running out, fault configuration, the TCP port."""

import pytest

from drivers.codecs import lcdm, sankyo, zt588
from drivers.codecs.events import ACK
from drivers.codecs.lcdm import Command, LcdmDecoder, LcdmFrame
from drivers.codecs.sankyo import SankyoCommand
from drivers.lcdm import LcdmDispenser
from drivers.transport import open_tcp
from protocol.security import KeyScheme, key_check_value, tdes_ecb
from simulators.card_reader import CardReaderSimulator
from simulators.dispenser import DispenserSimulator, SimCassette
from simulators.pin_pad import PinPadSimulator
from simulators.ports import TcpPort
from simulators.printer import PrinterSimulator

TRACK2 = "4000001234567899=30121010000000000000"


class Wire:
    """Collects what a simulator writes."""

    def __init__(self, sim) -> None:
        self.out = bytearray()
        self.hung_up = False
        sim.attach(self.out.extend, self.hangup)

    def hangup(self) -> None:
        self.hung_up = True

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data


def lcdm_reply(wire: Wire) -> LcdmFrame:
    events = LcdmDecoder(lcdm.SOH).feed(wire.take())
    frames = [e for e in events if isinstance(e, LcdmFrame)]
    assert len(frames) == 1
    return frames[0]


def test_dispenser_conserves_notes_through_rejects_partials_and_purge():
    sim = DispenserSimulator([SimCassette(2000, 30), SimCassette(5000, 10)])
    wire = Wire(sim)
    sim.inject("reject")
    sim.receive(lcdm.encode_command(Command.UPPER_LOWER_DISPENSE, b"0502"))
    reply = lcdm.DispenseReply.decode(Command.UPPER_LOWER_DISPENSE, lcdm_reply(wire).data)
    assert [c.exit for c in reply.cassettes] == [5, 2] and [c.reject for c in reply.cassettes] == [
        1,
        1,
    ]
    sim.clear()
    sim.take_cash()
    sim.inject("partial")
    sim.receive(lcdm.encode_command(Command.UPPER_DISPENSE, b"06"))
    lcdm_reply(wire)
    sim.clear()
    sim.receive(lcdm.encode_command(Command.PURGE))
    assert lcdm.PurgeReply.decode(lcdm_reply(wire).data).purged == 3
    for index, start in ((0, 30), (1, 10)):
        assert sim.cassettes[index].count + sim.notes_accounted(index) == start
    assert sim.retracted == 3


def test_dispenser_answers_unknown_commands_and_bad_frames():
    sim = DispenserSimulator([SimCassette(2000, 30)])
    wire = Wire(sim)
    sim.receive(lcdm.encode_command(0x76, b"01"))
    assert lcdm_reply(wire).data == bytes([lcdm.ErrorCode.UNDEFINED_COMMAND])
    sim.receive(bytes.fromhex("04 50 02 46 03 14"))  # bad BCC
    assert wire.take() == b"\x15"


def test_card_reader_positions_and_capture_bin():
    sim = CardReaderSimulator(capture_bin_capacity=1)
    wire = Wire(sim)

    def ask(cmd: bytes, param: bytes) -> sankyo.SankyoReply:
        sim.receive(SankyoCommand(cmd, param).encode())
        data = wire.take()
        assert data[0] == ACK
        (frame,) = sankyo.SankyoDecoder().feed(data[1:])
        return sankyo.SankyoReply.parse(frame.text)  # type: ignore[union-attr]

    assert ask(b"1", b"0").code == "00"
    assert ask(b":", b"0").code == "B0"  # not initialised yet
    ask(b"0", b"2")
    sim.insert(TRACK2)
    assert sim.position == "none"  # entry still inhibited: the card waits at the slot
    ask(b":", b"0")
    assert sim.position == "inside"
    assert ask(b"3", b"1").positive
    assert len(sim.captured) == 1 and "1234567899" not in sim.captured[0]
    sim.insert(TRACK2)
    assert ask(b"3", b"1").code == "50"  # bin full


async def test_pin_pad_echoes_placeholders_never_digits():
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    sim = PinPadSimulator(key)
    wire = Wire(sim)
    # A working PIN key first (here the master key itself, under itself), as sign-on does.
    encrypted = tdes_ecb(key, key[:8]) + tdes_ecb(key, key[8:])
    load = (
        zt588.TPK_SLOT
        + zt588.TMK_SLOT
        + encrypted.hex().upper()
        + key_check_value(KeyScheme.TDES, key)
    )
    sim.receive(zt588.encode_frame(b"3" + load.encode()))
    wire.take()
    sim.receive(zt588.encode_frame(b"63000406030000123456789"))
    wire.take()
    sim.type_digits("4321")
    assert sim.echo == "****"
    assert wire.take() == b"****"
    sim.press("ENTER")
    assert wire.take() == b"\r"
    sim.receive(zt588.encode_frame(b"7"))
    reply = wire.take()
    assert b"4321" not in reply and reply.startswith(b"\x06\x02")


def test_printer_runs_out_of_paper():
    sim = PrinterSimulator(paper_lines=5, near_end_lines=2)
    Wire(sim)
    sim.receive(b"\x1b@" + b"one\ntwo\nthree\n" + b"\x1dV\x01")
    assert sim.near_end and not sim.paper_out
    sim.receive(b"\x1b@" + b"four\nfive\nsix\n" + b"\x1dV\x01")
    assert sim.paper_out and sim.lines_lost == 1
    assert sim.receipts == [["one", "two", "three"], ["four", "five"]]
    assert sim.status_byte(4) == 0x7E


def test_wire_faults_are_configuration():
    sim = DispenserSimulator([SimCassette(2000, 30)])
    sim.inject("delay", "0.25")
    sim.inject("garble", "always")
    sim.inject("split", 2)
    assert (sim.wire.delay, sim.wire.garble, sim.wire.split) == (0.25, -1, 2)
    sim.clear("garble")
    assert sim.wire.garble == 0 and sim.wire.delay == 0.25
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("meteor")
    wire = Wire(sim)
    sim.inject("disconnect")
    assert wire.hung_up


async def test_tcp_port_serves_the_driver():
    sim = DispenserSimulator([SimCassette(2000, 30), SimCassette(5000, 10)])
    port = TcpPort(sim)
    number = await port.start()
    dispenser = LcdmDispenser(lambda: open_tcp("127.0.0.1", number), [(2000, 30), (5000, 10)])
    try:
        await dispenser.open()
        assert dict((await dispenser.dispense({1: 2})).dispensed) == {1: 2}
        sim.take_cash()
        assert await dispenser.wait_taken(1.0)
    finally:
        await dispenser.close()
        await port.close()
