"""USB drivers over pyusb. There is no USB bus here: a fake ``usb.backend.IBackend``
(tests/drivers/fake_usb.py) stands in for the bus and libusb; pyusb's ``usb.core`` and our
drivers run unchanged above it, and our simulators are the devices behind it."""

import threading

import pytest

from drivers.errors import CardReaderFault, DeviceUnavailable, PrinterFault
from drivers.escpos import EscPosPrinter
from drivers.interfaces import PaperState
from drivers.usb import MagtekCardReader, open_usb_bulk
from simulators.magtek import MagtekSimulator
from simulators.printer import PrinterSimulator
from tests.drivers.fake_usb import FakeBackend, magtek_device, printer_device

TRACK2 = "4000001234567899=30121010000000000000"


async def test_magtek_swipe_is_read_off_the_event_loop():
    device = magtek_device()
    backend = FakeBackend(device)
    sim = MagtekSimulator()
    reader = MagtekCardReader(backend=backend, poll_ms=10)
    await reader.open()
    assert device.claimed and not device.kernel_driver  # detached, configured, claimed
    sim.insert(TRACK2)
    device.to_host.extend(sim.reports)
    await reader.accept_card()
    card = await reader.read_card()
    assert card.pan == "4000001234567899"
    assert await reader.eject(0.1) is True  # a swiped card never entered
    with pytest.raises(CardReaderFault) as info:
        await reader.capture()
    assert info.value.code == "not_supported"
    assert threading.main_thread().name not in backend.threads
    await reader.close()


async def test_magtek_open_makes_no_usb_call_on_the_event_loop():
    # Finding, claiming and reading the configuration and endpoint descriptors all go to the
    # bus: the fake backend notes the thread of every call, and none may be the loop's.
    device = magtek_device()
    backend = FakeBackend(device)
    reader = MagtekCardReader(backend=backend, poll_ms=10)
    await reader.open()
    assert backend.threads  # the bus was used...
    assert threading.current_thread().name not in backend.threads  # ...never from the loop
    assert device.claimed
    await reader.close()


async def test_magtek_report_in_pieces_and_bad_swipe():
    device = magtek_device()
    sim = MagtekSimulator()
    reader = MagtekCardReader(backend=FakeBackend(device), poll_ms=10)
    await reader.open()
    sim.inject("unreadable")
    sim.insert(TRACK2)
    report = sim.reports.popleft()
    device.to_host.extend([report[:64], report[64:128], report[128:]])
    await reader.accept_card()
    with pytest.raises(CardReaderFault) as info:
        await reader.read_card()
    assert info.value.code == "read_error"
    await reader.close()


async def test_missing_usb_device_is_named():
    reader = MagtekCardReader(backend=FakeBackend())
    with pytest.raises(DeviceUnavailable, match="usb://0801:0002"):
        await reader.open()


async def test_usb_escpos_printer_on_bulk_endpoints():
    device = printer_device()
    backend = FakeBackend(device)
    sim = PrinterSimulator()
    sim.attach(device.to_host.append, lambda: None)
    device.on_write = sim.receive
    printer = EscPosPrinter(
        lambda: open_usb_bulk(0x0416, 0x5011, backend=backend), status_timeout=1.0
    )
    await printer.open()
    assert (await printer.status()).paper is PaperState.OK
    await printer.print_receipt(["ATM SIMULATOR BANK", "THANK YOU"])
    assert sim.receipts == [["ATM SIMULATOR BANK", "THANK YOU"]]
    sim.inject("paper_out")
    with pytest.raises(PrinterFault):
        await printer.print_receipt(["x"])
    assert threading.main_thread().name not in backend.threads
    await printer.close()
