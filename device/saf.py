"""The store-and-forward queue of reversal advices, persisted on disk (``DeviceConfig.saf_path``).

An append-only JSON-lines file, each line fsync'd before the call that wrote it returns, so a
reversal queued just before the process is killed (SIGKILL, power loss) is still there after a
restart. Three kinds of line: ``add`` (a reversal to send), ``try`` (an attempt is about to go
out: every later send is a repeat, 0421) and ``ack`` (the host answered with 0430). A torn last
line (the process died mid-write) is absent: it is cut off (kept in ``<file>.torn``) before
anything is appended, so the next record never lands on it. Any other unreadable line stops
the queue with ``SafDamaged`` (file, line, why); the operator accepts it after checking
(``SafQueue.accept_damage`` appends a ``skip`` line naming it) and the controller re-queues
from the journal every reversal the queue no longer knows (the host applies a reversal at most
once). When nothing is pending at start-up and no damaged line is kept, the file is compacted
away.

The file holds only what a reversal advice needs (DE 3, 4, 7, 11, 41, 42, 49 of the original,
the amount dispensed and the reason): never a PAN, track data or PIN block.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from device.errors import DeviceError, InsecureFileError
from device.journal import cut_torn_tail
from device.private_files import PRIVATE_MODE, check_private, open_private
from protocol.messages import Message, Mti

__all__ = ["ORIGINAL_FIELDS", "SafDamaged", "SafEntry", "SafError", "SafQueue"]

log = logging.getLogger(__name__)

ORIGINAL_FIELDS = ("t", "3", "4", "7", "11", "41", "42", "49")


class SafError(DeviceError):
    """The store-and-forward file cannot be written or read."""


class SafDamaged(SafError):
    """A line of the store-and-forward file (not a torn tail) is not a readable record."""

    def __init__(self, path: Path, line: int, why: str, digest: str) -> None:
        super().__init__(f"store-and-forward file {path} line {line} is damaged ({why})")
        self.path, self.line, self.why, self.digest = path, line, why, digest


def _digest(raw: bytes) -> str:
    return f"{zlib.crc32(raw):08x}"


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
    def __init__(self, path: Path, *, tolerant: bool = False) -> None:
        """``tolerant``: a damaged line does not stop the queue; it is skipped and listed in
        ``damage`` for the operator (the controller goes to its fault state until accepted)."""
        self.path = path
        self.tolerant = tolerant
        self.damage: list[SafDamaged] = []
        self._entries: dict[int, SafEntry] = {}
        self._done: set[tuple[str, str, str]] = set()
        self._next_id = 1
        self._kept_damage = False
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

    @staticmethod
    def accept_damage(damage: SafDamaged) -> None:
        """The operator has seen the damaged line: skip exactly that line from now on (the
        line stays in the file)."""
        record = {"op": "skip", "line": damage.line, "digest": damage.digest}
        line = json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        try:
            fd = os.open(damage.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SafError(f"cannot write store-and-forward file {damage.path}: {exc}") from exc

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: empty unless the last write was torn
        parsed: list[tuple[int, bytes, dict[str, object] | None, str]] = []
        for number, raw in enumerate(lines, 1):
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise TypeError("not a JSON object")
                parsed.append((number, raw, record, ""))
            except (ValueError, TypeError) as exc:
                parsed.append((number, raw, None, str(exc)))
        if torn or (parsed and parsed[-1][2] is None):
            # The process died mid-write: that record is absent. Cut it off now, so that
            # the next record does not land on it.
            good = len(data) - len(torn)
            if not torn:
                good -= len(parsed[-1][1]) + 1
                parsed.pop()
            cut_torn_tail(self.path, good)
        skipped = {
            (str(r.get("line")), str(r.get("digest")))
            for _, _, r, _ in parsed
            if r is not None and r.get("op") == "skip"
        }
        self._kept_damage = bool(skipped)
        for number, raw, record, why in parsed:
            if (str(number), _digest(raw)) in skipped:
                continue
            if record is None and not raw.strip():
                continue
            try:
                if record is None:
                    raise ValueError(why)
                self._replay(record)
            except (ValueError, KeyError, TypeError) as exc:
                damage = SafDamaged(self.path, number, str(exc), _digest(raw))
                if not self.tolerant:
                    raise damage from exc
                self.damage.append(damage)  # the owner reports it (one line)
        if not self._entries and not self._kept_damage and not self.damage:
            self._compact()

    def _replay(self, record: dict[str, object]) -> None:
        op = record["op"]
        if op == "skip":
            return
        entry_id = int(str(record["id"]))
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
