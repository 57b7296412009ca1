"""``atm link decode HEX|FILE``: decode and pretty-print framed host-link messages.

For people debugging a host or a capture: each frame's elements are printed with the PAN and
track 2 masked and the PIN block, MAC and key material hidden. With ``--mac-key`` the MAC of each
message is checked as well (the key is never printed).
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path
from typing import Any

from protocol.display import describe
from protocol.errors import FrameError, MacError, MessageError
from protocol.framing import ABSOLUTE_MAX_FRAME, Framer
from protocol.hexdump import parse_hexdump
from protocol.mac import verify_signed
from protocol.messages import decode
from protocol.security import KeyScheme

__all__ = ["decode_input", "register"]

_HEX = set(string.hexdigits + string.whitespace)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "link",
        help="host-link tools (decode captured messages)",
        description="Tools for the ISO-8583 host link (see docs/protocol.md).",
    )
    sub = parser.add_subparsers(dest="link_command", required=True, metavar="ACTION")
    p = sub.add_parser(
        "decode",
        help="decode framed messages from hex or a file; PAN masked, secrets hidden",
        description="Decode one or more framed messages (2-byte big-endian length + "
        "message). SOURCE is hex text (spaces allowed), a hex dump (as printed in "
        "docs/protocol.md, by --trace and by `atm link proxy`), a file holding any of these "
        "or raw bytes (a proxy --capture file), or - for standard input. Exit 0 when every "
        "frame decodes (and, with --mac-key, every MAC verifies), 1 otherwise, 2 bad input.",
    )
    p.add_argument("source", metavar="HEX|FILE")
    p.add_argument("--raw", action="store_true", help="the input is one message without a frame")
    p.add_argument("--mac-key", help="check each MAC with this key (32 hex digits)")
    p.add_argument(
        "--scheme",
        choices=[s.value for s in KeyScheme],
        default=KeyScheme.TDES.value,
        help="key scheme for --mac-key: T (retail MAC, default) or A (AES-CMAC)",
    )
    p.set_defaults(func=_run)


def decode_input(source: str) -> bytes:
    """The bytes named by ``source``: a file (a hex dump as in docs/protocol.md or --trace,
    plain hex text, or raw bytes), ``-`` for standard input, or hex on the command line."""
    path = Path(source)
    cleaned = "".join(source.split())
    looks_hex = bool(cleaned) and not set(cleaned) - set(string.hexdigits)
    try:
        is_file = not looks_hex and path.is_file()
    except OSError:  # a pasted dump is no file name ("File name too long")
        is_file = False
    if source == "-" or is_file:
        data = sys.stdin.buffer.read() if source == "-" else path.read_bytes()
        text = data.decode("ascii", "replace")
        if data and set(text) <= _HEX:
            return bytes.fromhex("".join(text.split()))
        dumped = parse_hexdump(text)
        if dumped is not None:
            return dumped
        return data
    dumped = parse_hexdump(source)
    if dumped is not None:
        return dumped
    if not looks_hex:
        raise ValueError(f"{source!r} is neither a file nor hexadecimal")
    if len(cleaned) % 2:
        raise ValueError("odd number of hex digits")
    return bytes.fromhex(cleaned)


def _run(args: argparse.Namespace) -> int:
    try:
        data = decode_input(args.source)
        mac_key = bytes.fromhex(args.mac_key) if args.mac_key else None
    except (OSError, ValueError) as exc:
        print(f"atm link decode: {exc}", file=sys.stderr)
        return 2
    if args.raw:
        frames = [data]
    else:
        framer = Framer(ABSOLUTE_MAX_FRAME)
        try:
            frames = framer.feed(data)
        except FrameError as exc:
            print(f"atm link decode: {exc}", file=sys.stderr)
            return 1
        if framer.buffered:
            print(
                f"atm link decode: {framer.buffered} trailing bytes do not make a whole frame",
                file=sys.stderr,
            )
        if not frames:
            print("atm link decode: no complete frame found", file=sys.stderr)
            return 1
    status = 0
    for number, frame in enumerate(frames, 1):
        print(f"frame {number}: {len(frame)} bytes")
        try:
            message = decode(frame)
        except MessageError as exc:
            print(f"  undecodable: {exc}")
            status = 1
            continue
        print(describe(message))
        if mac_key is not None:
            try:
                verify_signed(frame, message, KeyScheme(args.scheme), mac_key)
                print("  MAC verifies")
            except MacError as exc:
                print(f"  MAC check failed: {exc}")
                status = 1
    return status
