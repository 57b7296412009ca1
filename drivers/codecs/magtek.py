"""MagTek-style USB HID magnetic stripe reader (vendor 0x0801, product 0x0002 in HID mode).

One swipe is one 337-byte input report: bytes 0-2 the decode status of tracks 1-3 (0 = ok),
bytes 3-5 the track lengths, byte 6 the card encoding type, then 110 bytes per track: track 1
from byte 7, track 2 from 117, track 3 from 227. Track data is ASCII with its start and end
sentinels (``;``...``?`` on track 2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRODUCT_HID", "REPORT_LENGTH", "VENDOR", "Swipe", "decode_report", "encode_report"]

VENDOR = 0x0801
PRODUCT_HID = 0x0002
REPORT_LENGTH = 337
TRACK_OFFSETS = (7, 117, 227)
TRACK_SPACE = 110


@dataclass(frozen=True)
class Swipe:
    status: tuple[int, int, int]
    tracks: tuple[str, str, str]
    encoding: int = 0

    def __repr__(self) -> str:  # track data never reaches a log
        return f"Swipe(status={self.status}, lengths={[len(t) for t in self.tracks]})"

    @property
    def track2_ok(self) -> bool:
        return self.status[1] == 0 and bool(self.tracks[1])

    @property
    def track2(self) -> str:
        """Track 2 without sentinels: ``PAN=YYMM...``."""
        return self.tracks[1].strip().removeprefix(";").removesuffix("?")


def decode_report(report: bytes) -> Swipe:
    if len(report) != REPORT_LENGTH:
        raise ValueError(f"a MagTek HID report is {REPORT_LENGTH} bytes, got {len(report)}")
    tracks = []
    for i, offset in enumerate(TRACK_OFFSETS):
        length = report[3 + i]
        if length > TRACK_SPACE:
            raise ValueError(f"track {i + 1} length {length} exceeds {TRACK_SPACE}")
        tracks.append(report[offset : offset + length].decode("ascii", errors="replace"))
    return Swipe((report[0], report[1], report[2]), (tracks[0], tracks[1], tracks[2]), report[6])


def encode_report(swipe: Swipe) -> bytes:
    report = bytearray(REPORT_LENGTH)
    report[0:3] = bytes(swipe.status)
    report[6] = swipe.encoding
    for i, (offset, track) in enumerate(zip(TRACK_OFFSETS, swipe.tracks, strict=True)):
        data = track.encode("ascii")
        if len(data) > TRACK_SPACE:
            raise ValueError(f"track {i + 1} is longer than {TRACK_SPACE} bytes")
        report[3 + i] = len(data)
        report[offset : offset + len(data)] = data
    return bytes(report)
