"""JCM ID003 bill validator codec (sans-IO; our documented variant, see docs/devices.md).

Every frame, both ways: ``SYNC 0xFC, LNG, CMD, DATA..., CRCL, CRCH``. ``LNG`` is the length
of the whole frame (SYNC through CRC), 5..255. The CRC is CRC-16/KERMIT (polynomial 0x1021
reflected, initial value 0) over SYNC..DATA, sent low byte first: the status request is
``FC 05 11 27 56``. There is no ACK/NAK byte: the host polls with status requests, the
acceptor answers each frame with a frame (a status, ``ACK 0x50`` for an operation command,
``INVALID COMMAND 0x4B``), and the host answers ``VEND VALID`` with an ``ACK`` frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.codecs.events import BadFrame, Junk

__all__ = [
    "DENOMINATIONS",
    "MAX_ESCROW",
    "SYNC",
    "Command",
    "Id003Decoder",
    "Id003Frame",
    "RejectReason",
    "Status",
    "crc16_kermit",
    "denomination_cents",
    "denomination_code",
    "encode",
]

SYNC = 0xFC
MIN_FRAME = 5
MAX_FRAME = 255
# Our variant holds up to this many notes in escrow (a bunch-note escrow); ID003 units hold
# one. Stack-1 stacks them all, Return gives them all back (docs/devices.md).
MAX_ESCROW = 30


class Command(enum.IntEnum):
    """Host -> acceptor."""

    STATUS_REQUEST = 0x11
    RESET = 0x40
    STACK_1 = 0x41
    STACK_2 = 0x42
    RETURN = 0x43
    HOLD = 0x44
    WAIT = 0x45
    ACK = 0x50  # the host's answer to VEND VALID
    ENABLE = 0xC0  # data: denomination inhibit bits (1 = inhibited), two bytes
    INHIBIT = 0xC3  # data: 0x00 accepting, 0x01 inhibited
    VERSION_REQUEST = 0x88


class Status(enum.IntEnum):
    """Acceptor -> host."""

    IDLING = 0x11  # "enable": waiting for a note
    ACCEPTING = 0x12
    ESCROW = 0x13  # data: denomination code of the note just escrowed
    STACKING = 0x14
    VEND_VALID = 0x15  # data (our variant): denomination code of the note stacked
    STACKED = 0x16
    REJECTING = 0x17  # data: reject reason
    RETURNING = 0x18  # data (our variant): notes at the entrance, not yet taken
    HOLDING = 0x19
    DISABLED = 0x1A  # inhibited
    INITIALIZE = 0x1B
    POWER_UP = 0x40
    POWER_UP_BILL_IN_ACCEPTOR = 0x41
    POWER_UP_BILL_IN_STACKER = 0x42
    STACKER_FULL = 0x43
    STACKER_OPEN = 0x44  # the cassette was removed
    JAM_IN_ACCEPTOR = 0x45
    JAM_IN_STACKER = 0x46
    PAUSE = 0x47
    CHEATED = 0x48
    FAILURE = 0x49
    COMMUNICATION_ERROR = 0x4A
    INVALID_COMMAND = 0x4B
    ACK = 0x50


class RejectReason(enum.IntEnum):
    INSERTION = 0x71
    MAGNETIC_PATTERN = 0x72
    RESIDUAL_BILL = 0x73
    CALIBRATION = 0x74
    CONVEYING = 0x75
    DENOMINATION = 0x76  # discrimination error: not recognised
    PHOTO_PATTERN = 0x77
    PHOTO_LEVEL = 0x78
    INHIBITED = 0x79  # a denomination the host inhibited
    OPERATION = 0x7B
    LENGTH = 0x7D


# Escrow codes for a US dollar unit (code -> cents).
DENOMINATIONS: dict[int, int] = {
    0x61: 100,
    0x62: 200,
    0x63: 500,
    0x64: 1000,
    0x65: 2000,
    0x66: 5000,
    0x67: 10000,
}
_CODES = {cents: code for code, cents in DENOMINATIONS.items()}


def denomination_cents(code: int) -> int:
    try:
        return DENOMINATIONS[code]
    except KeyError:
        raise ValueError(f"unknown denomination code 0x{code:02X}") from None


def denomination_code(cents: int) -> int:
    try:
        return _CODES[cents]
    except KeyError:
        raise ValueError(f"no ID003 denomination code for {cents} cents") from None


def crc16_kermit(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def encode(cmd: int, data: bytes = b"") -> bytes:
    """``encode(Command.STATUS_REQUEST)`` -> ``FC 05 11 27 56``."""
    length = MIN_FRAME + len(data)
    if length > MAX_FRAME:
        raise ValueError(f"ID003 frame of {length} bytes is over {MAX_FRAME}")
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"command {cmd} is not a byte")
    body = bytes([SYNC, length, cmd]) + data
    return body + crc16_kermit(body).to_bytes(2, "little")


@dataclass(frozen=True)
class Id003Frame:
    """A whole frame whose CRC checked: ``cmd`` is a command or a status, per direction."""

    cmd: int
    data: bytes = b""


class Id003Decoder:
    """Feed bytes, get ``Id003Frame``, ``BadFrame`` (CRC or length wrong) and ``Junk``
    (bytes before a SYNC). Bounded buffer (one frame is at most 255 bytes); never raises."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Id003Frame | BadFrame | Junk]:
        self._buf += data
        events: list[Id003Frame | BadFrame | Junk] = []
        while self._buf:
            start = self._buf.find(SYNC)
            if start != 0:
                cut = len(self._buf) if start < 0 else start
                events.append(Junk(bytes(self._buf[:cut])))
                del self._buf[:cut]
                continue
            if len(self._buf) < 2:
                break
            length = self._buf[1]
            if length < MIN_FRAME:
                events.append(BadFrame(bytes(self._buf[:2]), f"length {length} under 5"))
                del self._buf[:2]
                continue
            if len(self._buf) < length:
                break
            raw = bytes(self._buf[:length])
            del self._buf[:length]
            crc = int.from_bytes(raw[-2:], "little")
            if crc != crc16_kermit(raw[:-2]):
                events.append(BadFrame(raw, f"CRC {crc:04X} != {crc16_kermit(raw[:-2]):04X}"))
                continue
            events.append(Id003Frame(raw[2], raw[3:-2]))
        return events
