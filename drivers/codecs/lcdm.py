"""Puloon LCDM-2000 cash dispenser codec (our documented variant, see docs/devices.md).

Command (host -> dispenser): ``EOT 0x04, ID 0x50, STX 0x02, CMD, data, ETX 0x03, BCC``.
Reply (dispenser -> host):   ``SOH 0x01, ID 0x50, STX 0x02, CMD, data, ETX 0x03, BCC``.
BCC is the XOR of every byte from the first (EOT/SOH) through ETX. Each side answers a frame
with ACK 0x06 or NAK 0x15. Data bytes never take a control value: counts are two ASCII digits,
error/status bytes are printable, and sensor bytes are ``0x40 | bits``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.codecs.events import ACK, NAK, Ack, BadFrame, Junk, Nak

__all__ = [
    "ID",
    "MAX_NOTES_PER_COMMAND",
    "Command",
    "DispenseReply",
    "ErrorCode",
    "LcdmDecoder",
    "LcdmFrame",
    "PurgeReply",
    "StatusReply",
    "bcc",
    "decode_count",
    "encode_command",
    "encode_count",
    "encode_reply",
]

EOT, SOH, STX, ETX = 0x04, 0x01, 0x02, 0x03
ID = 0x50
MAX_NOTES_PER_COMMAND = 60
MAX_FRAME = 64


class Command(enum.IntEnum):
    PURGE = 0x44
    UPPER_DISPENSE = 0x45
    STATUS = 0x46
    ROM_VERSION = 0x47
    LOWER_DISPENSE = 0x55
    UPPER_LOWER_DISPENSE = 0x56
    UPPER_TEST_DISPENSE = 0x76
    LOWER_TEST_DISPENSE = 0x77


class ErrorCode(enum.IntEnum):
    GOOD = 0x30
    NORMAL_STOP = 0x31
    PICKUP_ERROR = 0x32
    JAM_CHK = 0x33
    OVERFLOW = 0x34
    JAM_EXIT = 0x35
    JAM_DIV = 0x36
    UNDEFINED_COMMAND = 0x37
    UPPER_BILL_END = 0x38
    LOWER_BILL_END = 0x40
    REJECT_TRAY_MISSING = 0x3F
    OVER_REJECT = 0x44
    UPPER_CASSETTE_MISSING = 0x45
    LOWER_CASSETTE_MISSING = 0x46
    DISPENSE_TIMEOUT = 0x47
    PURGE_ERROR = 0x4E


def bcc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _frame(start: int, cmd: int, data: bytes, ident: int = ID) -> bytes:
    body = bytes([start, ident, STX, cmd]) + data + bytes([ETX])
    if any(b < 0x20 for b in data):
        raise ValueError("LCDM data bytes must not be control characters")
    return body + bytes([bcc(body)])


def encode_command(cmd: int, data: bytes = b"", *, ident: int = ID) -> bytes:
    """``encode_command(Command.STATUS)`` -> ``04 50 02 46 03 13``. ``ident`` is the
    communication ID (0x50 for the LCDM-2000, 0x30 for the LCDM-4000)."""
    return _frame(EOT, cmd, data, ident)


def encode_reply(cmd: int, data: bytes = b"", *, ident: int = ID) -> bytes:
    return _frame(SOH, cmd, data, ident)


def encode_count(count: int) -> bytes:
    if not 0 <= count <= 99:
        raise ValueError(f"count {count} does not fit two digits")
    return f"{count:02d}".encode()


def decode_count(data: bytes) -> int:
    if len(data) != 2 or not data.isdigit():
        raise ValueError(f"not a two-digit count: {data!r}")
    return int(data)


@dataclass(frozen=True)
class LcdmFrame:
    """A whole, checked frame: ``reply`` is True for SOH frames (dispenser -> host)."""

    cmd: int
    data: bytes
    reply: bool


class LcdmDecoder:
    """Feed bytes, get events. ``accept`` is the frame start this side expects: SOH for the
    host (replies), EOT for the dispenser (commands). ``ident`` is the communication ID the
    frames carry; ``ignore`` holds bytes that mean nothing outside a frame (the LCDM-4000's EOT
    that closes each exchange, for the host). Bounded buffer; never raises on input."""

    def __init__(self, accept: int, *, ident: int = ID, ignore: bytes = b"") -> None:
        if accept not in (EOT, SOH):
            raise ValueError("accept is EOT (device side) or SOH (host side)")
        self._start = accept
        self._ident = ident
        self._ignore = frozenset(ignore)
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Ack | Nak | Junk | BadFrame | LcdmFrame]:
        self._buf += data
        events: list[Ack | Nak | Junk | BadFrame | LcdmFrame] = []
        junk = bytearray()
        while self._buf:
            first = self._buf[0]
            if first != self._start:
                del self._buf[0]
                if first == ACK:
                    events.extend(_flush(junk))
                    events.append(Ack())
                elif first == NAK:
                    events.extend(_flush(junk))
                    events.append(Nak())
                elif first in self._ignore:
                    events.extend(_flush(junk))
                else:
                    junk.append(first)
                continue
            end = self._buf.find(ETX)
            if end < 0 or end + 1 >= len(self._buf):
                if len(self._buf) > MAX_FRAME:
                    events.extend(_flush(junk))
                    events.append(BadFrame(bytes(self._buf), "frame too long, no ETX"))
                    self._buf.clear()
                break
            raw = bytes(self._buf[: end + 2])
            del self._buf[: end + 2]
            events.extend(_flush(junk))
            events.append(self._check(raw))
        events.extend(_flush(junk))
        return events

    def _check(self, raw: bytes) -> BadFrame | LcdmFrame:
        if len(raw) < 6 or raw[1] != self._ident or raw[2] != STX:
            return BadFrame(raw, f"bad header (expected ID 0x{self._ident:02X}, STX)")
        if bcc(raw[:-1]) != raw[-1]:
            return BadFrame(raw, f"BCC {raw[-1]:02X} != {bcc(raw[:-1]):02X}")
        return LcdmFrame(raw[3], raw[4:-2], raw[0] == SOH)


def _flush(junk: bytearray) -> list[Junk]:
    if not junk:
        return []
    out = [Junk(bytes(junk))]
    junk.clear()
    return out


# -- reply layouts (our variant; field order documented in docs/devices.md) -------------


@dataclass(frozen=True)
class CassetteCounts:
    check: int  # notes that passed the check sensors (picked)
    exit: int  # notes that left through the exit sensor (presented)
    reject: int  # notes diverted to the reject tray
    status: int  # 0x30 enough notes, 0x31 near end


@dataclass(frozen=True)
class DispenseReply:
    """Reply to 0x45/0x55 (one cassette) or 0x56 (upper, lower)."""

    error: int
    cassettes: tuple[CassetteCounts, ...]

    def encode(self) -> bytes:
        c = self.cassettes
        if len(c) == 1:
            return (
                encode_count(c[0].check)
                + encode_count(c[0].exit)
                + bytes([self.error, c[0].status])
                + encode_count(c[0].reject)
            )
        up, lo = c
        return (
            encode_count(up.check)
            + encode_count(up.exit)
            + encode_count(lo.check)
            + encode_count(lo.exit)
            + bytes([self.error, up.status, lo.status])
            + encode_count(up.reject)
            + encode_count(lo.reject)
        )

    @classmethod
    def decode(cls, cmd: int, data: bytes) -> DispenseReply:
        if cmd == Command.UPPER_LOWER_DISPENSE:
            if len(data) != 15:
                raise ValueError(f"0x56 reply has 15 data bytes, got {len(data)}")
            count = decode_count
            up = CassetteCounts(count(data[0:2]), count(data[2:4]), count(data[11:13]), data[9])
            lo = CassetteCounts(count(data[4:6]), count(data[6:8]), count(data[13:15]), data[10])
            return cls(data[8], (up, lo))
        if len(data) != 8:
            raise ValueError(f"single-cassette dispense reply has 8 data bytes, got {len(data)}")
        one = CassetteCounts(
            decode_count(data[0:2]), decode_count(data[2:4]), decode_count(data[6:8]), data[5]
        )
        return cls(data[4], (one,))


# Sensor byte 0 bits
CHK1, CHK2, DIV1, DIV2, EJT, EXIT = (1 << i for i in range(6))
# Sensor byte 1 bits
UPPER_NEAR_END, LOWER_NEAR_END, UPPER_PRESENT, LOWER_PRESENT, UPPER_END, LOWER_END = (
    1 << i for i in range(6)
)


@dataclass(frozen=True)
class StatusReply:
    """Reply to 0x46: error byte, path sensors, cassette sensors (each ``0x40 | bits``)."""

    error: int
    path: int
    cassettes: int

    def encode(self) -> bytes:
        return bytes([self.error, 0x40 | self.path, 0x40 | self.cassettes])

    @classmethod
    def decode(cls, data: bytes) -> StatusReply:
        if len(data) != 3 or data[1] & 0xC0 != 0x40 or data[2] & 0xC0 != 0x40:
            raise ValueError(f"status reply must be error + two 0x40|bits bytes, got {data!r}")
        return cls(data[0], data[1] & 0x3F, data[2] & 0x3F)

    @property
    def notes_in_tray(self) -> bool:
        return bool(self.path & EXIT)


@dataclass(frozen=True)
class PurgeReply:
    """Reply to 0x44: error byte, notes moved to the reject tray."""

    error: int
    purged: int

    def encode(self) -> bytes:
        return bytes([self.error]) + encode_count(self.purged)

    @classmethod
    def decode(cls, data: bytes) -> PurgeReply:
        if len(data) != 3:
            raise ValueError(f"purge reply has 3 data bytes, got {len(data)}")
        return cls(data[0], decode_count(data[1:3]))
