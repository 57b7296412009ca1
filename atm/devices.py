"""Build the ATM's four devices from URLs: the composition of ``drivers`` (backends picked by
``drivers.registry``) and ``simulators`` (for the ``pty`` scheme).

Device URLs (one per device; ``atm device --dispenser URL`` etc.):

    sim                             in-process simulated backend (default)
    pty                             this device's simulator on a new pseudo-terminal in this
                                    process, driven through the real serial driver
    pty?model=lcdm-4000             the same, for the dispenser: which Puloon model
    serial:///dev/ttyUSB0?baud=9600 a real device (or ``atm sim NAME``'s pty) on a serial port
    socket://127.0.0.1:7001         a device on TCP (``atm sim NAME --tcp 7001``)
    usb://0801:0002                 USB: MagTek HID card reader, or an ESC/POS printer

With ``sim`` and ``pty`` the customer acts in this process (``Customer``); otherwise at the
device itself (or through ``atm sim``'s control channel).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from device.config import DeviceConfig
from device.controller import Devices
from drivers.errors import DriverError
from drivers.registry import (
    KINDS,
    BackendOptions,
    DeviceUrl,
    build_device,
    dispenser_model,
    parse_device_url,
)
from drivers.simulated import SimulatedDepository
from simulators.base import Simulator
from simulators.bill_acceptor import BillAcceptorSimulator
from simulators.card_reader import CardReaderSimulator
from simulators.dispenser import DispenserSimulator, SimCassette
from simulators.lcdm4000 import Lcdm4000Simulator
from simulators.pin_pad import PinPadSimulator
from simulators.ports import PtyPort
from simulators.printer import PrinterSimulator

__all__ = [
    "DEVICE_SETS",
    "KINDS",
    "CardSlot",
    "CashSlot",
    "DeviceKit",
    "Faultable",
    "Keypad",
    "open_kit",
    "simulator_for",
]

# ``atm demo --devices NAME``: every device on this scheme.
DEVICE_SETS = {"sim": "sim", "serial": "pty"}


class Faultable(Protocol):
    """Fault injection, as every simulated backend and simulator offers it."""

    def inject(self, fault: str) -> None: ...
    def clear(self, fault: str | None = None) -> None: ...


class CardSlot(Faultable, Protocol):
    """The customer side of a card reader (simulated backend or simulator)."""

    @property
    def captured(self) -> list[str]: ...
    def insert(self, track2: str) -> None: ...
    def take_card(self) -> None: ...


class Keypad(Faultable, Protocol):
    def press(self, *keys: str) -> None: ...
    def type_digits(self, digits: str) -> None: ...


class CassetteView(Protocol):
    denomination_cents: int
    count: int


class CashSlot(Faultable, Protocol):
    @property
    def taken_total(self) -> dict[int, int]: ...
    @property
    def retracted(self) -> int: ...
    def take_cash(self) -> None: ...
    @property
    def cassettes(self) -> Sequence[CassetteView]: ...


class NoteSlot(Faultable, Protocol):
    """The customer's side of the bill acceptor (simulated in-process or on a pty)."""

    def insert_note(self, cents: int) -> None: ...
    def take_returned(self) -> list[int]: ...


def backend_options(config: DeviceConfig) -> BackendOptions:
    state_paths = {kind: config.sim_state_path(kind) for kind in KINDS}
    return BackendOptions(
        cassettes=tuple((c.denomination_cents, c.count) for c in config.cassettes),
        master_key=config.master_key,
        key_scheme=config.key_scheme,
        state_paths={kind: path for kind, path in state_paths.items() if path is not None},
        counts_path=config.dispenser_counts_path,
    )


