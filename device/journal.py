"""The electronic journal: append-only, human-readable, one line per event, fsync'd.

Each line: ``ISO-8601 time | terminal | event | key=value ...``. Sensitive values never
reach it: PANs are masked by the caller, PIN blocks and keys are never passed in. It is flushed
to disk before every irreversible step so a restarted controller can tell what happened.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

from device.errors import InsecureFileError, JournalError
from device.private_files import check_private, open_private

__all__ = ["Journal", "JournalRecord"]

Clock = Callable[[], dt.datetime]


class JournalRecord(dict[str, str]):
    """A parsed journal line: its fields plus ``time`` and ``event``."""


class Journal:
    def __init__(self, path: Path, terminal_id: str, clock: Clock | None = None) -> None:
        self.path = path
        self.terminal_id = terminal_id
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.listeners: list[Callable[[str], None]] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = open_private(path, os.O_WRONLY | os.O_APPEND, "journal")
        except InsecureFileError as exc:
            raise JournalError(str(exc)) from exc
        except OSError as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc

    def write(self, event: str, **fields: object) -> str:
        parts = [self._clock().isoformat(timespec="seconds"), self.terminal_id, event]
        for key, value in fields.items():
            text = str(value).replace("|", "/").replace("\n", " ")
            parts.append(f"{key}={text}")
        line = " | ".join(parts)
        try:
            os.write(self._fd, (line + "\n").encode())
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc}") from exc
        for listener in self.listeners:
            listener(line)
        return line

    def close(self) -> None:
        os.close(self._fd)

    def records(self) -> list[JournalRecord]:
        return read_records(self.path)


def read_records(path: Path) -> list[JournalRecord]:
    if not path.exists():
        return []
    try:
        check_private(path, "journal")
    except InsecureFileError as exc:
        raise JournalError(str(exc)) from exc
    records = []
    for raw in path.read_text().splitlines():
        parts = raw.split(" | ")
        if len(parts) < 3:
            continue
        record = JournalRecord(time=parts[0], terminal=parts[1], event=parts[2])
        for part in parts[3:]:
            key, _, value = part.partition("=")
            record[key] = value
        records.append(record)
    return records
