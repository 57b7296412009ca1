"""Sankyo ICT3K5-style motorised card reader codec (our documented variant).

Frame (both directions): ``STX 0xF2, LEN (2 bytes, big-endian), text, CRC (2 bytes,
big-endian)`` where the CRC is CRC-16/XMODEM over STX..text (``binascii.crc_hqx(.., 0)``).
Command text: ``'C' cmd param data``. Positive reply: ``'P' cmd param st1 st0 data``;
negative reply: ``'N' cmd param e1 e0``. Each side answers a frame with ACK 0x06 / NAK 0x15.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from drivers.codecs.events import ACK, NAK, Ack, BadFrame, Junk, Nak

__all__ = [
    "CARD_AT_GATE",
    "CARD_INSIDE",
    "ERRORS",
    "NO_CARD",
    "SankyoCommand",
    "SankyoDecoder",
    "SankyoReply",
    "crc16_xmodem",
    "encode_frame",
]

STX = 0xF2
MAX_TEXT = 512

# Commands (cmd, param)
INITIALISE = b"0"  # param b"0" eject card, b"1" capture card, b"2" keep card
STATUS = b"1"  # param b"0"
EJECT = b"3"  # param b"0" to the gate, b"1" into the capture bin
LED = b"5"
READ_TRACK = b"6"  # param b"1".."3" track, b"4" all
ENTRY = b":"  # param b"0" enable, b"1" inhibit

# Card position in the status field of a positive reply
NO_CARD, CARD_AT_GATE, CARD_INSIDE = "00", "01", "02"

ERRORS = {
    "00": "undefined command",
    "01": "command sequence error",
    "02": "command data error",
    "10": "card jam",
    "11": "shutter failure",
    "13": "long card",
    "14": "short card",
    "17": "card jam while retrieving",
    "18": "two cards inserted",
    "20": "read error: parity",
    "21": "read error: start/end sentinel",
    "22": "read error: LRC",
    "23": "read error: no data",
    "24": "read error: no magnetic stripe",
    "50": "capture counter overflow (capture bin full)",
    "B0": "not initialised",
}


def crc16_xmodem(data: bytes) -> int:
    return binascii.crc_hqx(data, 0)


def encode_frame(text: bytes) -> bytes:
    """``encode_frame(b"C10")`` -> ``F2 00 03 43 31 30 C5 2A``."""
    if not 1 <= len(text) <= MAX_TEXT:
        raise ValueError(f"text of {len(text)} bytes does not fit a frame")
    body = bytes([STX]) + len(text).to_bytes(2, "big") + text
    return body + crc16_xmodem(body).to_bytes(2, "big")


@dataclass(frozen=True)
class SankyoCommand:
    cmd: bytes
    param: bytes
    data: bytes = b""

    def encode(self) -> bytes:
        return encode_frame(b"C" + self.cmd + self.param + self.data)

    @classmethod
    def parse(cls, text: bytes) -> SankyoCommand:
        if len(text) < 3 or text[:1] != b"C":
            raise ValueError(f"not a command text: {text!r}")
        return cls(text[1:2], text[2:3], text[3:])


@dataclass(frozen=True)
class SankyoReply:
    """``positive`` replies carry a 2-character status (card position) and data; negative
    replies carry a 2-character error code in ``code`` and no data."""

    positive: bool
    cmd: bytes
    param: bytes
    code: str
    data: bytes = b""

    def encode(self) -> bytes:
        head = b"P" if self.positive else b"N"
        return encode_frame(head + self.cmd + self.param + self.code.encode() + self.data)

    @classmethod
    def parse(cls, text: bytes) -> SankyoReply:
        if len(text) < 5 or text[:1] not in (b"P", b"N"):
            raise ValueError(f"not a reply text: {text!r}")
        code = text[3:5].decode("ascii", errors="replace")
        return cls(text[:1] == b"P", text[1:2], text[2:3], code, text[5:])

    @property
    def error_text(self) -> str:
        return ERRORS.get(self.code, f"error {self.code}")


@dataclass(frozen=True)
class SankyoFrame:
    text: bytes


class SankyoDecoder:
    """Feed bytes, get ``Ack``/``Nak``/``Junk``/``BadFrame``/``SankyoFrame`` events."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Ack | Nak | Junk | BadFrame | SankyoFrame]:
        self._buf += data
        events: list[Ack | Nak | Junk | BadFrame | SankyoFrame] = []
        junk = bytearray()

        def flush() -> None:
            if junk:
                events.append(Junk(bytes(junk)))
                junk.clear()

        while self._buf:
            first = self._buf[0]
            if first != STX:
                del self._buf[0]
                if first in (ACK, NAK):
                    flush()
                    events.append(Ack() if first == ACK else Nak())
                else:
                    junk.append(first)
                continue
            if len(self._buf) < 3:
                break
            length = int.from_bytes(self._buf[1:3], "big")
            if not 1 <= length <= MAX_TEXT:
                flush()
                events.append(BadFrame(bytes(self._buf[:3]), f"bad length {length}"))
                del self._buf[:3]
                continue
            total = 3 + length + 2
            if len(self._buf) < total:
                break
            raw = bytes(self._buf[:total])
            del self._buf[:total]
            flush()
            crc = int.from_bytes(raw[-2:], "big")
            if crc != crc16_xmodem(raw[:-2]):
                events.append(BadFrame(raw, f"CRC {crc:04X} != {crc16_xmodem(raw[:-2]):04X}"))
            else:
                events.append(SankyoFrame(raw[3:-2]))
        flush()
        return events
