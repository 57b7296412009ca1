"""ESC/POS receipt printer codec: commands out, real-time status bytes in (host side), and an
incremental command parser (printer side, used by the simulator).

``ESC @`` initialise; text + ``LF``; ``ESC d n`` feed n lines; ``GS V 0``/``GS V 1`` full /
partial cut (also ``GS V 65/66 n``); ``DLE EOT n`` real-time status, answered with one byte
whose fixed bits are 0x12 (bits 1 and 4 set, bits 0 and 7 clear).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CUT_FULL",
    "CUT_PARTIAL",
    "INIT",
    "Cut",
    "EscPosParser",
    "Feed",
    "Init",
    "LineFeed",
    "StatusByte",
    "StatusRequest",
    "Text",
    "Unknown",
    "encode_line",
    "feed",
    "status_request",
]

ESC, GS, DLE, EOT, LF, CR = 0x1B, 0x1D, 0x10, 0x04, 0x0A, 0x0D
INIT = bytes([ESC, 0x40])
CUT_FULL = bytes([GS, 0x56, 0x00])
CUT_PARTIAL = bytes([GS, 0x56, 0x01])

PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, ROLL_PAPER = 1, 2, 3, 4
FIXED_MASK, FIXED_BITS = 0x93, 0x12

# DLE EOT 1 (printer status)
OFFLINE = 0x08
# DLE EOT 2 (offline cause)
COVER_OPEN, FEED_BUTTON, PAPER_OUT_STOP, ERROR = 0x04, 0x08, 0x20, 0x40
# DLE EOT 3 (error cause)
AUTOCUTTER_ERROR, UNRECOVERABLE, AUTO_RECOVERABLE = 0x08, 0x20, 0x40
# DLE EOT 4 (roll paper sensor)
NEAR_END, PAPER_OUT = 0x0C, 0x60


def status_request(n: int) -> bytes:
    """``status_request(4)`` -> ``10 04 04``."""
    if n not in (PRINTER, OFFLINE_CAUSE, ERROR_CAUSE, ROLL_PAPER):
        raise ValueError(f"DLE EOT n takes n in 1..4, got {n}")
    return bytes([DLE, EOT, n])


def feed(lines: int) -> bytes:
    if not 0 <= lines <= 255:
        raise ValueError("feed 0..255 lines")
    return bytes([ESC, 0x64, lines])


def encode_line(text: str) -> bytes:
    """Printable text (code page 437, unknown characters as ``?``) plus LF. Control
    characters are dropped so a receipt line can never smuggle a command."""
    clean = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
    return clean.encode("cp437", errors="replace") + bytes([LF])


@dataclass(frozen=True)
class StatusByte:
    """One real-time status reply, checked against its fixed bits."""

    request: int
    value: int

    def __post_init__(self) -> None:
        if self.value & FIXED_MASK != FIXED_BITS:
            raise ValueError(
                f"status byte {self.value:02X} lacks the fixed bits 0x12 (not an ESC/POS printer?)"
            )

    @property
    def near_end(self) -> bool:
        return self.request == ROLL_PAPER and bool(self.value & NEAR_END)

    @property
    def paper_out(self) -> bool:
        if self.request == ROLL_PAPER:
            return bool(self.value & PAPER_OUT)
        return self.request == OFFLINE_CAUSE and bool(self.value & PAPER_OUT_STOP)

    @property
    def cover_open(self) -> bool:
        return self.request == OFFLINE_CAUSE and bool(self.value & COVER_OPEN)

    @property
    def offline(self) -> bool:
        return self.request == PRINTER and bool(self.value & OFFLINE)


# -- printer side -------------------------------------------------------------------------


@dataclass(frozen=True)
class Init:
    pass


@dataclass(frozen=True)
class Text:
    data: bytes


@dataclass(frozen=True)
class LineFeed:
    pass


@dataclass(frozen=True)
class Feed:
    lines: int


@dataclass(frozen=True)
class Cut:
    partial: bool


@dataclass(frozen=True)
class StatusRequest:
    n: int


@dataclass(frozen=True)
class Unknown:
    data: bytes


PrinterEvent = Init | Text | LineFeed | Feed | Cut | StatusRequest | Unknown


class EscPosParser:
    """Incremental parser of the command subset above; anything else becomes ``Unknown``."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[PrinterEvent]:
        self._buf += data
        out: list[PrinterEvent] = []
        buf = self._buf
        while buf:
            first = buf[0]
            if first == ESC:
                if len(buf) < 2:
                    break
                if buf[1] == 0x40:
                    out.append(Init())
                    del buf[:2]
                elif buf[1] == 0x64:
                    if len(buf) < 3:
                        break
                    out.append(Feed(buf[2]))
                    del buf[:3]
                else:
                    out.append(Unknown(bytes(buf[:2])))
                    del buf[:2]
            elif first == GS:
                if len(buf) < 3:
                    break
                if buf[1] == 0x56 and buf[2] in (0, 1, 48, 49):
                    out.append(Cut(partial=buf[2] in (1, 49)))
                    del buf[:3]
                elif buf[1] == 0x56 and buf[2] in (65, 66):
                    if len(buf) < 4:
                        break
                    out.append(Cut(partial=buf[2] == 66))
                    del buf[:4]
                else:
                    out.append(Unknown(bytes(buf[:2])))
                    del buf[:2]
            elif first == DLE:
                if len(buf) < 3:
                    break
                if buf[1] == EOT and 1 <= buf[2] <= 4:
                    out.append(StatusRequest(buf[2]))
                    del buf[:3]
                else:
                    out.append(Unknown(bytes(buf[:1])))
                    del buf[:1]
            elif first == LF:
                out.append(LineFeed())
                del buf[:1]
            elif first == CR:
                del buf[:1]
            elif first >= 0x20:
                end = 1
                while end < len(buf) and buf[end] >= 0x20:
                    end += 1
                out.append(Text(bytes(buf[:end])))
                del buf[:end]
            else:
                out.append(Unknown(bytes(buf[:1])))
                del buf[:1]
        return out
