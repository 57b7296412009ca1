"""Files that hold secrets or customer data on the terminal: the master key file, the
electronic journal and the store-and-forward queue. They are created 0600 and refused when
the group or others may read or write them (a journal shows masked PANs, amounts and times; a
SAF file holds the reversal advices; a key file, the terminal master key)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from device.errors import DeviceConfigError, InsecureFileError

__all__ = ["PRIVATE_MODE", "check_private", "open_private", "read_master_key_file"]

PRIVATE_MODE = 0o600


def _problem(path: Path, mode: int, what: str) -> str:
    return (
        f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
        f"refusing it: chmod 600 {path}"
    )


def check_private(path: Path, what: str) -> None:
    """Raise ``InsecureFileError`` if ``path`` exists with any group or other permission."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise InsecureFileError(_problem(path, mode, what))


def open_private(path: Path, flags: int, what: str) -> int:
    """``os.open`` creating the file 0600; an existing file open to others is refused."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_MODE)
    mode = os.fstat(fd).st_mode
    if mode & 0o077:
        os.close(fd)
        raise InsecureFileError(_problem(path, mode, what))
    return fd


def read_master_key_file(path: Path) -> str:
    """The terminal master key (hex) from a file only its owner can read."""
    try:
        check_private(path, "master key file")
        return path.read_text().strip()
    except InsecureFileError as exc:
        raise DeviceConfigError(str(exc)) from exc
    except OSError as exc:
        raise DeviceConfigError(f"master key file {path}: {exc.strerror or exc}") from exc
