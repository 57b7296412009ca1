"""The hex dump used everywhere bytes are shown to a person: ``docs/protocol.md``'s examples,
``--trace`` on the link, drivers and simulators, and ``atm link proxy``; and its reader, so
``atm link decode`` takes any of those back.

One line per 16 bytes: a 4-digit hex offset, two spaces, the bytes in hex separated by single
spaces, two or more spaces, the printable ASCII (``.`` for anything else)::

    0000  00 6C 30 38 30 30 38 32 33 38 30 30 30 30 30 30  .l08008238000000
"""

from __future__ import annotations

import re

__all__ = ["hexdump", "parse_hexdump", "redact", "trace_text"]

#: 12 or more hex characters in a row: a PAN, track 2 data, a key, a KCV pair, a PIN block
#: or a MAC on a device's wire (our devices carry them as ASCII). Hidden whole in a trace.
_SECRET_RUN = re.compile(rb"[0-9A-Fa-f]{12,}")
#: A run of 4 or more at either end of a chunk may be the piece of a longer one that the
#: device's stream split across two reads: hidden too.
_EDGE_RUN = re.compile(rb"\A[0-9A-Fa-f]{4,}|[0-9A-Fa-f]{4,}\Z")

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


def redact(data: bytes) -> bytes:
    """``data`` with every run of 12 or more hex characters (and of 4 or more at the chunk's
    ends) replaced by ``*``: what a trace
    may show of a device's bytes. Frame structure, commands, statuses, counts and key codes
    stay visible; PANs, track data, keys, PIN blocks and MACs never appear."""
    hidden = _SECRET_RUN.sub(lambda m: b"*" * len(m.group()), data)
    return _EDGE_RUN.sub(lambda m: b"*" * len(m.group()), hidden)


def trace_text(direction: str, where: str, data: bytes) -> str:
    """A heading and the redacted dump: what ``--trace`` prints for one chunk of bytes."""
    return f"{direction} {where} ({len(data)} bytes)\n{hexdump(redact(data))}"
