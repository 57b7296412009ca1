"""Transports: move bytes, nothing else. A ``Channel`` is a byte pipe to one device; serial
ports (pyserial-asyncio, imported only when used), TCP-attached simulators and USB bulk pipes
(``drivers.usb``) all look the same to the drivers above them."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import os
import termios
from dataclasses import dataclass

from drivers.errors import DeviceUnavailable
from protocol.hexdump import trace_text

__all__ = [
    "FAMILY_DEFAULTS",
    "Channel",
    "SerialSettings",
    "StreamChannel",
    "open_serial",
    "open_tcp",
]

log = logging.getLogger(__name__)
#: ``--trace``: every chunk of bytes to and from a device, redacted, at DEBUG on this logger.
wire_log = logging.getLogger("drivers.wire")


def trace(direction: str, where: str, data: bytes) -> None:
    if wire_log.isEnabledFor(logging.DEBUG):
        wire_log.debug("%s", trace_text(direction, where, data))


class Channel(abc.ABC):
    """A byte pipe to one device. ``read`` returns at least one byte or raises
    ``DeviceUnavailable`` when the other end went away."""

    description: str = "device"

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def read(self) -> bytes: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class StreamChannel(Channel):
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, description: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.description = description

    async def write(self, data: bytes) -> None:
        trace("driver ->", self.description, data)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise DeviceUnavailable(f"{self.description}: write failed: {exc}") from exc

    async def read(self) -> bytes:
        try:
            data = await self._reader.read(4096)
        except OSError as exc:
            raise DeviceUnavailable(f"{self.description}: disconnected ({exc})") from exc
        if not data:
            raise DeviceUnavailable(f"{self.description}: disconnected (end of stream)")
        trace("driver <-", self.description, data)
        return data

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


@dataclass(frozen=True)
class SerialSettings:
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # N, E, O
    stopbits: int = 1
    rtscts: bool = False

    def __post_init__(self) -> None:
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity is N, E or O, got {self.parity!r}")
        if self.bytesize not in (7, 8) or self.stopbits not in (1, 2) or self.baudrate <= 0:
            raise ValueError(f"bad serial settings {self}")

    def describe(self) -> str:
        flow = " RTS/CTS" if self.rtscts else ""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}{flow}"


# Per device family, as the real units ship (docs/devices.md).
FAMILY_DEFAULTS: dict[str, SerialSettings] = {
    "dispenser": SerialSettings(9600, 8, "N", 1),  # Puloon LCDM-2000
    "card-reader": SerialSettings(38400, 8, "E", 1, rtscts=True),  # Sankyo ICT3K5
    "pin-pad": SerialSettings(9600, 8, "N", 1),  # ZT588-style EPP
    "printer": SerialSettings(19200, 8, "N", 1),  # ESC/POS thermal printer
    "bill-acceptor": SerialSettings(9600, 8, "E", 1),  # JCM ID003
}


async def open_serial(path: str, settings: SerialSettings) -> StreamChannel:
    """Open a serial port (or any pyserial URL) through pyserial-asyncio."""
    try:
        import serial
        import serial_asyncio
    except ImportError as exc:  # the optional extra is missing
        raise DeviceUnavailable(
            "serial devices need pyserial-asyncio: pip install 'atm-simulator[serial]'"
        ) from exc
    if settings.parity != "N" and _is_pty(path):
        # A pseudo-terminal has no wire, and Linux refuses PARENB on one (EINVAL): a
        # simulator on a pty is reached at 8N1 whatever the real device would need.
        log.info("%s is a pseudo-terminal: parity %s not applied", path, settings.parity)
        settings = dataclasses.replace(settings, parity="N")
    try:
        reader, writer = await serial_asyncio.open_serial_connection(
            url=path,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            rtscts=settings.rtscts,
        )
    except (OSError, serial.SerialException, ValueError, termios.error) as exc:
        raise DeviceUnavailable(f"serial port {path} cannot be opened: {exc}") from exc
    log.debug("opened %s at %s", path, settings.describe())
    return StreamChannel(reader, writer, f"{path} ({settings.describe()})")


def _is_pty(path: str) -> bool:
    try:
        return path.startswith("/dev/pts/") or 136 <= os.major(os.stat(path).st_rdev) <= 143
    except OSError:
        return False


async def open_tcp(host: str, port: int) -> StreamChannel:
    """A device (usually a simulator, or a serial-to-Ethernet adapter) over raw TCP."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise DeviceUnavailable(f"socket://{host}:{port} cannot be reached: {exc}") from exc
    return StreamChannel(reader, writer, f"socket://{host}:{port}")
