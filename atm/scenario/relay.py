"""Host-link faults between the ATM and the host: a real TCP relay that understands the link's
framing (2-byte length prefix) so it can lose, hold back, delay or alter whole messages.

- ``hold``: what the ATM sends is lost on the way (a host that stops answering);
- ``hold_replies`` / ``release_replies``: the host's replies wait in the relay (a late host);
- ``drop_reply``: the answer to the ATM's next 0100/0200 is lost (that request's answer, matched
  by terminal and STAN, not whichever reply comes next: a late second answer to a duplicated
  request is not the one lost);
- ``corrupt_mac``: the next reply from the host arrives with its MAC altered;
- ``slow`` / ``fast``: every reply is delayed by ``delay`` seconds, or not;
- ``corrupt_request_mac``: the ATM's next request reaches the host with its MAC altered;
- ``duplicate_request``: the ATM's next request reaches the host twice;
- ``cut``: every open connection is dropped now (replies held back are lost with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from protocol.errors import ProtocolError
from protocol.framing import Framer, encode_frame
from protocol.link import MatchKey, match_key
from protocol.messages import Message, decode

__all__ = ["LinkRelay"]

_security = logging.getLogger("atm.security")


@dataclass
class _Faults:
    holding: bool = False
    drop_replies: int = 0  # requests whose answer is to be lost, not yet sent
    drop_keys: set[MatchKey] = field(default_factory=set)  # sent, answer to be lost
    corrupt_replies: int = 0
    delay: float = 0.0
    corrupt_requests: int = 0
    duplicate_requests: int = 0
    replies_open: asyncio.Event = field(default_factory=asyncio.Event)


class LinkRelay:
    """``tls``: the relay reaches the host over TLS with this client context
    (``protocol.tls.client_context``: the host verified against its CA, and with mutual TLS the
    terminal's certificate presented), checking ``server_name`` (default the upstream host).
    The ATM's side stays on this process's loopback."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.tls = tls
        self.server_name = server_name
        self.faults = _Faults()
        self.faults.replies_open.set()
        self.dropped = 0
        self.sent = bytearray()  # every byte the ATM put on the wire
        # Set when an answer to a 0100/0200 waits in the relay (the host has answered it).
        self.reply_waiting = asyncio.Event()
        self.corrupted = 0
        self.duplicated = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def may_lose_answer(self, request: Message) -> bool:
        """May the answer to ``request``, about to be sent, be lost (requests or replies held;
        a 0100/0200 whose answer is to be dropped, or whose MAC is to be altered so that the
        host refuses it)? Faults that end a wait at once (a reply with a bad MAC, a cut), a
        duplicated request and ``slow`` (the answer comes, later) do not count."""
        f = self.faults
        if f.holding or not f.replies_open.is_set():
            return True
        financial = request.get("t") in {"0100", "0200"}
        return financial and bool(f.drop_replies or f.corrupt_requests)

    def apply(self, action: str, delay: float = 0.5) -> None:
        f = self.faults
        if action == "hold":
            f.holding = True
        elif action == "release":
            f.holding = False
        elif action == "hold_replies":
            f.replies_open.clear()
            self.reply_waiting.clear()
        elif action == "release_replies":
            f.replies_open.set()
        elif action == "drop_reply":
            f.drop_replies += 1
        elif action == "corrupt_mac":
            f.corrupt_replies += 1
        elif action == "slow":
            f.delay = delay
        elif action == "fast":
            f.delay = 0.0
        elif action == "corrupt_request_mac":
            f.corrupt_requests += 1
        elif action == "duplicate_request":
            f.duplicate_requests += 1
        elif action == "cut":
            for task in list(self._tasks):
                task.cancel()
            f.replies_open.set()
        else:
            raise ValueError(f"unknown link action {action!r}")

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.upstream,
                ssl=self.tls,
                server_hostname=(self.server_name or self.upstream[0]) if self.tls else None,
            )
        except OSError as exc:  # ssl.SSLError too: the ATM sees the link drop and retries
            if isinstance(exc, ssl.SSLError):
                _security.error(
                    "security: TLS handshake with host %s:%d failed: %s",
                    *self.upstream,
                    exc.reason or exc,
                )
            writer.close()
            return
        pumps = [
            asyncio.create_task(self._requests(reader, up_writer)),
            asyncio.create_task(self._replies(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer(0xFFFF)
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                self.sent += data
                for frame in framer.feed(data):
                    f = self.faults
                    if f.holding:
                        continue
                    if f.drop_replies and _is_financial(frame):
                        key = _match_key(frame)
                        if key is not None:
                            f.drop_replies -= 1
                            f.drop_keys.add(key)
                    if f.corrupt_requests and _is_financial(frame):
                        f.corrupt_requests -= 1
                        self.corrupted += 1
                        frame = _alter_mac(frame)
                    writer.write(encode_frame(frame))
                    if f.duplicate_requests and _is_financial(frame):
                        f.duplicate_requests -= 1
                        self.duplicated += 1
                        writer.write(encode_frame(frame))
                await writer.drain()

    async def _replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer(0xFFFF)
        f = self.faults
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    if not f.replies_open.is_set() and _is_financial(frame):
                        self.reply_waiting.set()
                    await f.replies_open.wait()
                    if f.delay:
                        await asyncio.sleep(f.delay)
                    if f.drop_keys and _is_financial(frame) and _match_key(frame) in f.drop_keys:
                        f.drop_keys.discard(_match_key(frame))
                        self.dropped += 1
                        continue
                    if f.corrupt_replies and _is_financial(frame):
                        f.corrupt_replies -= 1
                        self.corrupted += 1
                        frame = _alter_mac(frame)
                    writer.write(encode_frame(frame))
                    await writer.drain()


def _is_financial(frame: bytes) -> bool:
    """0100/0110, 0200/0210 (not the network messages and advices around them)."""
    return frame[:4] in {b"0100", b"0110", b"0200", b"0210"}


def _match_key(frame: bytes) -> MatchKey | None:
    """Terminal, STAN and MTI class of a request or its answer (None: not decodable)."""
    try:
        return match_key(decode(frame))
    except (ProtocolError, KeyError):
        return None


def _alter_mac(frame: bytes) -> bytes:
    # The MAC is the message's last field: alter its last character (still a hex digit).
    last = frame[-1:]
    return frame[:-1] + (b"1" if last == b"0" else b"0")
