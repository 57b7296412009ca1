"""USB devices through pyusb (imported only when used), every pyusb call in a worker thread
(``asyncio.to_thread``) so the event loop never blocks on the bus.

- ``MagtekCardReader``: a MagTek-style HID swipe reader (vendor 0x0801, product 0x0002):
  one interrupt IN report per swipe (``drivers.codecs.magtek``). A swipe reader has no motor:
  ``eject`` returns at once (the card never left the customer's hand) and ``capture`` is not
  possible (``CardReaderFault`` code ``not_supported``).
- ``UsbBulkChannel``: a byte pipe over a pair of bulk endpoints (OUT 0x01, IN 0x82 by
  default), on which ``drivers.escpos.EscPosPrinter`` drives a USB receipt printer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from drivers.codecs import magtek
from drivers.errors import CardReaderFault, DeviceProtocolError, DeviceUnavailable
from drivers.interfaces import CardData, CardReader
from drivers.transport import Channel

__all__ = ["MagtekCardReader", "UsbBulkChannel", "open_usb_bulk", "open_usb_device"]

log = logging.getLogger(__name__)


def _usb() -> Any:
    try:
        import usb.core
        import usb.util
    except ImportError as exc:
        raise DeviceUnavailable("USB devices need pyusb: pip install 'atm-simulator[usb]'") from exc
    return usb


def open_usb_device(vendor: int, product: int, backend: Any = None) -> Any:
    """Find, detach from the kernel driver, configure and claim interface 0 (blocking: call it
    through ``asyncio.to_thread``)."""
    usb = _usb()
    name = f"usb://{vendor:04x}:{product:04x}"
    try:
        device = usb.core.find(idVendor=vendor, idProduct=product, backend=backend)
    except usb.core.NoBackendError as exc:
        raise DeviceUnavailable(f"{name}: no libusb backend on this machine") from exc
    if device is None:
        raise DeviceUnavailable(f"{name}: no such USB device attached")
    try:
        if device.is_kernel_driver_active(0):
            device.detach_kernel_driver(0)
        device.set_configuration()
        usb.util.claim_interface(device, 0)
    except usb.core.USBError as exc:
        raise DeviceUnavailable(f"{name}: cannot claim the device: {exc}") from exc
    return device


class UsbBulkChannel(Channel):
    def __init__(
        self, device: Any, ep_out: int, ep_in: int, description: str, poll_ms: int = 100
    ) -> None:
        self._device = device
        self._out = ep_out
        self._in = ep_in
        self._poll_ms = poll_ms
        self.description = description

    async def write(self, data: bytes) -> None:
        usb = _usb()
        try:
            await asyncio.to_thread(self._device.write, self._out, data, 5000)
        except usb.core.USBError as exc:
            raise DeviceUnavailable(f"{self.description}: write failed: {exc}") from exc

    def _read_once(self) -> bytes:
        usb = _usb()
        try:
            return bytes(self._device.read(self._in, 64, self._poll_ms))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise DeviceUnavailable(f"{self.description}: read failed: {exc}") from exc

    async def read(self) -> bytes:
        # Short blocking reads in a worker thread; a cancelled read ends with its poll.
        while True:
            data = await asyncio.to_thread(self._read_once)
            if data:
                return data

    async def close(self) -> None:
        usb = _usb()
        await asyncio.to_thread(usb.util.dispose_resources, self._device)


async def open_usb_bulk(
    vendor: int, product: int, *, ep_out: int = 0x01, ep_in: int = 0x82, backend: Any = None
) -> UsbBulkChannel:
    device = await asyncio.to_thread(open_usb_device, vendor, product, backend)
    return UsbBulkChannel(device, ep_out, ep_in, f"usb://{vendor:04x}:{product:04x}")


class MagtekCardReader(CardReader):
    def __init__(
        self,
        vendor: int = magtek.VENDOR,
        product: int = magtek.PRODUCT_HID,
        *,
        backend: Any = None,
        poll_ms: int = 200,
    ) -> None:
        self._vendor = vendor
        self._product = product
        self._backend = backend
        self._poll_ms = poll_ms
        self._device: Any = None
        self._endpoint = 0x81
        self._swipe: magtek.Swipe | None = None
        self.description = f"usb://{vendor:04x}:{product:04x}"

    async def open(self) -> None:
        self._device, self._endpoint = await asyncio.to_thread(self._open_blocking)

    def _open_blocking(self) -> tuple[Any, int]:
        """Find, claim and look up the IN endpoint: every pyusb call of ``open``, in the worker
        thread (descriptor reads go to the bus too)."""
        device = open_usb_device(self._vendor, self._product, self._backend)
        usb = _usb()
        try:
            interface = device.get_active_configuration()[(0, 0)]
            endpoint = usb.util.find_descriptor(
                interface,
                custom_match=lambda e: (
                    usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
                ),
            )
        except BaseException:
            usb.util.dispose_resources(device)
            raise
        if endpoint is None:
            usb.util.dispose_resources(device)
            raise DeviceProtocolError(f"{self.description}: no IN endpoint (not a HID reader?)")
        return device, int(endpoint.bEndpointAddress)

    async def close(self) -> None:
        if self._device is not None:
            device, self._device = self._device, None
            await asyncio.to_thread(_usb().util.dispose_resources, device)

    def _read_report(self) -> bytes:
        usb = _usb()
        report = bytearray()
        while len(report) < magtek.REPORT_LENGTH:
            try:
                chunk = self._device.read(
                    self._endpoint, magtek.REPORT_LENGTH - len(report), self._poll_ms
                )
            except usb.core.USBTimeoutError:
                if not report:
                    return b""
                raise DeviceProtocolError(
                    f"{self.description}: report cut short at {len(report)} bytes"
                ) from None
            except usb.core.USBError as exc:
                raise DeviceUnavailable(f"{self.description}: read failed: {exc}") from exc
            report += bytes(chunk)
        return bytes(report)

    async def accept_card(self) -> None:
        if self._device is None:
            raise DeviceUnavailable(f"{self.description}: not open")
        while True:
            report = await asyncio.to_thread(self._read_report)
            if report:
                break
        try:
            self._swipe = magtek.decode_report(report)
        except ValueError as exc:
            raise DeviceProtocolError(f"{self.description}: {exc}") from exc

    async def read_card(self) -> CardData:
        swipe, self._swipe = self._swipe, None
        if swipe is None or not swipe.track2_ok:
            raise CardReaderFault("track 2 could not be read from the swipe", code="read_error")
        try:
            return CardData(swipe.track2)
        except ValueError as exc:
            raise CardReaderFault(f"track 2 unreadable: {exc}", code="read_error") from exc

    async def eject(self, timeout: float) -> bool:
        return True

    async def capture(self) -> None:
        raise CardReaderFault("a swipe reader cannot capture a card", code="not_supported")
