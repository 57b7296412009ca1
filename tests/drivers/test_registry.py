"""Device URLs and the backend registry: schemes, serial settings per family, clear errors,
and lazy imports (pyserial and pyusb are loaded only by the backends that need them)."""

import subprocess
import sys

import pytest

from drivers.errors import DeviceUnavailable
from drivers.escpos import EscPosPrinter
from drivers.lcdm import LcdmDispenser
from drivers.registry import BackendOptions, build_device, parse_device_url, serial_settings
from drivers.sankyo import SankyoCardReader
from drivers.simulated import SimulatedPinPad
from drivers.usb import MagtekCardReader

OPTIONS = BackendOptions(master_key=bytes(16))


def test_parse_urls():
    assert str(parse_device_url("sim")) == "sim"
    url = parse_device_url("serial:///dev/ttyUSB0?baud=19200&parity=e")
    assert (url.scheme, url.target, url.query) == (
        "serial",
        "/dev/ttyUSB0",
        {"baud": "19200", "parity": "e"},
    )
    assert parse_device_url("socket://127.0.0.1:7001").target == "127.0.0.1:7001"
    assert parse_device_url("usb://0801:0002").target == "0801:0002"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://x", "unknown device URL"),
        ("serial://", "names a port"),
        ("socket://host", "socket://host:port"),
        ("usb://magtek", "VVVV:PPPP"),
    ],
)
def test_bad_urls(url, words):
    with pytest.raises(ValueError, match=words):
        parse_device_url(url)


def test_family_defaults_and_overrides():
    assert serial_settings("card-reader", {}).describe() == "38400 8E1 RTS/CTS"
    assert serial_settings("dispenser", {}).describe() == "9600 8N1"
    assert (
        serial_settings("dispenser", {"baud": "19200", "rtscts": "1"}).describe()
        == "19200 8N1 RTS/CTS"
    )
    with pytest.raises(ValueError):
        serial_settings("dispenser", {"parity": "X"})
    with pytest.raises(ValueError):
        serial_settings("dispenser", {"baud": "fast"})


def test_builders_by_kind_and_scheme():
    assert isinstance(build_device("pin-pad", "sim", OPTIONS), SimulatedPinPad)
    assert isinstance(build_device("dispenser", "serial:///dev/ttyS0", OPTIONS), LcdmDispenser)
    assert isinstance(build_device("card-reader", "socket://h:1", OPTIONS), SankyoCardReader)
    assert isinstance(build_device("card-reader", "usb://0801:0002", OPTIONS), MagtekCardReader)
    assert isinstance(build_device("printer", "usb://0416:5011", OPTIONS), EscPosPrinter)
    with pytest.raises(ValueError, match="no usb backend for the dispenser"):
        build_device("dispenser", "usb://0801:0002", OPTIONS)
    with pytest.raises(ValueError, match="unknown device kind"):
        build_device("toaster", "sim", OPTIONS)


def test_bill_acceptor_backends():
    from drivers.id003 import Id003BillAcceptor
    from drivers.simulated import SimulatedBillAcceptor

    assert isinstance(build_device("bill-acceptor", "sim", OPTIONS), SimulatedBillAcceptor)
    assert isinstance(
        build_device("bill-acceptor", "serial:///dev/ttyS1", OPTIONS), Id003BillAcceptor
    )
    assert isinstance(build_device("bill-acceptor", "socket://h:1", OPTIONS), Id003BillAcceptor)
    with pytest.raises(ValueError, match="no usb backend for the bill-acceptor"):
        build_device("bill-acceptor", "usb://0801:0002", OPTIONS)


async def test_missing_serial_port_names_it():
    device = build_device("dispenser", "serial:///dev/ttyUSB97", OPTIONS)
    with pytest.raises(DeviceUnavailable, match="/dev/ttyUSB97"):
        await device.open()


async def test_unreachable_socket_names_it():
    device = build_device("printer", "socket://127.0.0.1:1", OPTIONS)
    with pytest.raises(DeviceUnavailable, match=r"socket://127\.0\.0\.1:1"):
        await device.open()


def test_optional_libraries_are_imported_lazily():
    code = (
        "import sys, drivers.registry, drivers.lcdm, drivers.usb, drivers.escpos\n"
        "from drivers.registry import build_device, BackendOptions\n"
        "build_device('dispenser', 'sim', BackendOptions())\n"
        "build_device('dispenser', 'serial:///dev/x', BackendOptions())\n"
        "print(sorted(m for m in ('serial', 'serial_asyncio', 'usb') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
