"""Puloon LCDM-4000 cash dispenser codec: four cassettes, one dispense command for all of them.

Framing is the LCDM family's (``drivers.codecs.lcdm``) with communication ID 0x30:
command ``EOT 30 STX CMD params ETX BCC``, reply ``SOH 30 STX CMD ERROR params ETX BCC``, BCC the
XOR of every byte from the first through ETX. An exchange is: command; the dispenser ACKs
(0x06) or NAKs (0x15); the reply frame; the host ACKs it (or NAKs for a repeat); the dispenser
closes the exchange with EOT (0x04). Every count and value byte is the number + 0x20 ("no
error" is 0x20), a cassette's type byte is 0x30 when it is removed and 0x30 + its position
(0x31..0x34) when present. Facts and their sources: docs/devices.md, "LCDM-4000".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.codecs import lcdm

__all__ = [
    "CASSETTES",
    "ERROR_TEXT",
    "ID",
    "MAX_NOTES_PER_COMMAND",
    "Command",
    "DispenseReply",
    "Error",
    "PickCounts",
    "StatusReply",
    "decoder",
    "encode_command",
    "encode_dispense",
    "encode_reply",
]

ID = 0x30
CASSETTES = 4
OFFSET = 0x20
# The public command description allows up to 100 notes per transaction (error 0x0C above);
# the puloon library refuses more than 40 in one command, so our driver sends at most 40.
MAX_NOTES_PER_COMMAND = 40
MAX_NOTES_PER_TRANSACTION = 100
RESERVED = bytes([0x20] * 9)


class Command(enum.IntEnum):
    RESET = 0x44  # no reply: the dispenser restarts (about 2 s)
    STATUS = 0x50
    PURGE = 0x51
    DISPENSE = 0x52
    TEST_DISPENSE = 0x53  # picks into the reject tray
    LAST_STATUS = 0x55


class Error(enum.IntEnum):
    """Error codes (sent as code + 0x20)."""

    NONE = 0x00
    PICKUP = 0x01
    JAM_CHK_DVT = 0x02
    JAM_DVT_EJT = 0x03
    JAM_EJT_EXIT = 0x04
    NOTE_IN_EXIT = 0x05
    TOO_MANY_NOTES = 0x0C
    TOO_MANY_REJECTS = 0x0D
    PURGE_ABNORMAL = 0x0E
    NO_CASSETTE = 0x24
    NO_REJECT_TRAY = 0x26
    ABNORMAL_COMMAND = 0x30
    ABNORMAL_PARAMETER = 0x31


ERROR_TEXT: dict[int, str] = {
    Error.PICKUP: "bill pick-up error",
    Error.JAM_CHK_DVT: "jam between CHK and DVT sensors",
    Error.JAM_DVT_EJT: "jam between DVT and EJT sensors",
    Error.JAM_EJT_EXIT: "jam between EJT and EXIT sensors",
    Error.NOTE_IN_EXIT: "a note staying in the EXIT sensor",
    Error.TOO_MANY_NOTES: "too many notes for one transaction",
    Error.TOO_MANY_REJECTS: "too many rejected notes for one transaction",
    Error.PURGE_ABNORMAL: "abnormal termination during purge",
    Error.NO_CASSETTE: "no cassette for the requested dispense",
    Error.NO_REJECT_TRAY: "no reject tray",
    Error.ABNORMAL_COMMAND: "abnormal command",
    Error.ABNORMAL_PARAMETER: "abnormal parameter on the command",
}

# Status reply: DISP byte bits (sensor blocked), sent + 0x20.
DVTL, DVTR, EJT, EXIT, RJT = (1 << i for i in range(5))
# Per-cassette STAT byte (ours: the public description leaves its values to the unit).
STAT_OK, STAT_NEAR_END, STAT_EMPTY = 0x30, 0x31, 0x32
TYPE_REMOVED = 0x30


def decoder(accept: int) -> lcdm.LcdmDecoder:
    """The host side (``accept=SOH``) ignores the EOT that closes each exchange."""
    ignore = bytes([lcdm.EOT]) if accept == lcdm.SOH else b""
    return lcdm.LcdmDecoder(accept, ident=ID, ignore=ignore)


def encode_command(cmd: int, params: bytes = b"") -> bytes:
    """``encode_command(Command.STATUS)`` -> ``04 30 02 50 03 65``."""
    return lcdm.encode_command(cmd, params, ident=ID)


def encode_reply(cmd: int, data: bytes) -> bytes:
    return lcdm.encode_reply(cmd, data, ident=ID)


def _value(n: int) -> int:
    if not 0 <= n <= 0xFF - OFFSET:
        raise ValueError(f"value {n} does not fit one byte + 0x20")
    return n + OFFSET


def _number(byte: int, what: str) -> int:
    if byte < OFFSET:
        raise ValueError(f"{what} byte {byte:02X} is below 0x20")
    return byte - OFFSET


def encode_dispense(counts: list[int]) -> bytes:
    """Parameters of DISPENSE: QTY1..QTY4 (+0x20), TO1 TO2 (0x20 0x20: no timeout), 9 reserved."""
    if len(counts) != CASSETTES:
        raise ValueError(f"the LCDM-4000 dispenses from {CASSETTES} cassettes, got {len(counts)}")
    return bytes(_value(n) for n in counts) + bytes([0x20, 0x20]) + RESERVED


def decode_dispense(params: bytes) -> list[int]:
    if len(params) != CASSETTES + 2 + len(RESERVED):
        raise ValueError(f"DISPENSE has 15 parameter bytes, got {len(params)}")
    return [_number(b, "quantity") for b in params[:CASSETTES]]


def _cassette_type(position: int, present: bool) -> int:
    return TYPE_REMOVED + position + 1 if present else TYPE_REMOVED


@dataclass(frozen=True)
class PickCounts:
    """What one cassette did in a dispense or purge: notes out through EXIT, notes rejected."""

    exit: int
    reject: int
    present: bool = True


@dataclass(frozen=True)
class DispenseReply:
    """Reply to DISPENSE, TEST DISPENSE and PURGE: ERROR, a reserved 0x30, then per cassette
    EXIT, REJECT and TYPE; DISPENSE and TEST DISPENSE add 9 reserved bytes."""

    error: int
    cassettes: tuple[PickCounts, ...]
    reserved: bool = True  # the 9 trailing reserved bytes (not on PURGE)

    def encode(self) -> bytes:
        out = bytearray([_value(self.error), 0x30])
        for position, c in enumerate(self.cassettes):
            out += bytes([_value(c.exit), _value(c.reject), _cassette_type(position, c.present)])
        return bytes(out) + (RESERVED if self.reserved else b"")

    @classmethod
    def decode(cls, data: bytes, *, reserved: bool = True) -> DispenseReply:
        size = 2 + 3 * CASSETTES + (len(RESERVED) if reserved else 0)
        if len(data) != size:
            raise ValueError(f"reply has {size} data bytes, got {len(data)}")
        cassettes = tuple(
            PickCounts(
                _number(data[2 + 3 * i], "exit count"),
                _number(data[3 + 3 * i], "reject count"),
                data[4 + 3 * i] != TYPE_REMOVED,
            )
            for i in range(CASSETTES)
        )
        return cls(_number(data[0], "error"), cassettes, reserved)


@dataclass(frozen=True)
class CassetteSensors:
    stat: int  # STAT_OK, STAT_NEAR_END, STAT_EMPTY
    present: bool
    opacity: int = 0
    length: int = 0


@dataclass(frozen=True)
class StatusReply:
    """Reply to STATUS: ERROR, DISP (sensor bits + 0x20), then per cassette STAT, TYPE,
    OPAC (+0x20), LENG (+0x20)."""

    error: int
    sensors: int
    cassettes: tuple[CassetteSensors, ...]

    def encode(self) -> bytes:
        out = bytearray([_value(self.error), _value(self.sensors)])
        for position, c in enumerate(self.cassettes):
            out += bytes(
                [
                    c.stat,
                    _cassette_type(position, c.present),
                    _value(c.opacity),
                    _value(c.length),
                ]
            )
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> StatusReply:
        if len(data) != 2 + 4 * CASSETTES:
            raise ValueError(f"status reply has {2 + 4 * CASSETTES} data bytes, got {len(data)}")
        cassettes = tuple(
            CassetteSensors(
                data[2 + 4 * i],
                data[3 + 4 * i] != TYPE_REMOVED,
                _number(data[4 + 4 * i], "opacity"),
                _number(data[5 + 4 * i], "length"),
            )
            for i in range(CASSETTES)
        )
        return cls(_number(data[0], "error"), _number(data[1], "sensor"), cassettes)

    @property
    def notes_in_tray(self) -> bool:
        return bool(self.sensors & EXIT)
