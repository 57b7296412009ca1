"""The store-and-forward queue of reversal advices, persisted on disk (``DeviceConfig.saf_path``).

An append-only JSON-lines file, each line fsync'd before the call that wrote it returns, so a
reversal queued just before the process is killed (SIGKILL, power loss) is still there after a
restart. Three kinds of line: ``add`` (a reversal to send), ``try`` (an attempt is about to go
out: every later send is a repeat, 0421) and ``ack`` (the host answered with 0430). A torn last
line (the process died mid-write) is ignored. When nothing is pending at start-up the file is
compacted away.

The file holds only what a reversal advice needs (DE 3, 4, 7, 11, 41, 42, 49 of the original,
the amount dispensed and the reason): never a PAN, track data or PIN block.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from device.errors import DeviceError, InsecureFileError
from device.private_files import PRIVATE_MODE, check_private, open_private
from protocol.messages import Message, Mti

__all__ = ["ORIGINAL_FIELDS", "SafEntry", "SafError", "SafQueue"]

log = logging.getLogger(__name__)

ORIGINAL_FIELDS = ("t", "3", "4", "7", "11", "41", "42", "49")


class SafError(DeviceError):
    """The store-and-forward file cannot be written or read."""


@dataclass(frozen=True)
class SafEntry:
    id: int
    original: dict[str, str]
    dispensed_cents: int
    reason: str
    advice_time: str  # DE 7 of the advice, fixed at queueing so repeats are true repeats
    attempts: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        """The original request: terminal, STAN, transmission time."""
        return (self.original["41"], self.original["11"], self.original["7"])

    def advice(self) -> Message:
        """The 0420 (first send) or 0421 (any repeat) for this entry."""
        o = self.original
        message: Message = {
            "t": Mti.REVERSAL_ADVICE if self.attempts == 0 else Mti.REVERSAL_ADVICE_REPEAT,
            "3": o["3"],
            "4": o["4"],
            "7": self.advice_time,
            "11": o["11"],
            "41": o["41"],
            "90": o.get("t", "0200") + o["11"] + o["7"] + "0" * 22,
        }
        for field in ("42", "49"):
            if field in o:
                message[field] = o[field]
        if self.reason:
            message["60"] = self.reason
        if self.dispensed_cents:
            d = self.dispensed_cents
            message["95"] = f"{d:012d}{d:012d}C00000000C00000000"
        return message


class SafQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[int, SafEntry] = {}
        self._done: set[tuple[str, str, str]] = set()
        self._next_id = 1
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            check_private(path, "store-and-forward file")
            self._load()
        except InsecureFileError as exc:
            raise SafError(str(exc)) from exc
        except OSError as exc:
            raise SafError(f"cannot open store-and-forward file {path}: {exc}") from exc

    def __len__(self) -> int:
        return len(self._entries)

    def pending(self) -> list[SafEntry]:
        return [self._entries[i] for i in sorted(self._entries)]

    def head(self) -> SafEntry | None:
        return self._entries[min(self._entries)] if self._entries else None

    def contains(self, original: Message) -> bool:
        key = (original.get("41", ""), original.get("11", ""), original.get("7", ""))
        return key in self._done or any(e.key == key for e in self._entries.values())

    def add(
        self, original: Message, dispensed_cents: int, reason: str, advice_time: str
    ) -> SafEntry | None:
        """Queue a reversal of ``original`` (persisted before this returns). None when that
        original is already queued or was already acknowledged."""
        missing = [f for f in ("3", "4", "7", "11", "41") if not original.get(f)]
        if missing:
            raise SafError(f"cannot reverse a request without field(s) {', '.join(missing)}")
        if self.contains(original):
            return None
        kept = {f: original[f] for f in ORIGINAL_FIELDS if f in original}
        entry = SafEntry(self._next_id, kept, dispensed_cents, reason, advice_time)
        self._write(
            {
                "op": "add",
                "id": entry.id,
                "original": kept,
                "dispensed": dispensed_cents,
                "reason": reason,
                "time": advice_time,
            }
        )
        self._entries[entry.id] = entry
        self._next_id += 1
        return entry

    def record_attempt(self, entry_id: int) -> SafEntry:
        entry = self._entries[entry_id]
        self._write({"op": "try", "id": entry_id})
        updated = SafEntry(
            entry.id,
            entry.original,
            entry.dispensed_cents,
            entry.reason,
            entry.advice_time,
            entry.attempts + 1,
        )
        self._entries[entry_id] = updated
        return updated

    def acknowledge(self, entry_id: int, response_code: str) -> None:
        self._write({"op": "ack", "id": entry_id, "code": response_code})
        entry = self._entries.pop(entry_id)
        self._done.add(entry.key)

    def close(self) -> None:
        """Nothing to release: each write opens, appends, fsyncs and closes the file."""

    def _write(self, record: dict[str, object]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        try:
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND, "store-and-forward file")
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except InsecureFileError as exc:
            raise SafError(str(exc)) from exc
        except OSError as exc:
            raise SafError(f"cannot write store-and-forward file {self.path}: {exc}") from exc

    def _load(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                self._replay(record)
            except (ValueError, KeyError, TypeError) as exc:
                if number >= len(lines) - 1:
                    log.warning("ignoring a torn last line in %s", self.path)
                    continue
                raise SafError(f"{self.path} line {number} is not readable: {exc}") from exc
        if not self._entries:
            self._compact()

    def _replay(self, record: dict[str, object]) -> None:
        op, entry_id = record["op"], int(str(record["id"]))
        if op == "add":
            original = record["original"]
            if not isinstance(original, dict):
                raise TypeError("original must be an object")
            self._entries[entry_id] = SafEntry(
                entry_id,
                {str(k): str(v) for k, v in original.items()},
                int(str(record["dispensed"])),
                str(record["reason"]),
                str(record["time"]),
            )
            self._next_id = max(self._next_id, entry_id + 1)
        elif op == "try" and entry_id in self._entries:
            e = self._entries[entry_id]
            self._entries[entry_id] = SafEntry(
                e.id, e.original, e.dispensed_cents, e.reason, e.advice_time, e.attempts + 1
            )
        elif op == "ack" and entry_id in self._entries:
            self._done.add(self._entries.pop(entry_id).key)

    def _compact(self) -> None:
        """Nothing pending: start a fresh, empty file (atomically)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)  # a leftover could carry wider permissions
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
