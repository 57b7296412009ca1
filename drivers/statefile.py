"""The physical state file of a simulated device: what a real device keeps when the ATM
process dies (notes in the cassettes, the exit tray and the reject bin; paper; a card inside).

A real dispenser's notes do not vanish when the controller crashes, so the simulated devices
write their physical state here after every physical change and read it back when built again.
Written atomically and durably: the new state goes to a temporary file in the same directory,
is fsync'd, replaces the old file (``os.replace``) and the directory is fsync'd, all before the
device reports the step done. A reader therefore sees the old state or the new one, never a
mixture. Holds no track data, PIN or key: a card inside is recorded by its masked PAN only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drivers.errors import DriverError

__all__ = ["StateFileError", "load_state", "save_state"]


class StateFileError(DriverError):
    """A device state file cannot be written, or is not readable JSON."""


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state`` (JSON), atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(state, indent=1, sort_keys=True).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StateFileError(f"cannot write device state file {path}: {exc}") from exc


def load_state(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``; None when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read device state file {path}: {exc}") from exc
    try:
        state = json.loads(raw)
    except ValueError as exc:
        raise StateFileError(f"device state file {path} is damaged: {exc}") from exc
    if not isinstance(state, dict):
        raise StateFileError(f"device state file {path} is damaged: not a JSON object")
    return state
