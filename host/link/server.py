"""The host's TCP server for the ISO-8583 link.

Order of work on each frame (DESIGN section 4: MAC first, then format, then the services):

1. Framing: a bad length prefix closes that connection.
2. Decoding: an undecodable frame gets a MAC'd format error (39=30) when its MTI is a readable
   request and the connection has already carried an authenticated message (so there is a key
   to MAC the answer with); otherwise the connection is closed.
3. MAC: sign-on and key change (0800, DE 70 = 001/161) are checked with the sign-on key derived
   from the terminal's master key, everything else with the terminal's current TAK. A missing
   or wrong MAC, an unknown terminal, or a terminal with no working keys: the message is never
   processed, one security log line says why, and the connection is closed.
4. Processing: network management (sign-on with key exchange, sign-off, echo, key change),
   reversal advices (``host.link.reversals``), card requests (``host.bank.services``).

Every response is MAC'd under the key that authenticated its request. Nothing a terminal sends
can stop the server or delay other terminals: database work runs in the worker pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session, sessionmaker

from host.bank.fastpath import FastAuthorizer, OrmPath
from host.bank.pins import PinHashCache
from host.bank.services import AuthorizationService, CardRequest, Outcome, PinFirst
from host.db import POOLER_HINT, prepared_statement_refused
from host.link.config import LinkConfig
from host.link.guard import ACCEPT_BURST, LISTEN_QUEUE, CloseReason, ConnectionGuard, LinkLimits
from host.link.keys import KeyStore
from host.link.reversals import ReversalService, parse_advice
from host.link.terminal_state import note_keys, note_network, stopped_terminals
from host.metrics import HostMetrics
from protocol.errors import FrameError, MacError, MessageError, ProtocolError
from protocol.framing import Framer, encode_frame
from protocol.keyblock import encode_key_delivery
from protocol.link import MessageTap
from protocol.mac import encode_signed, uses_signon_key, verify_signed
from protocol.messages import (
    Message,
    Mti,
    NetworkCode,
    TransactionType,
    decode,
    format_balances,
    format_transmission_time,
    is_request,
    mti_class,
    parse_amount,
    parse_processing_code,
    response_mti,
)
from protocol.response_codes import ResponseCode
from protocol.security import KeyScheme, WorkingKeys, signon_mac_key
from protocol.tls import certificate_terminal_id

__all__ = ["LinkServer", "StepHook"]

log = logging.getLogger(__name__)


def _hint_at_pooler(exc: BaseException) -> None:
    """After a failure is logged: when it was the server refusing a prepared statement, say
    the setting that a pooler in transaction mode needs."""
    if prepared_statement_refused(exc):
        log.error("%s", POOLER_HINT)


security_log = logging.getLogger("host.security")

T = TypeVar("T")

_ECHOED = frozenset(
    {
        "2",
        "3",
        "4",
        "7",
        "11",
        "12",
        "13",
        "37",
        "41",
        "42",
        "49",
        "70",
        "90",
        "95",
        "102",
        "103",
    }
)
# Every card request carries a PIN block (DE 52): without one it is a format error (30).
_REQUIRED = {
    "0100": ("2", "3", "7", "11", "41", "52"),
    "0200": ("2", "3", "4", "7", "11", "41", "52"),
}
_PIN_BLOCK_HEX = {0: 16, 4: 32}
# Hot path: how often a request may find its card's PIN hash changed between bcrypt and the
# call before it goes the ORM way (which verifies inside its transaction).
_PIN_ROUNDS = 3
TLS_HANDSHAKE_TIMEOUT = 10.0
# Responses buffered for a connection beyond which a handler waits for the socket to take
# them (a terminal that stops reading cannot make the host hold its answers in memory).
_DRAIN_ABOVE = 64 * 1024
# A connection's timer may fire this much before its deadline and still count as expired
# (the event loop runs timers up to its clock resolution early).
_TIMER_SLACK = 0.001

#: A test harness's hook (``atm.scenario.hostcrash`` kills the host at a step): told each step
#: a card request reaches with the message at that step: ``received`` (the request, about to
#: be authorized), ``posted`` (the request, authorized and committed, no answer sent yet) and
#: ``sent`` (an answer, written to its connection). None in production.
StepHook = Callable[[str, Message], None]


class _Connection(asyncio.Protocol):
    """One terminal's connection (an ``asyncio.Protocol``: no reader task, no per-read timeout
    context). Frames are cut from the bytes as they arrive (``data_received``) and each one is
    handled in a task of its own, as before; one timer per connection keeps the deadline for
    its next bytes (``_arm``); answers go straight to the transport, waiting only while it has
    paused writing. The connection closes once it reads no more (end of stream, a timeout, a
    bad length) and its handlers are done, or at once when a message fails authentication."""

    __slots__ = (
        "admitted",
        "auth",
        "authenticated",
        "certificate_terminal",
        "closed",
        "deadline",
        "drained",
        "finished",
        "framer",
        "handlers",
        "loop",
        "lost",
        "over_tls",
        "paused",
        "peer",
        "reading",
        "reason",
        "received",
        "server",
        "terminal_id",
        "timer",
        "told_stopped",
        "transport",
    )

    def __init__(self, server: LinkServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.terminal_id: str | None = None
        # No frame of this connection is processed any more (it failed authentication).
        self.closed = False
        # The first message passed its MAC check (host.link.guard counts such connections).
        self.authenticated = False
        # A whole frame has arrived (its authentication may still be under way).
        self.received = False
        # Mutual TLS: the terminal ID its client certificate names (protocol.tls).
        self.certificate_terminal: str | None = None
        # The reason (89/90) of the out-of-service 0800 the host pushed on this connection.
        self.told_stopped: str | None = None
        # The last card or network request's authentication under the terminal's working
        # keys, reused while those keys stay the same (one object per connection).
        self.auth: _Auth | None = None
        self.framer = Framer(server.max_frame)
        self.handlers: set[asyncio.Task[None]] = set()
        self.admitted = False  # counted by the guard (a refused connection is not)
        self.reading = False  # False before admission and once the connection reads no more
        self.lost = False  # connection_lost has run
        self.over_tls = False
        # The deadline for the next bytes and what a miss is (docs/protocol.md section 1).
        self.deadline = 0.0
        self.reason = CloseReason.FIRST_FRAME_TIMEOUT
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False  # the transport's write buffer is above its high-water mark
        self.drained: asyncio.Future[None] | None = None
        self.finished: asyncio.Future[None] = self.loop.create_future()

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (asyncio's or uvloop's, which does not subclass asyncio's).
        self.transport = stream = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        guard = self.server.guard
        refused = guard.admit(_peer_host(self.peer))
        if refused is not None:
            guard.report(refused, self.peer)
            transport.close()
            return
        self.admitted = True
        self.reading = True
        self.over_tls = transport.get_extra_info("sslcontext") is not None
        self.certificate_terminal = certificate_terminal_id(transport.get_extra_info("peercert"))
        # A terminal that stops reading cannot make the host hold its answers in memory.
        stream.set_write_buffer_limits(high=_DRAIN_ABOVE)
        self.server.opened(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            return
        try:
            frames = self.framer.feed(data)
        except FrameError as exc:
            log.warning("closing connection from %s: %s", self.peer, exc)
            self.stop_reading()
            return
        for frame in frames:
            if self.closed:
                return
            self.received = True
            handler = self.loop.create_task(self.server.handle_frame(frame, self))
            self.handlers.add(handler)
            handler.add_done_callback(self._handled)
        self._arm()

    def eof_received(self) -> bool:
        # The handlers' answers still go out on a half-closed TCP connection; TLS closes.
        self.stop_reading()
        return not self.over_tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.admitted:
            return
        if exc is not None and self.reading:
            log.info("connection from %s lost: %s", self.peer, exc)
        self.reading = False
        self._cancel_timer()
        self.paused = False
        self._wake_writers()
        if not self.handlers:
            self._finish()

    def pause_writing(self) -> None:
        # The terminal takes its answers more slowly than it sends requests: read no more of
        # them until the socket drains, so its answers cannot pile up in the host's memory.
        self.paused = True
        if self.reading:
            assert self.transport is not None
            self.transport.pause_reading()
            self._arm()

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_writers()
        if self.reading:
            assert self.transport is not None
            self.transport.resume_reading()
            self._arm()

    # -- the connection's life --------------------------------------------------------------
    def _arm(self) -> None:
        """Set the deadline for the connection's next bytes: a started frame gets
        ``frame_timeout`` to complete, a connection that has sent no whole frame as long for its
        first, otherwise ``idle_timeout`` between frames; while the host reads nothing because the
        terminal takes none of its answers (writing paused), ``idle_timeout`` from the pause (an
        idle close, not a frame the host itself left unread). The timer is moved only when the
        deadline comes sooner than it (a frame started on an idle connection); when it fires early
        it sets itself for the deadline (``_expire``), so the frames of a busy connection cost no
        timer work."""
        limits = self.server.limits
        if self.paused:
            timeout, self.reason = limits.idle_timeout, CloseReason.IDLE_TIMEOUT
        elif self.framer.buffered:
            timeout, self.reason = limits.frame_timeout, CloseReason.FRAME_TIMEOUT
        elif not self.received:
            timeout, self.reason = limits.frame_timeout, CloseReason.FIRST_FRAME_TIMEOUT
        else:
            timeout, self.reason = limits.idle_timeout, CloseReason.IDLE_TIMEOUT
        self.deadline = deadline = self.loop.time() + timeout
        timer = self.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self.timer = None
        if not self.reading or self.closed:
            return
        if self.deadline - self.loop.time() > _TIMER_SLACK:
            self.timer = self.loop.call_at(self.deadline, self._expire)
            return
        self.server.guard.report(self.reason, self.terminal_id or self.peer)
        self.stop_reading()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def stop_reading(self) -> None:
        """Read no more: the connection closes once its handlers are done."""
        if not self.reading:
            return
        self.reading = False
        self._cancel_timer()
        assert self.transport is not None
        if not self.lost and not self.transport.is_closing():
            self.transport.pause_reading()
        if not self.handlers:
            self.transport.close()

    def abandon(self) -> None:
        """A message failed authentication or could not be read: nothing more of this
        connection is processed and it closes now (handlers still running finish)."""
        self.closed = True
        self.reading = False
        self._cancel_timer()
        assert self.transport is not None
        self.transport.close()

    def _handled(self, handler: asyncio.Task[None]) -> None:
        self.handlers.discard(handler)
        if not handler.cancelled() and (exc := handler.exception()) is not None:
            log.error("failure handling a frame from %s", self.peer, exc_info=exc)
        if self.handlers or self.reading:
            return
        if self.lost:
            self._finish()
        else:
            assert self.transport is not None
            self.transport.close()

    def _finish(self) -> None:
        if not self.finished.done():
            self.server.closed(self)
            self.finished.set_result(None)

    # -- writing --------------------------------------------------------------------------
    async def drain(self) -> None:
        """Wait while the transport has paused writing (a terminal that reads slowly)."""
        while self.paused:
            if self.drained is None or self.drained.done():
                self.drained = self.loop.create_future()
            await self.drained
        if self.lost:
            raise ConnectionResetError("connection lost")

    def _wake_writers(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)


@dataclass(frozen=True)
class _Auth:
    """Who sent an authenticated message and the key that proved it."""

    terminal_id: str
    scheme: KeyScheme
    mac_key: bytes
    keys: WorkingKeys | None  # None for sign-on / key change (keys are being issued)


class LinkServer:
    def __init__(
        self,
        service: AuthorizationService,
        executor: concurrent.futures.Executor,
        *,
        max_frame: int = 4096,
        tap: MessageTap | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        sessions: sessionmaker[Session],
        link_config: LinkConfig,
        metrics: HostMetrics | None = None,
        limits: LinkLimits | None = None,
        soft_nofile: int | None = None,
        switch_poll_seconds: float = 2.0,
        fast: FastAuthorizer | None = None,
        steps: StepHook | None = None,
    ) -> None:
        self._service = service
        self._steps = steps
        # PostgreSQL: 30/01/40 go the hot path (host.bank.fastpath), on the event loop.
        self._fast = fast
        self._pin_hashes = PinHashCache(service.pins)
        self._executor = executor
        self.max_frame = max_frame
        self._tap = tap
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.link_config = link_config
        self._metrics = metrics
        self.keys = KeyStore(sessions, self.link_config)
        self.reversals = ReversalService(sessions, self._clock)
        self._sessions = sessions
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tls = _tls_context(link_config)
        self.limits = limits or LinkLimits()
        self.guard = ConnectionGuard.for_limits(self.limits, self._count_close, soft_nofile)
        # wait_for_guard's callers: each predicate is checked after every admission and close.
        self._guard_waiters: list[tuple[Callable[[ConnectionGuard], bool], asyncio.Future[None]]]
        self._guard_waiters = []
        # Operators' switches pushed to connected terminals (push_switches).
        self._by_terminal: dict[str, _Connection] = {}
        self._pushed: set[tuple[str, str]] = set()
        self._push_stan = 0
        self._switch_poll_seconds = switch_poll_seconds
        self._poller: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Listen on ``host``:``port``; ``reuse_port``: share it with other host processes
        (SO_REUSEPORT; ``atm host --workers``)."""
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self),
            host,
            port,
            reuse_port=reuse_port or None,
            backlog=ACCEPT_BURST,
            ssl=self._tls,
            # A client that starts no handshake is dropped instead of holding a slot 60 s.
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self._tls else None,
        )
        for listener in self._server.sockets:
            _deepen_listen_queue(listener.fileno())
        if self._tls is None:
            transport = "plaintext"
        elif self._tls.verify_mode == ssl.CERT_REQUIRED:
            transport = "TLS, client certificates required"
        else:
            transport = "TLS"
        if self._switch_poll_seconds > 0:
            self._poller = asyncio.create_task(self._poll_switches(), name="link-switches")
        log.info(
            "link server listening on %s:%d (%s; at most %d connections)",
            host,
            self.port,
            transport,
            self.guard.max_connections,
        )

    async def stop_switch_poller(self) -> None:
        """No more pushed 0800/901 (terminals then learn of a stop from their next answer)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def close(self) -> None:
        await self.stop_switch_poller()
        if self._server is not None:
            self._server.close()
            connections = list(self._connections)
            for conn in connections:
                assert conn.transport is not None
                conn.transport.close()
            # Requests under way are finished (their answers are lost with the connection).
            await asyncio.gather(*(c.finished for c in connections))
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _work(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- connections (each a _Connection protocol) -------------------------------------------
    def opened(self, conn: _Connection) -> None:
        """``conn`` was admitted by the guard."""
        self._connections.add(conn)
        self._notify_guard()

    def closed(self, conn: _Connection) -> None:
        """``conn`` has closed and its handlers are done."""
        self._connections.discard(conn)
        if conn.terminal_id and self._by_terminal.get(conn.terminal_id) is conn:
            del self._by_terminal[conn.terminal_id]
        self.guard.closed(conn.authenticated)
        self._notify_guard()

    async def wait_for_guard(self, predicate: Callable[[ConnectionGuard], bool]) -> None:
        """Return once ``predicate(self.guard)`` holds (checked now and after every admission,
        first authentication and close): for operators' tools and tests that must not poll."""
        if predicate(self.guard):
            return
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._guard_waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            self._guard_waiters.remove(waiter)

    def _notify_guard(self) -> None:
        for predicate, future in self._guard_waiters:
            if future.done():
                continue
            try:
                if predicate(self.guard):
                    future.set_result(None)
            except Exception as exc:  # the waiter's own fault: it is raised in the waiter
                future.set_exception(exc)

    # -- operators' switches pushed to terminals (docs/protocol.md section 7.5) -------------
    async def push_switches(self) -> int:
        """Tell every connected terminal that an operator stopped (out of service, or the
        bank in maintenance) with a host-initiated 0800/901, once per connection; returns
        how many were told. Run every ``switch_poll_seconds``; an ops route that has just
        changed a switch may call it at once."""
        connected = {t: c for t, c in self._by_terminal.items() if not c.closed}
        stopped = await self._work(stopped_terminals, self._sessions, sorted(connected))
        told = 0
        for terminal, conn in connected.items():
            reason = stopped.get(terminal)
            if reason is None:
                conn.told_stopped = None
                continue
            keys = self.keys.cached(terminal)
            if conn.told_stopped == reason or keys is None:
                continue
            self._push_stan = self._push_stan % 999_999 + 1
            stan = f"{self._push_stan:06d}"
            message: Message = {
                "t": Mti.NETWORK_REQUEST,
                "7": format_transmission_time(self._clock()),
                "11": stan,
                "41": terminal,
                "48": reason,
                "70": NetworkCode.OUT_OF_SERVICE,
            }
            self._pushed.add((terminal, stan))
            conn.told_stopped = reason
            log.info("telling terminal %s to go out of service (%s)", terminal, reason)
            await self._send(conn, message, keys.scheme, keys.tak)
            told += 1
        return told

    async def _poll_switches(self) -> None:
        while True:
            await asyncio.sleep(self._switch_poll_seconds)
            try:
                await self.push_switches()
            except Exception:
                # The database may be away for a while; the next round tries again.
                log.exception("could not read the operators' switches")

    def _count_close(self, reason: CloseReason) -> None:
        if self._metrics is not None:
            self._metrics.link_connections_closed.labels(reason=reason.value).inc()

    def _authenticated(self, conn: _Connection, terminal: str) -> bool:
        """Marks ``conn`` as ``terminal``'s; True the first time (the guard then counts it as
        authenticated and its waiters must hear of it: ``_notify_guard``). Not a coroutine:
        a connection already counted needs no await per message."""
        conn.terminal_id = terminal
        self._by_terminal[terminal] = conn
        if conn.authenticated:
            return False
        conn.authenticated = True
        self.guard.authenticated(_peer_host(conn.peer))
        return True

    def _reject(self, conn: _Connection, mti: str, terminal: str, reason: str) -> None:
        """A message that failed authentication: one security line, and the connection goes."""
        security_log.warning(
            "security: rejected %s from %s terminal %s: %s; connection closed",
            mti or "????",
            conn.peer,
            terminal or "?",
            reason,
        )
        conn.abandon()

    async def handle_frame(self, frame: bytes, conn: _Connection) -> None:
        started = time.perf_counter()
        try:
            request = decode(frame)
        except MessageError as exc:
            await self._format_error(conn, exc)
            return
        auth = await self._authenticate(frame, request, conn)
        if auth is None:
            return
        if self._tap:
            self._tap("recv", request)
        try:
            response = await self._respond(request, auth)
        except Exception as exc:
            # A database or programming fault: the terminal hears 96 (a reversal advice is
            # then repeated later) and the server keeps serving.
            log.exception("failure answering %s from %s", request["t"], auth.terminal_id)
            _hint_at_pooler(exc)
            response = None
            if is_request(request["t"]):
                response = {k: v for k, v in request.items() if k in _ECHOED}
                response["t"] = response_mti(request["t"])
                response["39"] = ResponseCode.MALFUNCTION
        if response is not None:
            if self._metrics is not None:
                self._metrics.observe(
                    mti_class(request["t"]), response.get("39", ""), time.perf_counter() - started
                )
            await self._send(conn, response, auth.scheme, auth.mac_key)

    async def _format_error(self, conn: _Connection, exc: MessageError) -> None:
        """DESIGN 3: a format-error response where the header allows one, else the connection
        closes. "Allows" here: a readable request MTI on a connection whose terminal has keys
        to MAC the answer with."""
        terminal = conn.terminal_id
        keys = self.keys.cached(terminal) if terminal else None
        readable = exc.mti is not None and exc.mti.isdigit() and is_request(exc.mti)
        if terminal is None or keys is None or not readable:
            log.warning(
                "closing connection from %s: undecodable frame (%s; field %s)",
                conn.peer,
                exc,
                exc.field,
            )
            conn.abandon()
            return
        assert exc.mti is not None
        log.warning("format error in %s from %s: %s", exc.mti, terminal, exc)
        response: Message = {"t": response_mti(exc.mti), "39": ResponseCode.FORMAT_ERROR}
        response["41"] = terminal
        if self._metrics is not None:
            self._metrics.observe(mti_class(exc.mti), ResponseCode.FORMAT_ERROR, 0.0)
        await self._send(conn, response, keys.scheme, keys.tak)

    async def _authenticate(
        self, frame: bytes, request: Message, conn: _Connection
    ) -> _Auth | None:
        mti, terminal = request["t"], request.get("41", "")
        if not self._certificate_matches(conn, mti, terminal):
            return None
        if conn.terminal_id is not None and terminal != conn.terminal_id:
            self._reject(conn, mti, terminal, f"connection belongs to {conn.terminal_id}")
            return None
        if uses_signon_key(request):
            try:
                scheme = KeyScheme(request.get("48", "")[:1])
            except ValueError:
                self._reject(conn, mti, terminal, "sign-on without a key scheme in DE 48")
                return None
            tmk = self.link_config.master_key(terminal)
            if tmk is None:
                self._reject(conn, mti, terminal, "no master key for this terminal")
                return None
            key = signon_mac_key(scheme, tmk)
            try:
                verify_signed(frame, request, scheme, key)
            except MacError as exc:
                self._reject(conn, mti, terminal, str(exc))
                return None
            if self._authenticated(conn, terminal):
                self._notify_guard()
            return _Auth(terminal, scheme, key, None)
        keys = self.keys.cached(terminal) or await self._work(self.keys.load, terminal)
        if keys is None:
            self._reject(conn, mti, terminal, "no working keys (not signed on)")
            return None
        try:
            verify_signed(frame, request, keys.scheme, keys.tak)
        except MacError as exc:
            fresh = await self._work(self.keys.load, terminal)
            try:
                if fresh is None or fresh == keys:
                    raise exc
                verify_signed(frame, request, fresh.scheme, fresh.tak)
            except MacError as final:
                self._reject(conn, mti, terminal, str(final))
                return None
            keys = fresh
        if self._authenticated(conn, terminal):
            self._notify_guard()
        auth = conn.auth
        if auth is None or auth.keys is not keys or auth.terminal_id != terminal:
            auth = conn.auth = _Auth(terminal, keys.scheme, keys.tak, keys)
        return auth

    def _certificate_matches(self, conn: _Connection, mti: str, terminal: str) -> bool:
        """Mutual TLS: the client certificate's terminal ID must be DE 41 of every message."""
        if self._tls is None or self._tls.verify_mode != ssl.CERT_REQUIRED:
            return True
        if conn.certificate_terminal == terminal:
            return True
        self._reject(
            conn, mti, terminal, f"client certificate is for {conn.certificate_terminal or '?'}"
        )
        return False

    async def _send(
        self, conn: _Connection, response: Message, scheme: KeyScheme, key: bytes
    ) -> None:
        payload = encode_signed(response, scheme, key)
        if self._tap:
            self._tap("send", decode(payload))  # as sent, MAC included
        transport = conn.transport
        if conn.closed or transport is None or transport.is_closing():
            return
        try:
            # One write per frame, so frames never interleave (no lock needed); the transport
            # sends at once what the socket takes. Only a terminal that reads slowly lets the
            # buffer grow past _DRAIN_ABOVE (the transport pauses writing): then this handler
            # waits for the socket.
            transport.write(encode_frame(payload))
            if conn.paused:
                await conn.drain()
        except (ConnectionError, OSError) as exc:
            log.info("could not send %s: %s", response["t"], exc)
        self._step("sent", response)

    def _step(self, step: str, message: Message) -> None:
        if self._steps is not None:
            self._steps(step, message)

    # -- processing -----------------------------------------------------------------------
    async def _respond(self, request: Message, auth: _Auth) -> Message | None:
        mti = request["t"]
        if not is_request(mti):
            self._unsolicited(request, auth)
            return None
        response: Message = {k: v for k, v in request.items() if k in _ECHOED}
        response["t"] = response_mti(mti)
        try:
            if mti_class(mti) == Mti.NETWORK_REQUEST:
                await self._network(request, response, auth)
                return response
            if mti_class(mti) == Mti.REVERSAL_ADVICE:
                advice = parse_advice(request)
                reversal = await self._work(self.reversals.handle, advice)
                response["39"] = reversal.response_code
                return response
            if mti not in _REQUIRED:
                response["39"] = ResponseCode.INVALID_TRANSACTION
                return response
            card_request = self._card_request(request, auth)
        except ProtocolError as exc:
            log.warning("format error in %s STAN %s: %s", mti, request.get("11"), exc)
            response["39"] = ResponseCode.FORMAT_ERROR
            return response
        self._step("received", request)
        try:
            outcome = await self._authorize(card_request)
        except Exception as exc:
            log.exception("service failure on %r", card_request)
            _hint_at_pooler(exc)
            response["39"] = ResponseCode.MALFUNCTION
            return response
        self._step("posted", request)
        return self._fill(response, outcome)

    async def _authorize(self, request: CardRequest) -> Outcome:
        fast = self._fast
        if fast is None or not fast.handles(request):
            return await self._authorize_orm(request)
        if fast.available:
            return await self._authorize_fast(fast, request)
        # The database was unreachable: the ORM path answers (91 while it still is) and
        # the hot path comes back once a request goes through.
        outcome = await self._authorize_orm(request)
        if outcome.response_code is not ResponseCode.HOST_UNAVAILABLE:
            await fast.reopen()
        return outcome

    async def _authorize_fast(self, fast: FastAuthorizer, request: CardRequest) -> Outcome:
        """The hot path: one call when no bcrypt is needed; else bcrypt ahead on the PIN
        pool and a second call with its answer. A card whose PIN hash this process verified
        before starts bcrypt with that hash and skips the first call (``PinHashCache``; the
        second answers with the current hash if it changed). An approved 0200 that a
        reversal advice overtook gets it applied (rare: a worker thread does it, as on the
        ORM path). An inquiry whose mini statement only Python formats goes the ORM way."""
        known = self._pin_hashes.hash_for(request)
        answer = PinFirst(known) if known is not None else await fast.authorize(request)
        rounds = 0
        verified: str | None = None
        while isinstance(answer, PinFirst):
            rounds += 1
            if rounds > _PIN_ROUNDS:
                settled = await self._work(self._authorize_and_settle, request, False)
                assert isinstance(settled, Outcome)
                return settled
            pin = await self._service.verify_pin_ahead(request, self._executor, answer.pin_hash)
            verified = answer.pin_hash
            answer = await fast.authorize(dataclasses.replace(request, pin_check=pin))
        if isinstance(answer, OrmPath):
            return await self._authorize_orm(request)
        self._pin_hashes.settled(request, verified, answer.outcome.response_code)
        if answer.reversal_waiting:
            await self._work(
                self.reversals.apply_waiting,
                request.terminal_id,
                request.stan,
                request.transmission_time,
            )
        return answer.outcome

    async def _authorize_orm(self, request: CardRequest) -> Outcome:
        """One trip to a database worker when no bcrypt is needed (an open card session);
        else bcrypt first, on the PIN pool, with no transaction open, then the transaction
        (host.bank.services). A PIN change hashes its new PIN ahead, so it goes that way."""
        pin_hash: str | None = None
        if request.transaction is not TransactionType.PIN_CHANGE:
            first = await self._work(self._authorize_and_settle, request, True)
            if isinstance(first, Outcome):
                return first
            pin_hash = first.pin_hash
        pin = await self._service.verify_pin_ahead(request, self._executor, pin_hash)
        settled = await self._work(
            self._authorize_and_settle, dataclasses.replace(request, pin_check=pin), False
        )
        assert isinstance(settled, Outcome)
        return settled

    def _authorize_and_settle(self, request: CardRequest, unless_pin: bool) -> Outcome | PinFirst:
        """On a database worker: authorize, then (an approved 0200) apply a reversal that
        overtook it (host.link.reversals), in the same trip."""
        if unless_pin:
            outcome = self._service.authorize_unless_pin(request)
            if isinstance(outcome, PinFirst):
                return outcome
        else:
            outcome = self._service.authorize(request)
        if outcome.response_code.approved and request.mti_class == Mti.FINANCIAL_REQUEST:
            self.reversals.apply_waiting(
                request.terminal_id, request.stan, request.transmission_time
            )
        return outcome

    def _unsolicited(self, request: Message, auth: _Auth) -> None:
        """A response MTI (0110, 0210, 0430, 0810, ...) from a terminal: nothing waits for
        an answer and answering a response could start a loop between two confused peers,
        so it gets none (docs/protocol.md section 3); one line and a metric make it visible."""
        mti = request["t"]
        pushed = (auth.terminal_id, request.get("11", ""))
        if mti == Mti.NETWORK_RESPONSE and pushed in self._pushed:
            self._pushed.discard(pushed)
            log.info("terminal %s acknowledged out-of-service (%s)", *pushed)
            return
        log.warning(
            "terminal %s sent a response MTI %s (STAN %s): a terminal sends only requests "
            "and advices; not answered",
            auth.terminal_id,
            mti,
            request.get("11", "?"),
        )
        if self._metrics is not None:
            self._metrics.unsolicited_messages.labels(mti=mti).inc()

    async def _network(self, request: Message, response: Message, auth: _Auth) -> None:
        code = request.get("70", "")
        terminal = auth.terminal_id
        log.info("terminal %s network code %s", terminal, code)
        if code in (NetworkCode.SIGN_ON, NetworkCode.KEY_CHANGE, NetworkCode.ECHO):
            # The operators' switches (host.bank.controls): maintenance 90, out of service
            # 89, both until lifted; a forced key change 88 on the next echo.
            switches = await self._work(note_network, self._sessions, terminal, code, self._clock())
            refusal = switches.refusal()
            if refusal is None and code == NetworkCode.ECHO and switches.key_change_due:
                refusal = ResponseCode.KEY_CHANGE_REQUIRED
            if refusal is not None:
                log.info("terminal %s network code %s answered %s", terminal, code, refusal)
                response["39"] = refusal
                return
        if code in (NetworkCode.SIGN_ON, NetworkCode.KEY_CHANGE):
            wanted = self.link_config.scheme(terminal)
            if auth.scheme is not wanted:
                log.warning(
                    "terminal %s asked for key scheme %s, configured %s",
                    terminal,
                    auth.scheme,
                    wanted,
                )
                response["39"] = ResponseCode.INVALID_TRANSACTION
                return
            keys = await self._work(self.keys.issue, terminal, wanted, self._clock())
            tmk = self.link_config.master_key(terminal)
            if keys is None or tmk is None:
                response["39"] = ResponseCode.NOT_PERMITTED
                return
            await self._work(note_keys, self._sessions, terminal, keys, self._clock())
            response["39"] = ResponseCode.APPROVED
            response["48"] = encode_key_delivery(self.link_config.key_block(terminal), keys, tmk)
        elif code == NetworkCode.SIGN_OFF:
            await self._work(self.keys.revoke, terminal)
            response["39"] = ResponseCode.APPROVED
        elif code == NetworkCode.ECHO:
            response["39"] = ResponseCode.APPROVED
        else:
            response["39"] = ResponseCode.INVALID_TRANSACTION

    @staticmethod
    def _card_request(request: Message, auth: _Auth) -> CardRequest:
        mti = request["t"]
        missing = [f for f in _REQUIRED[mti] if not request.get(f)]
        if missing:
            raise MessageError(f"missing field(s) {', '.join(missing)}", field=missing[0])
        transaction, from_account, to_account = parse_processing_code(request["3"])
        if mti == Mti.AUTHORIZATION_REQUEST and transaction is not TransactionType.BALANCE_INQUIRY:
            raise MessageError("0100 carries only balance inquiries", field="3")
        assert auth.keys is not None
        pin_format = auth.keys.scheme.pin_format
        pin_block = _pin_block(request.get("52"), pin_format, "52")
        new_pin_block = (
            _pin_block(request.get("48"), pin_format, "48")
            if transaction is TransactionType.PIN_CHANGE
            else None
        )
        track2 = request.get("35", "")
        expiry = track2.replace("D", "=").partition("=")[2][:4] or None
        return CardRequest(
            mti_class=mti,
            terminal_id=request["41"],
            stan=request["11"],
            transmission_time=request["7"],
            pan=request["2"],
            transaction=transaction,
            from_account=from_account,
            to_account=to_account,
            amount_cents=parse_amount(request["4"]) if "4" in request else 0,
            pin_block=pin_block,
            expiry=expiry,
            currency=request.get("49", "840"),
            to_account_number=request.get("103"),
            new_pin_block=new_pin_block,
            pin_key=auth.keys.tpk,
            pin_format=pin_format,
        )

    @staticmethod
    def _fill(response: Message, outcome: Outcome) -> Message:
        response["39"] = outcome.response_code
        response["37"] = outcome.rrn
        if outcome.auth_code:
            response["38"] = outcome.auth_code
        if outcome.balances:
            response["54"] = format_balances(list(outcome.balances))
        if outcome.mini_statement:
            response["62"] = outcome.mini_statement
        return response


