"""The ATM controller: state machine, journal, cash handling, screens and receipts.

Knows devices only through ``drivers.interfaces`` and the host only through ``protocol``.
"""

from device.errors import CashError, DeviceConfigError, DeviceError, JournalError

__all__ = ["CashError", "DeviceConfigError", "DeviceError", "JournalError"]
