"""The electronic journal: append-only, human-readable, one line per event, fsync'd.

Each line: ``ISO-8601 time | terminal | event | key=value ... | crc=XXXXXXXX``, where the last
field is the CRC-32 (hex) of everything before `` | crc=``. Sensitive values never reach it:
PANs are masked by the caller, PIN blocks and keys are never passed in. It is flushed to disk
before every irreversible step so a restarted controller can tell what happened.

Reading it back (``read_records``) trusts a line only when its checksum holds:

* a torn tail (the process died in the middle of a write: the last line has no newline, or
  its checksum fails) is treated as absent, and the writer cuts it off before it appends
  again, so the next record never lands on a torn one;
* any other line that is not valid UTF-8 or whose checksum fails is damage: reading stops
  with ``JournalDamaged`` naming the file and line, and the controller goes to its fault
  state. The operator inspects the line and accepts it (``accept_damage``): a
  ``JOURNAL_DAMAGE_ACCEPTED`` record naming the line and the checksum of its bytes is
  appended, and from then on that exact line is skipped. Nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device.errors import InsecureFileError, JournalError
from device.private_files import check_private, open_private

__all__ = [
    "Journal",
    "JournalDamaged",
    "JournalRecord",
    "RawLine",
    "cut_torn_tail",
    "read_records",
    "scan",
    "seal",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

_CRC = " | crc="
DAMAGE_ACCEPTED = "JOURNAL_DAMAGE_ACCEPTED"


class JournalDamaged(JournalError):
    """A journal line other than a torn tail cannot be trusted (bad checksum, not UTF-8)."""

    def __init__(self, path: Path, line: int, why: str, digest: str) -> None:
        super().__init__(f"journal {path} line {line} is damaged ({why})")
        self.path, self.line, self.why, self.digest = path, line, why, digest


class JournalRecord(dict[str, str]):
    """A parsed journal line: its fields plus ``time`` and ``event``."""


def _crc(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


def seal(text: str) -> str:
    """A journal line with its checksum appended (without the newline)."""
    return f"{text}{_CRC}{_crc(text.encode())}"


@dataclass(frozen=True)
class RawLine:
    number: int  # 1-based line number in the file
    raw: bytes  # without the newline
    text: str | None  # the line without its checksum; None when it is not trustworthy
    why: str = ""  # why not trustworthy

    @property
    def digest(self) -> str:
        return _crc(self.raw)


def _check(number: int, raw: bytes) -> RawLine:
    try:
        line = raw.decode()
    except UnicodeDecodeError as exc:
        return RawLine(number, raw, None, f"not UTF-8 at byte {exc.start}")
    body, sep, crc = line.rpartition(_CRC)
    if not sep:
        return RawLine(number, raw, None, "no checksum")
    if crc != _crc(body.encode()):
        return RawLine(number, raw, None, "checksum mismatch")
    return RawLine(number, raw, body)


def scan(path: Path) -> tuple[list[RawLine], int]:
    """Every complete line of the journal, checked, and the byte length of the trustworthy
    file: a torn tail (no newline, or a last line that fails its check) is left out of both."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {exc}") from exc
    lines: list[RawLine] = []
    offset = good_end = 0
    number = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            log.warning("journal %s: torn last line ignored (%d bytes)", path, len(data) - offset)
            break
        number += 1
        checked = _check(number, data[offset:end])
        offset = end + 1
        if checked.text is None and offset >= len(data):
            log.warning("journal %s: torn last line %d ignored (%s)", path, number, checked.why)
            break
        lines.append(checked)
        good_end = offset
    return lines, good_end


def _parse(text: str) -> JournalRecord | None:
    parts = text.split(" | ")
    if len(parts) < 3:
        return None
    record = JournalRecord(time=parts[0], terminal=parts[1], event=parts[2])
    for part in parts[3:]:
        key, _, value = part.partition("=")
        record[key] = value
    return record


def read_records(path: Path, *, tolerant: bool = False) -> list[JournalRecord]:
    """The trustworthy records, oldest first. ``JournalDamaged`` for the first damaged line
    that the operator has not accepted; ``tolerant``: such lines are left out instead."""
    try:
        check_private(path, "journal")
    except InsecureFileError as exc:
        raise JournalError(str(exc)) from exc
    lines, _ = scan(path)
    accepted: set[tuple[str, str]] = set()
    for line in lines:
        if line.text is not None and f" | {DAMAGE_ACCEPTED} | " in line.text:
            record = _parse(line.text)
            if record is not None:
                accepted.add((record.get("line", ""), record.get("digest", "")))
    records = []
    for line in lines:
        if line.text is None:
            if (str(line.number), line.digest) in accepted or tolerant:
                continue
            raise JournalDamaged(path, line.number, line.why, line.digest)
        record = _parse(line.text)
        if record is not None:
            records.append(record)
    return records


def cut_torn_tail(path: Path, good: int) -> None:
    """Truncate ``path`` to its first ``good`` bytes; the bytes cut off (a record torn by a
    crash) are kept in ``<path>.torn`` for the operator, so nothing is thrown away."""
    with open(path, "r+b") as handle:
        handle.seek(good)
        torn = handle.read()
        keep = open_private(path.with_name(path.name + ".torn"), os.O_WRONLY | os.O_APPEND, "torn")
        try:
            os.write(keep, torn + b"\n")
            os.fsync(keep)
        finally:
            os.close(keep)
        handle.truncate(good)
        handle.flush()
        os.fsync(handle.fileno())
    log.warning("%s: cut a torn last record of %d bytes (kept in %s.torn)", path, len(torn), path)


class Journal:
    def __init__(self, path: Path, terminal_id: str, clock: Clock | None = None) -> None:
        self.path = path
        self.terminal_id = terminal_id
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.listeners: list[Callable[[str], None]] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            check_private(path, "journal")
            self._cut_torn_tail()
            self._fd = open_private(path, os.O_WRONLY | os.O_APPEND, "journal")
        except InsecureFileError as exc:
            raise JournalError(str(exc)) from exc
        except OSError as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc

    def _cut_torn_tail(self) -> None:
        """A record cut short by a crash is absent: remove it so the next one starts clean."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        _, good = scan(self.path)
        if good < size:
            cut_torn_tail(self.path, good)

    def write(self, event: str, **fields: object) -> str:
        parts = [self._clock().isoformat(timespec="seconds"), self.terminal_id, event]
        for key, value in fields.items():
            text = str(value).replace("|", "/").replace("\n", " ")
            parts.append(f"{key}={text}")
        line = seal(" | ".join(parts))
        try:
            os.write(self._fd, (line + "\n").encode())
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc}") from exc
        for listener in self.listeners:
            listener(line)
        return line

    def accept_damage(self, damage: JournalDamaged) -> None:
        """The operator has seen the damaged line: skip exactly that line from now on."""
        self.write(
            DAMAGE_ACCEPTED, line=damage.line, digest=damage.digest, why=damage.why, by="operator"
        )

    def close(self) -> None:
        os.close(self._fd)

    def records(self) -> list[JournalRecord]:
        return read_records(self.path)
