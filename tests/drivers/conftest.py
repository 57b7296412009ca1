"""Rigs for the contract suites: each device class on the in-process simulated backend
("sim") and on its serial driver talking to the peripheral simulator over a real
pseudo-terminal in raw mode ("serial"). A rig has ``device`` (the driver interface, opened)
and ``customer`` (the customer side with ``inject``/``clear``), the same on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.escpos import EscPosPrinter
from drivers.id003 import Id003BillAcceptor
from drivers.lcdm import LcdmDispenser
from drivers.lcdm4000 import Lcdm4000Dispenser
from drivers.sankyo import SankyoCardReader
from drivers.simulated import (
    Cassette,
    SimulatedBillAcceptor,
    SimulatedCardReader,
    SimulatedDispenser,
    SimulatedPinPad,
    SimulatedPrinter,
)
from drivers.transport import FAMILY_DEFAULTS, open_serial
from drivers.zt588 import Zt588PinPad
from protocol.security import KeyScheme, key_check_value, tdes_ecb
from simulators.bill_acceptor import BillAcceptorSimulator
from simulators.card_reader import CardReaderSimulator
from simulators.dispenser import DispenserSimulator, SimCassette
from simulators.lcdm4000 import Lcdm4000Simulator
from simulators.pin_pad import PinPadSimulator
from simulators.ports import PtyPort
from simulators.printer import PrinterSimulator

MASTER_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
# The working PIN key the pin_pad rigs load under MASTER_KEY, as sign-on would.
PIN_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
CASSETTES = [(2000, 100), (5000, 50)]
STACKER = 10  # a small stacker, so that "full" is quick to reach
TRACK2 = "4000001234567899=30121010000000000000"

# Short, bounded timeouts: a silent device must fail fast in tests.
FAST: dict[str, Any] = {"ack_timeout": 0.3, "reply_timeout": 0.4, "retries": 2}


@dataclass
class Rig:
    device: Any
    customer: Any
    port: PtyPort | None = None


def serial_connect(port: PtyPort, family: str) -> Any:
    return lambda: open_serial(port.path, FAMILY_DEFAULTS[family])


async def make_rig(kind: str, backend: str, *, load_key: bool = True) -> Rig:
    """An opened rig; a PIN pad also gets PIN_KEY as its working key unless ``load_key`` is
    False (a pad fresh from power-up has none)."""
    if backend == "sim":
        factories: dict[str, Any] = {
            "dispenser": lambda: SimulatedDispenser([Cassette(d, n) for d, n in CASSETTES]),
            "card-reader": SimulatedCardReader,
            "pin-pad": lambda: SimulatedPinPad(MASTER_KEY),
            "printer": SimulatedPrinter,
            "bill-acceptor": lambda: SimulatedBillAcceptor(stacker_capacity=STACKER),
        }
        device: Any = factories[kind]()
        await device.open()
        if kind == "pin-pad" and load_key:
            await load_pin_key(device)
        return Rig(device, device)
    model = Lcdm4000Simulator if backend == "lcdm-4000" else DispenserSimulator
    simulators: dict[str, Any] = {
        "dispenser": lambda: model([SimCassette(d, n) for d, n in CASSETTES]),
        "card-reader": CardReaderSimulator,
        "pin-pad": lambda: PinPadSimulator(MASTER_KEY),
        "printer": PrinterSimulator,
        "bill-acceptor": lambda: BillAcceptorSimulator(stacker_capacity=STACKER),
    }
    sim = simulators[kind]()
    port = PtyPort(sim)
    await port.start()
    connect = serial_connect(port, kind)
    if kind == "dispenser":
        driver = Lcdm4000Dispenser if backend == "lcdm-4000" else LcdmDispenser
        device = driver(connect, CASSETTES, poll_interval=0.01, dispense_timeout=0.5, **FAST)
    elif kind == "card-reader":
        device = SankyoCardReader(connect, poll_interval=0.01, **FAST)
    elif kind == "pin-pad":
        device = Zt588PinPad(connect, grace=0.5, **FAST)
    elif kind == "bill-acceptor":
        # Stacking on the production default (10 s): every test stacks successfully, and a
        # 1 s wall-clock limit there was a race with a loaded machine (the simulator moves a
        # note on per poll, three polls a note).
        device = Id003BillAcceptor(connect, reply_timeout=0.3, retries=2, poll_interval=0.01)
    else:
        device = EscPosPrinter(connect, status_timeout=0.3, retries=2)
    await device.open()
    if kind == "pin-pad" and load_key:
        await load_pin_key(device)
    return Rig(device, sim, port)


async def load_pin_key(pad: Any) -> None:
    """Loads PIN_KEY into an opened PIN pad, encrypted under MASTER_KEY, as sign-on does."""
    encrypted = tdes_ecb(MASTER_KEY, PIN_KEY[:8]) + tdes_ecb(MASTER_KEY, PIN_KEY[8:])
    await pad.load_working_key(encrypted, key_check_value(KeyScheme.TDES, PIN_KEY))


async def _rig(kind: str, backend: str, *, load_key: bool = True) -> AsyncIterator[Rig]:
    rig = await make_rig(kind, backend, load_key=load_key)
    try:
        yield rig
    finally:
        await rig.device.close()
        if rig.port is not None:
            rig.port.close()


@pytest.fixture(params=["sim", "serial", "lcdm-4000"])
async def dispenser(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for rig in _rig("dispenser", request.param):
        yield rig


@pytest.fixture(params=["sim", "serial"])
async def card_reader(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for rig in _rig("card-reader", request.param):
        yield rig


@pytest.fixture(params=["sim", "serial"])
async def pin_pad(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for rig in _rig("pin-pad", request.param):
        yield rig


@pytest.fixture(params=["sim", "serial"])
async def pin_pad_without_key(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """A PIN pad fresh from power-up: master key only, no working PIN key yet."""
    async for rig in _rig("pin-pad", request.param, load_key=False):
        yield rig


@pytest.fixture(params=["sim", "serial"])
async def printer(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for rig in _rig("printer", request.param):
        yield rig


@pytest.fixture(params=["dispenser", "card-reader", "pin-pad", "printer", "bill-acceptor"])
async def serial_rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """Each serial driver on its simulator over a pty (for the byte-level fault suite)."""
    async for rig in _rig(request.param, "serial"):
        yield rig


@pytest.fixture(params=["sim", "serial"])
async def bill_acceptor(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for rig in _rig("bill-acceptor", request.param):
        yield rig
