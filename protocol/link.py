"""A small asyncio client for the host link: one TCP connection, request/response matching.

Responses are matched to requests by terminal ID (DE 41) + STAN (DE 11) + MTI class, as jPOS QMUX
does. A response with no waiting request (for example one that arrived after its timeout) is handed
to ``on_unmatched`` so the caller can act on it (a late approval must be reversed). A request
from the host (a host-initiated 0800) is never matched to a pending request of ours: it goes
to ``on_request``.

Messages go through a ``MessageCodec``: ``protocol.mac.TerminalCodec`` MACs every message sent
and verifies every message received. A message from the host whose MAC does not verify is never
acted upon: one security log line, and the connection is closed (pending requests fail), so the
terminal signs on again and gets fresh keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from protocol.errors import (
    LinkError,
    LinkTimeout,
    LinkUnavailable,
    LocalProtocolError,
    MacError,
    RemoteProtocolError,
)
from protocol.framing import DEFAULT_MAX_FRAME, Framer, encode_frame
from protocol.mac import MessageCodec, PlainCodec
from protocol.messages import Message, decode, is_request, mti_class

__all__ = ["LinkClient", "MatchKey", "MessageTap", "match_key"]

log = logging.getLogger(__name__)
security_log = logging.getLogger("protocol.security")

MessageTap = Callable[[str, Message], None]
"""Called with ("send" | "recv", message) for every message: for displays and journals."""

MatchKey = tuple[str, str, str]


def match_key(message: Message) -> MatchKey:
    return (message.get("41", ""), message.get("11", ""), mti_class(message["t"]))


class LinkClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        response_timeout: float = 30.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        tap: MessageTap | None = None,
        on_unmatched: Callable[[Message], None] | None = None,
        codec: MessageCodec | None = None,
        on_disconnect: Callable[[LinkError], None] | None = None,
        on_request: Callable[[Message], None] | None = None,
        connect_timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.response_timeout = response_timeout
        self.max_frame = max_frame
        self._tap = tap
        self._on_unmatched = on_unmatched
        self._on_disconnect = on_disconnect
        self._on_request = on_request
        self.codec: MessageCodec = codec or PlainCodec()
        self.connect_timeout = connect_timeout
        # TLS (protocol.tls.client_context): the host is verified against the context's CA
        # and by name (``server_hostname``, default ``host``).
        self.tls = tls
        self.server_hostname = server_hostname
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[MatchKey, asyncio.Future[Message]] = {}
        self._read_task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(self._open(), self.connect_timeout)
        except ssl.SSLError as exc:
            security_log.error(
                "security: TLS handshake with host %s:%d failed: %s",
                self.host,
                self.port,
                getattr(exc, "verify_message", None) or exc.reason or exc,
            )
            raise LinkUnavailable(
                f"TLS handshake with host {self.host}:{self.port} failed: {exc}"
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise LinkUnavailable(
                f"cannot connect to host {self.host}:{self.port}: {exc or 'timeout'}"
            ) from exc
        self._read_task = asyncio.create_task(self._read_loop(), name="link-reader")

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.tls is None:
            return await asyncio.open_connection(self.host, self.port)
        return await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, server_hostname=self.server_hostname or self.host
        )

    async def close(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_task
            self._read_task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None
        self._fail_pending(LinkError("link closed"))

    async def request(self, message: Message, timeout: float | None = None) -> Message:
        """Send ``message`` and wait for its matching response."""
        if not self.connected or self._writer is None:
            raise LinkUnavailable("not connected to the host")
        key = match_key(message)
        if key in self._pending:
            raise LocalProtocolError(f"a request with key {key} is already pending")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            await self.send(message)
            return await asyncio.wait_for(future, timeout or self.response_timeout)
        except TimeoutError as exc:
            raise LinkTimeout(f"no response to {message['t']} STAN {key[1]}") from exc
        finally:
            self._pending.pop(key, None)

    async def send(self, message: Message) -> None:
        """Send without waiting for a response (advices whose answer is handled elsewhere)."""
        if self._writer is None or self._writer.is_closing():
            raise LinkUnavailable("not connected to the host")
        payload = self.codec.encode(message)
        if self._tap:
            self._tap("send", decode(payload))  # as sent, MAC included
        try:
            self._writer.write(encode_frame(payload))
            await self._writer.drain()
        except OSError as exc:
            raise LinkError(f"send failed: {exc}") from exc

    async def _read_loop(self) -> None:
        assert self._reader is not None
        framer = Framer(self.max_frame)
        error: LinkError = LinkError("host closed the connection")
        try:
            while data := await self._reader.read(65536):
                for frame in framer.feed(data):
                    try:
                        message = self.codec.decode(frame)
                    except MacError as exc:
                        security_log.error(
                            "security: message from host %s:%d rejected: %s; disconnecting",
                            self.host,
                            self.port,
                            exc,
                        )
                        raise
                    except RemoteProtocolError as exc:
                        log.warning("dropping undecodable frame from host: %s", exc)
                        continue
                    self._dispatch(message)
        except MacError as exc:
            error = LinkError(f"bad MAC from host: {exc}")
        except RemoteProtocolError as exc:
            log.error("host stream broken: %s", exc)
            error = LinkError(f"host stream broken: {exc}")
        except OSError as exc:
            error = LinkError(f"connection lost: {exc}")
        finally:
            if self._writer is not None:
                self._writer.close()
            self._fail_pending(error)
            if self._on_disconnect is not None:
                self._on_disconnect(error)

    def _dispatch(self, message: Message) -> None:
        if self._tap:
            self._tap("recv", message)
        if is_request(message["t"]):
            if self._on_request is not None:
                self._on_request(message)
            else:
                log.warning("request %s STAN %s from host ignored", message["t"], message.get("11"))
            return
        future = self._pending.get(match_key(message))
        if future is not None and not future.done():
            future.set_result(message)
        elif self._on_unmatched is not None:
            self._on_unmatched(message)
        else:
            log.warning("unmatched %s STAN %s from host", message["t"], message.get("11"))

    def _fail_pending(self, error: LinkError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
