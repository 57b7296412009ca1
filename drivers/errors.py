"""The drivers package's exception tree (one root: ``DriverError``)."""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error raised by a device driver."""


class DeviceTimeout(DriverError):
    """The device did not answer in time (or a person did not act in time)."""


class DeviceProtocolError(DriverError):
    """The device answered with bytes that do not fit its protocol (garbled, wrong device)."""


class DeviceUnavailable(DriverError):
    """The device (port, USB device) cannot be opened or went away."""


class DeviceFault(DriverError):
    """The device reported a hardware condition, with the device's own error code."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class CardReaderFault(DeviceFault):
    """Card jam, unreadable card, capture bin full, ..."""


class PinPadFault(DeviceFault):
    """PIN pad key error, entry timeout, key not loaded, ..."""


class DispenserFault(DeviceFault):
    """Jam, cassette empty or missing, pick failure, ...

    ``dispensed`` counts the notes (per cassette index) that did leave before the fault, so a
    partial dispense can be reversed exactly.
    """

    def __init__(
        self, message: str, *, code: str = "", dispensed: dict[int, int] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.dispensed = dict(dispensed or {})


class BillAcceptorFault(DeviceFault):
    """Jam, stacker full, cassette removed, failure. ``stacked`` counts the notes (cents ->
    count) that reached the stacker before a fault during ``stack``."""

    def __init__(
        self, message: str, *, code: str = "", stacked: dict[int, int] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.stacked = dict(stacked or {})


class DepositoryFault(DeviceFault):
    """The envelope depository is full, jammed or its shutter does not open."""


class PrinterFault(DeviceFault):
    """Paper out, cover open, cutter error, ..."""


class CancelledByCustomer(DriverError):
    """The customer pressed CANCEL during an entry."""
