"""SZZT ZT588-style encrypting PIN pad codec (our documented variant).

Frame: ``STX 0x02, three ASCII length digits, text, ETX 0x03, two ASCII hex digits`` of the
XOR of every byte from the first length digit through ETX. Each side answers a frame with
ACK 0x06 / NAK 0x15. Key presses travel as single bytes outside frames; during PIN entry a
digit is reported as ``*`` and never as itself.

Command texts (first character is the command):
``0`` status; ``3`` load key ``slot(2) under(2) key-hex kcv(6)``; ``5`` keypad
``0`` close / ``1`` open for one key; ``6`` start PIN entry ``slot(2) format(1) min(2) max(2)
timeout(3 s) pan``, where ``pan`` is the 12 PAN digits of format 0 (rightmost, excluding the
check digit) or, for format 4, the whole PAN (12 to 19 digits); ``7`` get PIN block
(``format(1) block-hex``: 16 hex for format 0, 32 for format 4); ``8`` compare two format 4
blocks ``pan-length(2) pan block-hex(32) block-hex(32)``, answered ``1`` (same PIN) or ``0``.
Reply texts: command + status (``00`` or ``E0``..) + data. The key in slot ``3`` is unwrapped
by the algorithm of the master key (TDES-ECB, or RFC 3394 AES key wrap for an AES master key).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.codecs.events import ACK, NAK, Ack, BadFrame, Junk, Nak

__all__ = [
    "KEY_CODES",
    "STATUS_TEXT",
    "Key",
    "PadFrame",
    "PadReply",
    "Zt588Decoder",
    "checksum",
    "encode_frame",
]

STX, ETX = 0x02, 0x03
MAX_TEXT = 256
TMK_SLOT = "20"
TPK_SLOT = "30"

# Key codes: what the pad sends for a key press (outside frames).
KEY_CODES: dict[str, int] = {str(d): 0x30 + d for d in range(10)}
KEY_CODES.update({"ENTER": 0x0D, "CANCEL": 0x1B, "CLEAR": 0x08})
KEY_CODES.update({f"F{i}": 0x40 + i for i in range(1, 9)})
PIN_DIGIT = 0x2A  # '*': a digit was entered during PIN entry
ENTRY_TIMEOUT = 0x1A  # the pad's entry timer ran out
KEY_NAMES = {code: name for name, code in KEY_CODES.items()}
KEY_NAMES[PIN_DIGIT] = "*"
KEY_NAMES[ENTRY_TIMEOUT] = "TIMEOUT"

STATUS_TEXT = {
    "00": "ok",
    "E0": "command error",
    "E1": "input timeout",
    "E2": "key not found",
    "E3": "key check value mismatch",
    "E4": "no PIN entered",
    "E5": "format not supported",
    "E6": "PIN too short",
    "E7": "bad key length",
    "E8": "key does not unwrap",
}


def checksum(data: bytes) -> bytes:
    value = 0
    for byte in data:
        value ^= byte
    return f"{value:02X}".encode()


def encode_frame(text: bytes) -> bytes:
    """``encode_frame(b"0")`` -> ``02 30 30 31 30 03 30 32`` ("001", "0", ETX, "02")."""
    if not 1 <= len(text) <= MAX_TEXT:
        raise ValueError(f"text of {len(text)} bytes does not fit a frame")
    inner = f"{len(text):03d}".encode() + text + bytes([ETX])
    return bytes([STX]) + inner + checksum(inner)


@dataclass(frozen=True)
class Key:
    """A key byte from the pad: a key name, ``*`` (a PIN digit) or ``TIMEOUT``."""

    name: str


@dataclass(frozen=True)
class PadFrame:
    text: bytes


@dataclass(frozen=True)
class PadReply:
    command: str
    status: str
    data: bytes = b""

    def encode(self) -> bytes:
        return encode_frame(self.command.encode() + self.status.encode() + self.data)

    @classmethod
    def parse(cls, text: bytes) -> PadReply:
        if len(text) < 3:
            raise ValueError(f"reply text too short: {text!r}")
        return cls(chr(text[0]), text[1:3].decode("ascii", errors="replace"), text[3:])

    @property
    def ok(self) -> bool:
        return self.status == "00"

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, f"status {self.status}")


class Zt588Decoder:
    """Feed bytes, get events. ``keys`` is True on the host side, where single bytes outside
    frames are key presses; on the pad side they are junk."""

    def __init__(self, *, keys: bool) -> None:
        self._keys = keys
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Ack | Nak | Junk | BadFrame | PadFrame | Key]:
        self._buf += data
        events: list[Ack | Nak | Junk | BadFrame | PadFrame | Key] = []
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
                elif self._keys and first in KEY_NAMES:
                    flush()
                    events.append(Key(KEY_NAMES[first]))
                else:
                    junk.append(first)
                continue
            if len(self._buf) < 4:
                break
            digits = bytes(self._buf[1:4])
            if not digits.isdigit() or not 1 <= int(digits) <= MAX_TEXT:
                flush()
                events.append(BadFrame(bytes(self._buf[:4]), f"bad length field {digits!r}"))
                del self._buf[:4]
                continue
            total = 1 + 3 + int(digits) + 1 + 2
            if len(self._buf) < total:
                break
            raw = bytes(self._buf[:total])
            del self._buf[:total]
            flush()
            if raw[-3] != ETX:
                events.append(BadFrame(raw, "no ETX where the length says"))
            elif checksum(raw[1:-2]) != raw[-2:]:
                events.append(BadFrame(raw, f"checksum {raw[-2:]!r} != {checksum(raw[1:-2])!r}"))
            else:
                events.append(PadFrame(raw[4:-3]))
        flush()
        return events