def simulator_for(
    kind: str,
    config: DeviceConfig,
    state_path: Path | None = None,
    *,
    model: str = "lcdm-2000",
) -> Simulator:
    """The peripheral simulator for one device kind, loaded as ``config`` says; ``model``
    picks the dispenser (``lcdm-2000`` or ``lcdm-4000``). With ``state_path`` (default:
    ``config.sim_state_path(kind)``) it keeps its physical state there across a restart."""
    state_path = state_path or config.sim_state_path(kind)
    if kind == "card-reader":
        return CardReaderSimulator(state_path=state_path)
    if kind == "pin-pad":
        return PinPadSimulator(config.master_key, config.key_scheme)
    if kind == "dispenser":
        simulator = Lcdm4000Simulator if model == "lcdm-4000" else DispenserSimulator
        return simulator(
            [SimCassette(c.denomination_cents, c.count) for c in config.cassettes],
            state_path=state_path,
        )
    if kind == "printer":
        return PrinterSimulator(state_path=state_path)
    if kind == "bill-acceptor":
        return BillAcceptorSimulator(state_path=state_path)
    raise ValueError(f"unknown device kind {kind!r}; known: {', '.join(KINDS)}")


@dataclass
class DeviceKit:
    devices: Devices
    urls: dict[str, str]
    # Customer sides, where the device lives in this process (else None).
    card_reader: CardSlot | None = None
    pin_pad: Keypad | None = None
    dispenser: CashSlot | None = None
    notes: NoteSlot | None = None
    simulators: dict[str, Simulator] = field(default_factory=dict)
    _ports: list[PtyPort] = field(default_factory=list)

    def by_kind(self) -> dict[str, Any]:
        d = self.devices
        return {
            "card-reader": d.card_reader,
            "pin-pad": d.pin_pad,
            "dispenser": d.dispenser,
            "printer": d.printer,
            "bill-acceptor": d.bill_acceptor,
        }

    async def check(self) -> list[str]:
        """Open and close every device once; one line per device that fails."""
        problems = []
        for kind, device in self.by_kind().items():
            try:
                await device.open()
            except DriverError as exc:
                problems.append(f"{kind} at {self.urls[kind]}: {exc}")
                continue
            with contextlib.suppress(DriverError):
                await device.close()
        return problems

    def close(self) -> None:
        for port in self._ports:
            port.close()
        self._ports.clear()


async def open_kit(
    urls: Mapping[str, str], config: DeviceConfig, *, depository: bool = False
) -> DeviceKit:
    """Build the five devices (``urls`` maps kind -> URL; missing kinds are ``sim``), and
    with ``depository`` an envelope depository for check deposits (simulated in-process:
    there is no wire protocol for one). ``ValueError`` for a bad URL. Devices are built,
    not opened: the controller opens them."""
    options = backend_options(config)
    chosen = {kind: urls.get(kind, "sim") for kind in KINDS}
    built: dict[str, Any] = {}
    sides: dict[str, Any] = {}
    simulators: dict[str, Simulator] = {}
    ports: list[PtyPort] = []
    try:
        for kind, url in chosen.items():
            if url == "pty" or url.startswith("pty?"):
                query = parse_device_url(f"serial://pty{url[3:]}").query
                model = dispenser_model(DeviceUrl("pty", "", query))
                sim = simulator_for(kind, config, model=model)
                port = PtyPort(sim)
                ports.append(port)
                path = await port.start()
                chosen[kind] = f"serial://{path}" + (f"?model={model}" if "model" in query else "")
                built[kind] = build_device(kind, chosen[kind], options)
                sides[kind] = simulators[kind] = sim
            else:
                parse_device_url(url)
                built[kind] = build_device(kind, url, options)
                if url == "sim":
                    sides[kind] = built[kind]
    except BaseException:
        for port in ports:
            port.close()
        raise
    return DeviceKit(
        Devices(
            built["card-reader"],
            built["pin-pad"],
            built["dispenser"],
            built["printer"],
            built["bill-acceptor"],
            SimulatedDepository() if depository else None,
        ),
        chosen,
        card_reader=sides.get("card-reader"),
        pin_pad=sides.get("pin-pad"),
        dispenser=sides.get("dispenser"),
        notes=sides.get("bill-acceptor"),
        simulators=simulators,
        _ports=ports,
    )
