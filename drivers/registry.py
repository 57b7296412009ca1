"""Pick a backend for a device from a URL. Backends are looked up by scheme and imported only
when asked for, so pyserial and pyusb are needed only by those who use them.

    sim                                 in-process simulated backend (drivers.simulated)
    serial:///dev/ttyUSB0?baud=9600     the device's serial protocol over a serial port;
                                        query: baud, parity (N/E/O), bytesize, stopbits, rtscts
    socket://127.0.0.1:7001             the same protocol over TCP (``atm sim NAME --tcp``)
                                        dispenser query: model=lcdm-2000 (default) or lcdm-4000
                                        bill acceptor: JCM ID003 (9600 8E1)
    usb://0801:0002                     USB vendor:product (card reader: MagTek HID; printer:
                                        ESC/POS on bulk endpoints, query: out=0x01, in=0x82)

Unset serial settings take the device family's defaults (``transport.FAMILY_DEFAULTS``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from drivers.interfaces import BillAcceptor, CardReader, CashDispenser, PinPad, ReceiptPrinter
from drivers.transport import FAMILY_DEFAULTS, Channel, SerialSettings
from protocol.security import KeyScheme

__all__ = [
    "BACKENDS",
    "DISPENSER_MODELS",
    "KINDS",
    "BackendOptions",
    "DeviceUrl",
    "build_device",
    "dispenser_model",
    "parse_device_url",
]

KINDS = ("card-reader", "pin-pad", "dispenser", "printer", "bill-acceptor")
Device = CardReader | PinPad | CashDispenser | ReceiptPrinter | BillAcceptor


@dataclass(frozen=True)
class DeviceUrl:
    scheme: str
    target: str = ""  # serial path, host:port, or vendor:product
    query: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.scheme if not self.target else f"{self.scheme}://{self.target}"


def parse_device_url(url: str) -> DeviceUrl:
    """``ValueError`` with a message fit for a person when the URL makes no sense."""
    if url == "sim":
        return DeviceUrl("sim")
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "serial":
        path = parts.path or parts.netloc
        if not path:
            raise ValueError(f"{url!r}: a serial URL names a port, as serial:///dev/ttyUSB0")
        return DeviceUrl("serial", path, query)
    if parts.scheme == "socket":
        if not parts.hostname or not parts.port:
            raise ValueError(f"{url!r}: a socket URL is socket://host:port")
        return DeviceUrl("socket", f"{parts.hostname}:{parts.port}", query)
    if parts.scheme == "usb":
        vid, _, pid = parts.netloc.partition(":")
        try:
            int(vid, 16), int(pid, 16)
        except ValueError:
            raise ValueError(f"{url!r}: a USB URL is usb://VVVV:PPPP (hex)") from None
        return DeviceUrl("usb", parts.netloc.lower(), query)
    raise ValueError(f"{url!r}: unknown device URL; use sim, serial://, socket:// or usb://")


@dataclass(frozen=True)
class BackendOptions:
    """What a backend needs beyond its URL (from the device configuration)."""

    cassettes: tuple[tuple[int, int], ...] = ((2000, 500), (5000, 200))
    master_key: bytes = b""
    low_threshold: int = 20
    # The terminal's key scheme (T or A): the PIN pad's master key type and PIN block format.
    key_scheme: KeyScheme = KeyScheme.TDES
    # Simulated backends: their physical state files, per device kind (absent: not kept).
    state_paths: Mapping[str, Path] = field(default_factory=dict)
    # A dispenser driver that keeps its own note counts (LCDM-2000) persists them here.
    counts_path: Path | None = None


def serial_settings(kind: str, query: dict[str, str]) -> SerialSettings:
    base = FAMILY_DEFAULTS[kind]
    changes: dict[str, Any] = {}
    try:
        if "baud" in query:
            changes["baudrate"] = int(query["baud"])
        if "bytesize" in query:
            changes["bytesize"] = int(query["bytesize"])
        if "stopbits" in query:
            changes["stopbits"] = int(query["stopbits"])
        if "parity" in query:
            changes["parity"] = query["parity"].upper()
        if "rtscts" in query:
            changes["rtscts"] = query["rtscts"].lower() in ("1", "true", "yes", "on")
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise ValueError(f"bad serial settings {query}: {exc}") from exc


def _connector(kind: str, url: DeviceUrl) -> Callable[[], Awaitable[Channel]]:
    from drivers import transport

    if url.scheme == "serial":
        settings = serial_settings(kind, url.query)
        return lambda: transport.open_serial(url.target, settings)
    if url.scheme == "socket":
        host, _, port = url.target.rpartition(":")
        return lambda: transport.open_tcp(host, int(port))
    raise ValueError(f"{url}: not a byte-stream URL")


def _usb_ids(url: DeviceUrl) -> tuple[int, int]:
    vid, _, pid = url.target.partition(":")
    return int(vid, 16), int(pid, 16)


# -- builders, one per (device kind, scheme); each imports its backend lazily -------------


def _sim_card_reader(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.simulated import SimulatedCardReader

    return SimulatedCardReader(state_path=o.state_paths.get("card-reader"))


def _sim_pin_pad(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.simulated import SimulatedPinPad

    return SimulatedPinPad(o.master_key, o.key_scheme)


def _sim_dispenser(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.simulated import Cassette, SimulatedDispenser

    return SimulatedDispenser(
        [Cassette(d, n, o.low_threshold) for d, n in o.cassettes],
        state_path=o.state_paths.get("dispenser"),
    )


def _sim_printer(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.simulated import SimulatedPrinter

    return SimulatedPrinter(state_path=o.state_paths.get("printer"))


def _sankyo(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.sankyo import SankyoCardReader

    return SankyoCardReader(_connector("card-reader", url))


def _zt588(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.zt588 import Zt588PinPad

    return Zt588PinPad(_connector("pin-pad", url), pin_format=o.key_scheme.pin_format)


DISPENSER_MODELS = ("lcdm-2000", "lcdm-4000")


def dispenser_model(url: DeviceUrl) -> str:
    """The dispenser model a URL names (``?model=``), checked."""
    model = url.query.get("model", "lcdm-2000").lower()
    if model not in DISPENSER_MODELS:
        raise ValueError(
            f"{url}: unknown dispenser model {model!r}; known: {', '.join(DISPENSER_MODELS)}"
        )
    return model


def _lcdm(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.lcdm import LcdmDispenser
    from drivers.lcdm4000 import Lcdm4000Dispenser

    model = Lcdm4000Dispenser if dispenser_model(url) == "lcdm-4000" else LcdmDispenser
    return model(
        _connector("dispenser", url),
        list(o.cassettes),
        low_threshold=o.low_threshold,
        counts_path=o.counts_path,
    )


def _escpos(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.escpos import EscPosPrinter

    return EscPosPrinter(_connector("printer", url))


def _magtek(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.usb import MagtekCardReader

    return MagtekCardReader(*_usb_ids(url))


def _usb_printer(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.escpos import EscPosPrinter
    from drivers.usb import open_usb_bulk

    vid, pid = _usb_ids(url)
    ep_out = int(url.query.get("out", "0x01"), 0)
    ep_in = int(url.query.get("in", "0x82"), 0)
    return EscPosPrinter(lambda: open_usb_bulk(vid, pid, ep_out=ep_out, ep_in=ep_in))


def _sim_bill_acceptor(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.simulated import SimulatedBillAcceptor

    return SimulatedBillAcceptor(state_path=o.state_paths.get("bill-acceptor"))


def _id003(url: DeviceUrl, o: BackendOptions) -> Device:
    from drivers.id003 import Id003BillAcceptor

    return Id003BillAcceptor(_connector("bill-acceptor", url))


Builder = Callable[[DeviceUrl, BackendOptions], Device]
BACKENDS: dict[tuple[str, str], Builder] = {
    ("card-reader", "sim"): _sim_card_reader,
    ("card-reader", "serial"): _sankyo,
    ("card-reader", "socket"): _sankyo,
    ("card-reader", "usb"): _magtek,
    ("pin-pad", "sim"): _sim_pin_pad,
    ("pin-pad", "serial"): _zt588,
    ("pin-pad", "socket"): _zt588,
    ("dispenser", "sim"): _sim_dispenser,
    ("dispenser", "serial"): _lcdm,
    ("dispenser", "socket"): _lcdm,
    ("printer", "sim"): _sim_printer,
    ("printer", "serial"): _escpos,
    ("printer", "socket"): _escpos,
    ("printer", "usb"): _usb_printer,
    ("bill-acceptor", "sim"): _sim_bill_acceptor,
    ("bill-acceptor", "serial"): _id003,
    ("bill-acceptor", "socket"): _id003,
}


def build_device(kind: str, url: str | DeviceUrl, options: BackendOptions) -> Device:
    """Build (not open) the backend for ``kind`` at ``url``. ``ValueError`` for a URL or a
    scheme this device kind has no backend for."""
    if kind not in KINDS:
        raise ValueError(f"unknown device kind {kind!r}; known: {', '.join(KINDS)}")
    parsed = parse_device_url(url) if isinstance(url, str) else url
    builder = BACKENDS.get((kind, parsed.scheme))
    if builder is None:
        schemes = sorted(s for k, s in BACKENDS if k == kind)
        raise ValueError(f"no {parsed.scheme} backend for the {kind}; use {', '.join(schemes)}")
    return builder(parsed, options)