def _peer_host(peer: Any) -> str:
    """The address part of a peer name (IPv4/IPv6 tuple), for the known-peer check."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


class _AuditedSSLObject(ssl.SSLObject):
    """A failed TLS handshake (wrong CA, expired or missing client certificate, a plaintext
    client) is one security log line; asyncio then closes the connection and the server goes
    on serving."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            security_log.warning(
                "security: TLS handshake refused: %s; connection closed",
                getattr(exc, "verify_message", None) or exc.reason or exc,
            )
            raise


def _tls_context(link_config: LinkConfig) -> ssl.SSLContext | None:
    if link_config.tls is None:
        return None
    context = link_config.tls.context()
    context.sslobject_class = _AuditedSSLObject
    return context


def _pin_block(value: str | None, pin_format: int, field: str) -> bytes | None:
    if not value:
        return None
    if len(value) != _PIN_BLOCK_HEX[pin_format]:
        raise MessageError(
            f"field {field}: a format {pin_format} PIN block is "
            f"{_PIN_BLOCK_HEX[pin_format]} hex digits",
            field=field,
        )
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise MessageError(f"field {field} is not hexadecimal", field=field) from exc


def _deepen_listen_queue(fd: int) -> None:
    """asyncio passes one number both to ``listen()`` and as how many connections it accepts
    in one go; the host wants a short burst (``ACCEPT_BURST``, see host.link.guard) and a
    deep kernel queue. ``listen()`` again, on a duplicate of the listening descriptor (the
    same socket), deepens the queue and leaves asyncio's burst as it is."""
    with socket.socket(fileno=os.dup(fd)) as same:
        same.listen(LISTEN_QUEUE)
