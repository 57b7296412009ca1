"""Byte-level faults between each serial driver and its simulator over a real pty: frames
split to single bytes, delay, NAK and retry, garbled replies (NAKed and repeated), dropped
replies, a silent device (a specific timeout, bounded: never a hang), a disconnect, and a
device that speaks another protocol."""

import asyncio
import time

import pytest

from drivers.codecs.events import ACK
from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.escpos import EscPosPrinter
from drivers.id003 import Id003BillAcceptor
from drivers.lcdm import LcdmDispenser
from drivers.sankyo import SankyoCardReader
from drivers.transport import FAMILY_DEFAULTS, open_serial
from drivers.zt588 import Zt588PinPad
from simulators.ports import PtyPort
from simulators.printer import PrinterSimulator
from tests.drivers.conftest import CASSETTES, FAST, Rig


async def ask(rig: Rig) -> object:
    """One harmless request/answer for whichever device the rig holds."""
    device = rig.device
    if isinstance(device, LcdmDispenser):
        return await device.status()
    if isinstance(device, SankyoCardReader):
        return await device.position()
    if isinstance(device, Zt588PinPad):
        return await device.identify()
    if isinstance(device, Id003BillAcceptor):
        return await device.status()
    assert isinstance(device, EscPosPrinter)
    return await device.status()


async def test_byte_at_a_time(serial_rig):
    expected = await ask(serial_rig)
    serial_rig.customer.inject("split", 1)
    assert await ask(serial_rig) == expected


async def test_delay_within_the_timeout(serial_rig):
    expected = await ask(serial_rig)
    serial_rig.customer.inject("delay", 0.05)
    assert await ask(serial_rig) == expected


async def test_garbled_reply_is_asked_again(serial_rig):
    expected = await ask(serial_rig)
    serial_rig.customer.inject("garble", 1)
    assert await ask(serial_rig) == expected


async def test_always_garbled_is_a_protocol_error(serial_rig):
    serial_rig.customer.inject("garble", "always")
    with pytest.raises(DeviceProtocolError):
        await ask(serial_rig)


async def test_dropped_reply_is_asked_again(serial_rig):
    expected = await ask(serial_rig)
    serial_rig.customer.inject("drop", 1)
    assert await ask(serial_rig) == expected


