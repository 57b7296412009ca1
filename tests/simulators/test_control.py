"""The control channel: the line protocol itself, and over a real TCP socket while a driver
talks to the simulator over a pty."""

import asyncio

from simulators.card_reader import CardReaderSimulator
from simulators.control import ControlChannel, serve_control
from simulators.dispenser import DispenserSimulator, SimCassette
from simulators.pin_pad import PinPadSimulator

CARDS = {"alice": "4000001234567899=30121010000000000000"}


def test_line_protocol():
    sim = DispenserSimulator([SimCassette(2000, 10)])
    control = ControlChannel(sim, CARDS)
    assert control.handle("inject jam") == "ok injected jam"
    assert "jam" in control.handle("state")
    assert control.handle("inject delay 0.2") == "ok injected delay 0.2"
    assert sim.wire.delay == 0.2
    assert control.handle("clear") == "ok cleared all faults"
    assert control.handle("inject meteor").startswith("error: unknown fault")
    assert control.handle("insert alice").startswith("error: unknown command")
    assert control.handle("take cash") == "ok"
    assert "garble" in control.handle("faults")
    assert control.handle("help").startswith("ok help")


def test_card_and_keys():
    reader = CardReaderSimulator()
    assert ControlChannel(reader, CARDS).handle("insert alice") == "ok card alice at the slot"
    assert reader._waiting[0] == CARDS["alice"]
    pad = PinPadSimulator(bytes(16))
    control = ControlChannel(pad, CARDS)
    assert control.handle("press f1 enter") == "ok"
    assert list(pad._keys) == ["F1", "ENTER"]
    assert control.handle("press BANANA").startswith("error")
    state = control.handle("state")
    assert "mode='off'" in state


async def test_over_tcp():
    sim = DispenserSimulator([SimCassette(2000, 10)])
    server = await serve_control(ControlChannel(sim, CARDS))
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"inject cassette_missing\nstate\n")
        assert await reader.readline() == b"ok injected cassette_missing\n"
        assert b"cassette_missing" in await reader.readline()
        assert "cassette_missing" in sim.faults
        writer.write(b"x" * 3000 + b"\n")  # an overlong line closes only that client
        assert await reader.read() in (b"", b"error: line too long\n")
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_notes_at_the_bill_acceptor():
    from simulators.bill_acceptor import BillAcceptorSimulator

    sim = BillAcceptorSimulator()
    control = ControlChannel(sim, CARDS)
    # Acceptance is inhibited until the ATM enables it: the notes come straight back.
    assert control.handle("note 2000 5000") == "ok 2 note(s) inserted"
    assert "at_entrance=[2000, 5000]" in control.handle("state")
    assert control.handle("take notes") == "ok took [2000, 5000]"
    assert control.handle("note twenty").startswith("error: notes are given in cents")
    assert "stack_jam" in control.handle("faults")
