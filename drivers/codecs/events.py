"""Events shared by the framed codecs (LCDM-2000, Sankyo, ZT588)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACK", "NAK", "Ack", "BadFrame", "Junk", "Nak"]

ACK = 0x06
NAK = 0x15


@dataclass(frozen=True)
class Ack:
    """The peer accepted our frame (0x06)."""


@dataclass(frozen=True)
class Nak:
    """The peer rejected our frame (0x15): send it again."""


@dataclass(frozen=True)
class Junk:
    """Bytes outside any frame that mean nothing in this protocol (a wrong device answers so)."""

    data: bytes


@dataclass(frozen=True)
class BadFrame:
    """A frame that arrived whole but failed its check (checksum, length, layout)."""

    data: bytes
    reason: str