async def test_silent_device_times_out_after_its_retries(serial_rig):
    sim = serial_rig.customer
    received: list[bytes] = []
    receive = sim.receive

    def spy(data: bytes) -> None:
        received.append(data)
        receive(data)

    sim.receive = spy
    sim.inject("silent")
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as info:
        await ask(serial_rig)
    # Bounded: the request went out once and twice again (retries=2), each time waiting
    # its timeout of listening (tests/drivers/test_deadline.py), then a specific error.
    # (The driver's ACK of the reply before may reach the simulator first: a stalled loop.)
    sent = b"".join(received).removeprefix(bytes([ACK]))
    assert sent == sent[: len(sent) // 3] * 3
    assert "no " in str(info.value)
    # Only a guard against a hang: a wall-clock bound any tighter is a race with the load.
    assert time.monotonic() - started < 60


async def test_disconnect_is_device_unavailable(serial_rig):
    await ask(serial_rig)
    serial_rig.customer.inject("disconnect")
    with pytest.raises((DeviceUnavailable, DeviceTimeout)):
        await ask(serial_rig)


@pytest.mark.parametrize("kind", ["dispenser", "card-reader", "pin-pad", "bill-acceptor"])
async def test_nak_then_retry(kind):
    from tests.drivers.conftest import make_rig

    rig = await make_rig(kind, "serial")
    try:
        expected = await ask(rig)
        rig.customer.inject("nak", 2)
        assert await ask(rig) == expected
        rig.customer.inject("nak", "always")
        with pytest.raises(DeviceProtocolError, match="NAK"):
            await ask(rig)
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()


async def test_printer_has_no_nak():
    with pytest.raises(ValueError):
        PrinterSimulator().inject("nak")


async def test_dispense_is_never_sent_twice():
    """A dispense whose reply is lost is not repeated (the notes may be out): the driver
    reports a timeout and the simulator saw exactly one dispense."""
    from tests.drivers.conftest import make_rig

    rig = await make_rig("dispenser", "serial")
    try:
        rig.customer.inject("drop", 1)
        with pytest.raises(DeviceTimeout):
            await rig.device.dispense({0: 3})
        assert rig.customer.tray == {0: 3}
        assert rig.customer.cassettes[0].count == 97
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()


async def test_cancelled_request_leaves_the_line_clean():
    from tests.drivers.conftest import make_rig

    rig = await make_rig("card-reader", "serial")
    try:
        rig.customer.inject("delay", 0.1)
        arrived = asyncio.Event()
        on_bytes = rig.customer.on_bytes

        def spy(data: bytes) -> None:
            arrived.set()
            on_bytes(data)

        rig.customer.on_bytes = spy
        task = asyncio.create_task(rig.device.position())
        await arrived.wait()  # the request is on the wire; its answer is 0.1 s away
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rig.customer.clear()
        rig.customer.insert("4000001234567899=30121010000000000000")
        await rig.device.accept_card()
        assert (await rig.device.read_card()).pan == "4000001234567899"
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()


class NoiseDevice:
    """Something else on the port: answers every write with a modem-like ``ERROR``."""

    NAME = "noise"

    def __init__(self) -> None:
        self._writer = None

    def attach(self, writer, hangup) -> None:
        self._writer = writer

    def detach(self) -> None:
        self._writer = None

    def receive(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer(b"ERROR\r\n")


@pytest.mark.parametrize(
    ("driver", "family", "protocol"),
    [
        (lambda c: LcdmDispenser(c, CASSETTES, **FAST), "dispenser", "LCDM-2000"),
        (lambda c: SankyoCardReader(c, **FAST), "card-reader", "Sankyo"),
        (lambda c: Zt588PinPad(c, **FAST), "pin-pad", "ZT588"),
        (lambda c: EscPosPrinter(c, status_timeout=0.3), "printer", "ESC/POS"),
        (lambda c: Id003BillAcceptor(c, reply_timeout=0.3), "bill-acceptor", "ID003"),
    ],
)
async def test_wrong_protocol_is_reported_as_such(driver, family, protocol):
    port = PtyPort(NoiseDevice())  # type: ignore[arg-type]
    await port.start()
    device = driver(lambda: open_serial(port.path, FAMILY_DEFAULTS[family]))
    try:
        with pytest.raises(DeviceProtocolError, match=f"not {protocol}"):
            await device.open()
    finally:
        port.close()


async def test_dispenser_driver_on_a_printer():
    port = PtyPort(PrinterSimulator())
    await port.start()
    # A printer ignores LCDM frames: silence, a specific timeout.
    device = LcdmDispenser(
        lambda: open_serial(port.path, FAMILY_DEFAULTS["dispenser"]), CASSETTES, **FAST
    )
    try:
        with pytest.raises(DeviceTimeout, match="no ACK"):
            await device.open()
    finally:
        port.close()


async def test_missing_port_names_it():
    device = LcdmDispenser(
        lambda: open_serial("/dev/ttyNOPE0", FAMILY_DEFAULTS["dispenser"]), CASSETTES
    )
    with pytest.raises(DeviceUnavailable, match="/dev/ttyNOPE0"):
        await device.open()


async def test_cancelled_key_read_closes_the_keypad():
    """A key read cancelled by the controller must not leave the keypad open, or the next
    digit (a PIN digit) would go out in clear."""
    from tests.drivers.conftest import make_rig

    rig = await make_rig("pin-pad", "serial")
    try:
        opened = asyncio.Event()
        handle = rig.customer._handle

        def spy(command: str, data: str) -> object:
            reply = handle(command, data)
            if rig.customer.mode == "one":
                opened.set()
            return reply

        rig.customer._handle = spy
        task = asyncio.create_task(rig.device.read_key(30.0))
        await opened.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await rig.device.identify()  # queued behind the closing command
        assert rig.customer.mode == "off"
        rig.customer.type_digits("1234")
        rig.customer.press("ENTER")
        block = await rig.device.read_pin("4000001234567899", 5.0)
        assert block.format == 0
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()


async def test_cancelled_card_wait_inhibits_entry():
    from tests.drivers.conftest import make_rig

    rig = await make_rig("card-reader", "serial")
    try:
        enabled = asyncio.Event()
        handle = rig.customer._handle

        def spy(command: object) -> object:
            reply = handle(command)
            if rig.customer.entry_enabled:
                enabled.set()
            return reply

        rig.customer._handle = spy
        task = asyncio.create_task(rig.device.accept_card())
        await enabled.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await rig.device.position()  # queued behind the inhibit command
        assert rig.customer.entry_enabled is False
        rig.customer.insert("4000001234567899=30121010000000000000")
        assert rig.customer.position == "none"  # the card waits at the slot
    finally:
        await rig.device.close()
        assert rig.port is not None
        rig.port.close()
