"""The ATM controller: state machine, journal, cash handling, screens and receipts.

Knows devices only through ``drivers.interfaces`` and the host only through ``protocol``.
"""

from device.errors import CashError, DeviceConfigError, DeviceError, JournalError
from protocol.masking import install_log_redaction

__all__ = ["CashError", "DeviceConfigError", "DeviceError", "JournalError"]

# Every log line of this package is redacted (track data, PANs, PIN blocks, keys).
install_log_redaction()
