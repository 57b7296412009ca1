"""A fake ``usb.backend.IBackend``: there is no USB bus (and no libusb) on the machines these
tests run on, so this stands in for the bus, and only for the bus. pyusb's own ``usb.core``
code runs unchanged on top of it; the devices behind it are our simulators (the ESC/POS
printer simulator's bytes, the MagTek simulator's HID reports)."""

from __future__ import annotations

import array
import threading
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

BULK, INTERRUPT = 2, 3


def _endpoint(address: int, kind: int, size: int) -> SimpleNamespace:
    return SimpleNamespace(
        bLength=7,
        bDescriptorType=5,
        bEndpointAddress=address,
        bmAttributes=kind,
        wMaxPacketSize=size,
        bInterval=1,
        bRefresh=0,
        bSynchAddress=0,
        extra_descriptors=[],
    )


class FakeDevice:
    def __init__(
        self, vendor: int, product: int, endpoints: list[SimpleNamespace], iface_class: int
    ) -> None:
        self.desc = SimpleNamespace(
            bLength=18,
            bDescriptorType=1,
            bcdUSB=0x0200,
            bDeviceClass=0,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=64,
            idVendor=vendor,
            idProduct=product,
            bcdDevice=0x0100,
            iManufacturer=0,
            iProduct=0,
            iSerialNumber=0,
            bNumConfigurations=1,
            address=5,
            bus=1,
            port_number=1,
            port_numbers=(1,),
            speed=2,
        )
        self.config = SimpleNamespace(
            bLength=9,
            bDescriptorType=2,
            wTotalLength=32,
            bNumInterfaces=1,
            bConfigurationValue=1,
            iConfiguration=0,
            bmAttributes=0x80,
            bMaxPower=50,
            extra_descriptors=[],
        )
        self.interface = SimpleNamespace(
            bLength=9,
            bDescriptorType=4,
            bInterfaceNumber=0,
            bAlternateSetting=0,
            bNumEndpoints=len(endpoints),
            bInterfaceClass=iface_class,
            bInterfaceSubClass=0,
            bInterfaceProtocol=0,
            iInterface=0,
            extra_descriptors=[],
        )
        self.endpoints = endpoints
        self.kernel_driver = True
        self.claimed = False
        self.configured = 0
        self.to_host: deque[bytes] = deque()  # what the device will send (IN)
        self.on_write: Callable[[bytes], None] = lambda data: None
        self.lock = threading.Lock()


class FakeBackend(usb.backend.IBackend):  # type: ignore[misc]
    def __init__(self, *devices: FakeDevice) -> None:
        self.devices = list(devices)
        self.threads: set[str] = set()  # which threads called into the "bus" (every method)

    def _note(self) -> None:
        self.threads.add(threading.current_thread().name)

    def enumerate_devices(self) -> list[FakeDevice]:
        self._note()
        return self.devices

    def get_device_descriptor(self, dev: FakeDevice) -> Any:
        self._note()
        return dev.desc

    def get_configuration_descriptor(self, dev: FakeDevice, config: int) -> Any:
        self._note()
        return dev.config

    def get_interface_descriptor(self, dev: FakeDevice, intf: int, alt: int, config: int) -> Any:
        self._note()
        return dev.interface

    def get_endpoint_descriptor(
        self, dev: FakeDevice, ep: int, intf: int, alt: int, config: int
    ) -> Any:
        self._note()
        return dev.endpoints[ep]

    def open_device(self, dev: FakeDevice) -> FakeDevice:
        self._note()
        return dev

    def close_device(self, handle: FakeDevice) -> None:
        self._note()
        return None

    def set_configuration(self, handle: FakeDevice, value: int) -> None:
        self._note()
        handle.configured = value

    def get_configuration(self, handle: FakeDevice) -> int:
        self._note()
        return handle.configured

    def claim_interface(self, handle: FakeDevice, intf: int) -> None:
        self._note()
        if handle.kernel_driver:
            raise usb.core.USBError("Resource busy", errno=16)
        handle.claimed = True

    def release_interface(self, handle: FakeDevice, intf: int) -> None:
        self._note()
        handle.claimed = False

    def is_kernel_driver_active(self, handle: FakeDevice, intf: int) -> bool:
        self._note()
        return handle.kernel_driver

    def detach_kernel_driver(self, handle: FakeDevice, intf: int) -> None:
        self._note()
        handle.kernel_driver = False

    def _read(self, handle: FakeDevice, buff: Any) -> int:
        self._note()
        with handle.lock:
            if not handle.to_host:
                raise usb.core.USBTimeoutError("Operation timed out", errno=110)
            data = handle.to_host.popleft()
            if len(data) > len(buff):
                handle.to_host.appendleft(data[len(buff) :])
                data = data[: len(buff)]
        buff[: len(data)] = array.array("B", data)
        return len(data)

    def intr_read(self, handle: FakeDevice, ep: int, intf: int, buff: Any, timeout: int) -> int:
        return self._read(handle, buff)

    def bulk_read(self, handle: FakeDevice, ep: int, intf: int, buff: Any, timeout: int) -> int:
        return self._read(handle, buff)

    def bulk_write(self, handle: FakeDevice, ep: int, intf: int, data: Any, timeout: int) -> int:
        self._note()
        handle.on_write(bytes(data))
        return len(data)


def magtek_device() -> FakeDevice:
    return FakeDevice(0x0801, 0x0002, [_endpoint(0x81, INTERRUPT, 64)], iface_class=3)


def printer_device() -> FakeDevice:
    return FakeDevice(
        0x0416, 0x5011, [_endpoint(0x01, BULK, 64), _endpoint(0x82, BULK, 64)], iface_class=7
    )
