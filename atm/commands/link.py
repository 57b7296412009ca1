"""``atm link decode HEX|FILE``: decode and pretty-print framed host-link messages.

For people debugging a host or a capture: each frame's elements are printed with the PAN and
track 2 masked and the PIN block, MAC and key material hidden. With ``--mac-key`` the MAC of each
message is checked as well (the key is never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import string
import sys
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from atm.commands._signals import stop_on_signals
from atm.errors import EXIT_UNAVAILABLE, EXIT_USAGE, CommandFailed
from protocol.display import describe
from protocol.errors import FrameError, MacError, MessageError
from protocol.framing import ABSOLUTE_MAX_FRAME, Framer
from protocol.hexdump import parse_hexdump
from protocol.mac import verify_signed
from protocol.messages import decode
from protocol.security import KeyScheme

__all__ = ["LinkProxy", "decode_input", "register"]

_HEX = set(string.hexdigits + string.whitespace)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "link",
        help="host-link tools (decode captured messages, a capturing proxy)",
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
    proxy = sub.add_parser(
        "proxy",
        help="relay between an ATM and a host, printing every message decoded",
        description="Listen on PORT for ATMs, relay each connection byte for byte to "
        "HOST:PORT, and print every message in both directions decoded (PAN masked, secrets "
        "hidden, response codes with their meaning). --capture FILE appends every frame (raw, "
        "with its length prefix) to FILE, which `atm link decode FILE` reads back. Point the "
        "ATM at the proxy: `atm device --port PORT`. Ctrl-C stops it.",
    )
    proxy.add_argument("--listen", required=True, metavar="PORT", help="port to accept ATMs on")
    proxy.add_argument(
        "--listen-host", default="127.0.0.1", help="address to accept on (default 127.0.0.1)"
    )
    proxy.add_argument("--to", required=True, metavar="HOST:PORT", help="the host to relay to")
    proxy.add_argument("--capture", metavar="FILE", help="append every frame to FILE (raw)")
    proxy.set_defaults(func=_proxy_command)


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


class LinkProxy:
    """A relay between ATMs and a host that decodes what passes. Bytes are forwarded as they
    arrive (the relay never holds a frame back); a copy of each direction goes through a
    ``Framer``, and each complete frame is printed with ``describe`` and appended to the
    capture file. A frame that does not decode is shown as such and still relayed."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        out: TextIO,
        capture: BinaryIO | None = None,
    ) -> None:
        self.upstream = upstream
        self.out = out
        self.capture = capture
        self._server: asyncio.Server | None = None
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections += 1
        number = self._connections
        peer = writer.get_extra_info("peername")
        host, port = self.upstream
        try:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), 10
                )
            except (OSError, TimeoutError) as exc:
                self._say(f"[{number}] cannot reach the host at {host}:{port}: {exc}")
                return
            self._say(f"[{number}] ATM {peer[0]}:{peer[1]} connected; relaying to {host}:{port}")
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(reader, up_writer, f"[{number}] ATM -> HOST"))
                    group.create_task(self._pump(up_reader, writer, f"[{number}] HOST -> ATM"))
            finally:
                up_writer.close()
            self._say(f"[{number}] connection closed")
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, arrow: str
    ) -> None:
        framer: Framer | None = Framer(ABSOLUTE_MAX_FRAME)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if framer is None:
                    continue
                try:
                    frames = framer.feed(data)
                except FrameError as exc:
                    self._say(f"{arrow} not framed as the link frames ({exc}); relaying only")
                    framer = None
                    continue
                for frame in frames:
                    self._show(arrow, frame)
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: end the other too, so the relay never half-hangs.
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
            writer.close()

    def _show(self, arrow: str, frame: bytes) -> None:
        if self.capture is not None:
            self.capture.write(len(frame).to_bytes(2, "big") + frame)
            self.capture.flush()
        try:
            message = decode(frame)
        except MessageError as exc:
            self._say(f"{arrow} undecodable ({len(frame)} bytes): {exc}")
            return
        self._say(f"{arrow} {describe(message)}")


def _parse_port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise CommandFailed(f"link proxy: {what} {text!r} is not a port (0-65535)", EXIT_USAGE)
    return int(text)


def _proxy_command(args: argparse.Namespace) -> int:
    listen = _parse_port(args.listen, "--listen")
    host, sep, port_text = args.to.rpartition(":")
    if not sep or not host:
        raise CommandFailed(f"link proxy: --to {args.to!r} is not HOST:PORT", EXIT_USAGE)
    upstream = (host.strip("[]"), _parse_port(port_text, "--to port"))
    try:
        capture = open(args.capture, "ab") if args.capture else None
    except OSError as exc:
        raise CommandFailed(
            f"link proxy: cannot write the capture file {args.capture}: {exc.strerror}", EXIT_USAGE
        ) from None
    try:
        return asyncio.run(
            _serve_proxy(
                LinkProxy(upstream, out=sys.stdout, capture=capture), args.listen_host, listen
            )
        )
    finally:
        if capture is not None:
            capture.close()


async def _serve_proxy(proxy: LinkProxy, host: str, port: int) -> int:
    try:
        bound = await proxy.start(host, port)
    except OSError as exc:
        raise CommandFailed(
            f"link proxy: cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(choose another --listen port)",
            EXIT_UNAVAILABLE,
        ) from None
    upstream = f"{proxy.upstream[0]}:{proxy.upstream[1]}"
    print(f"link proxy listening on {host}:{bound}, relaying to {upstream}", flush=True)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        await proxy.close()
    return 0
