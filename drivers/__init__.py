"""Device drivers: one interface per device class, backends over simulated, serial and USB
transports, and sans-IO wire codecs that the peripheral simulators reuse.

Imports only ``protocol`` (for PIN blocks and masking); never ``device`` or ``host``.
"""

from drivers.errors import (
    CancelledByCustomer,
    CardReaderFault,
    DeviceFault,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnavailable,
    DispenserFault,
    DriverError,
    PinPadFault,
    PrinterFault,
)
from drivers.interfaces import CardReader, CashDispenser, PinPad, ReceiptPrinter
from protocol.masking import install_log_redaction

__all__ = [
    "CancelledByCustomer",
    "CardReader",
    "CardReaderFault",
    "CashDispenser",
    "DeviceFault",
    "DeviceProtocolError",
    "DeviceTimeout",
    "DeviceUnavailable",
    "DispenserFault",
    "DriverError",
    "PinPad",
    "PinPadFault",
    "PrinterFault",
    "ReceiptPrinter",
]

# Every log line of this package is redacted (track data, PANs, PIN blocks, keys).
install_log_redaction()
