"""The device package's exception tree (one root: ``DeviceError``)."""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every error raised by the ``device`` package."""


class DeviceConfigError(DeviceError):
    """A device configuration value that cannot be used."""


class CashError(DeviceError):
    """An amount the loaded cassettes cannot make."""


class JournalError(DeviceError):
    """The electronic journal cannot be written or read."""


class InsecureFileError(DeviceError):
    """A file holding secrets or customer data that the group or others may access."""
