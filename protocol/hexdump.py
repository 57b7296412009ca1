"""The hex dump used everywhere bytes are shown to a person: ``docs/protocol.md``'s examples,
``--trace`` on the link, drivers and simulators, and ``atm link proxy``; and its reader, so
``atm link decode`` takes any of those back.

One line per 16 bytes: a 4-digit hex offset, two spaces, the bytes in hex separated by single
spaces, two or more spaces, the printable ASCII (``.`` for anything else)::

    0000  00 6C 30 38 30 30 38 32 33 38 30 30 30 30 30 30  .l08008238000000
"""

from __future__ import annotations

import re

__all__ = ["hexdump", "parse_hexdump"]

_LINE = re.compile(
    r"(?:^|\s)(?P<offset>[0-9A-Fa-f]{4,8}):?  (?P<hex>(?:[0-9A-Fa-f]{2} ){0,15}[0-9A-Fa-f]{2})"
    r"(?=\s{2,}|\s*$)"
)


def hexdump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hex_part = " ".join(f"{b:02X}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:04X}  {hex_part:<47}  {text}")
    return "\n".join(lines)


def parse_hexdump(text: str) -> bytes | None:
    """The bytes of every dump line in ``text`` (other lines, such as headings or log text
    around a ``--trace`` dump, are skipped); None when no line is a dump line. Dumps follow
    each other: each line at offset 0 starts a new one, and its bytes are appended."""
    out = bytearray()
    found = False
    for line in text.splitlines():
        match = _LINE.search(line)
        if match is None:
            continue
        found = True
        out += bytes.fromhex(match["hex"])
    return bytes(out) if found else None
