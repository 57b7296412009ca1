"""The request/answer discipline shared by the framed serial devices (LCDM-2000, Sankyo,
ZT588): send a frame, wait for ACK (NAK: send again), wait for the reply frame (bad
checksum: NAK it and wait for the repeat), ACK the reply. A protocol without ACK/NAK bytes
(JCM ID003: every frame is answered by a frame) uses ``handshake=False``: send the frame and
wait for the answer; silence, a garbled answer or one that ``is_reply`` refuses (ID003's
COMMUNICATION ERROR) is met by sending the frame again, with a fresh decoder.

Every wait is bounded: a device that stays quiet gives ``DeviceTimeout``, one that answers
with bytes foreign to the protocol gives ``DeviceProtocolError``. An exchange runs to its end
even when the caller is cancelled (it is shielded and serialised by a lock), so a cancelled
activity never leaves half an answer on the line for the next command.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from drivers.codecs.events import ACK, NAK, Ack, BadFrame, Junk, Nak
from drivers.deadline import ListeningDeadline
from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.transport import Channel

__all__ = ["Decoder", "FaultTable", "FramedDevice", "FramedLink", "fault_of"]

log = logging.getLogger(__name__)

F = TypeVar("F")
T = TypeVar("T")
P = ParamSpec("P")

#: A device's error or status byte -> (our fault code, the words for it).
FaultTable = Mapping[int, tuple[str, str]]


def fault_of(table: FaultTable, error: int) -> tuple[str, str]:
    """(our fault code, words) for ``error``; a byte the table does not know is a fault
    named by its value."""
    return table.get(error, ("fault", f"error {error:02X}"))


class Decoder(Protocol):
    def feed(self, data: bytes) -> list[Any]: ...


class FramedLink(Generic[F]):
    def __init__(
        self,
        channel: Channel,
        decoder: Decoder,
        frame_type: type[F],
        *,
        name: str,
        protocol: str,
        ack_timeout: float = 0.5,
        retries: int = 2,
        handshake: bool = True,
        new_decoder: Callable[[], Decoder] | None = None,
        refused: str = "refused",
    ) -> None:
        self.channel = channel
        self._decoder = decoder
        self.handshake = handshake
        self._new_decoder = new_decoder
        self._refused = refused  # what an answer ``is_reply`` refuses is called
        self._frame_type = frame_type
        self.name = name
        self.protocol = protocol
        self.ack_timeout = ack_timeout
        self.retries = retries
        self._events: deque[Any] = deque()
        self._lock = asyncio.Lock()
        self._junk = bytearray()
        # Events that are neither ACK/NAK nor frames (PIN pad key bytes) wait here.
        self.side_events: deque[Any] = deque()

    async def exchange(
        self,
        frame: bytes,
        *,
        reply_timeout: float,
        is_reply: Callable[[F], bool],
        resend_on_timeout: bool,
    ) -> F:
        """Send ``frame`` and return the matching reply. ``resend_on_timeout`` only for
        commands that are harmless to repeat (status), never for a dispense."""
        task = self.start_exchange(
            frame,
            reply_timeout=reply_timeout,
            is_reply=is_reply,
            resend_on_timeout=resend_on_timeout,
        )
        return await asyncio.shield(task)

    def start_exchange(
        self,
        frame: bytes,
        *,
        reply_timeout: float,
        is_reply: Callable[[F], bool],
        resend_on_timeout: bool,
    ) -> asyncio.Task[F]:
        """Queue an exchange now (in call order, behind the lock) and return its task; it
        runs to its end whatever happens to the caller."""
        task = asyncio.ensure_future(
            self._locked(frame, reply_timeout, is_reply, resend_on_timeout)
        )
        # If nobody waits for it any more, its outcome is still read here, so that it is
        # never reported as an unretrieved task exception.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _locked(
        self, frame: bytes, reply_timeout: float, is_reply: Callable[[F], bool], resend: bool
    ) -> F:
        async with self._lock:
            self._junk.clear()
            if not self.handshake:
                return await self._answered(frame, reply_timeout, is_reply)
            for attempt in range(self.retries + 1):
                last = attempt == self.retries
                await self.channel.write(frame)
                try:
                    answer = await self._next((Ack, Nak), self.ack_timeout, "ACK")
                except DeviceTimeout:
                    if resend and not last:
                        continue
                    raise
                if isinstance(answer, Nak):
                    log.info("%s NAKed a command (attempt %d)", self.name, attempt + 1)
                    if last:
                        raise DeviceProtocolError(
                            f"{self.name} on {self.channel.description}: refused the command "
                            f"{self.retries + 1} times (NAK)"
                        )
                    continue
                try:
                    return await self._reply(reply_timeout, is_reply)
                except DeviceTimeout:
                    if resend and not last:
                        continue
                    raise
            raise AssertionError("unreachable")

    async def _answered(self, frame: bytes, timeout: float, is_reply: Callable[[F], bool]) -> F:
        """Without ACK/NAK: the answer is a frame; resend on silence, garble or refusal."""
        problem = ""
        for _ in range(self.retries + 1):
            await self.channel.write(frame)
            try:
                answer = await self._next((self._frame_type, BadFrame), timeout, "answer")
            except DeviceTimeout:
                problem = "no answer"
            else:
                if not isinstance(answer, BadFrame) and is_reply(answer):
                    reply: F = answer
                    return reply
                problem = "garbled answer" if isinstance(answer, BadFrame) else self._refused
            log.info("%s: %s, sending again", self.name, problem)
            if self._new_decoder is not None:
                self._decoder = self._new_decoder()  # drop half a frame left by a garble
            self._events.clear()
        where = f"{self.name} on {self.channel.description}"
        if problem == "no answer":
            raise DeviceTimeout(f"{where}: no answer within {timeout:g}s")
        raise DeviceProtocolError(f"{where}: {problem}, {self.retries + 1} times")

    async def send(self, frame: bytes) -> None:
        """Send a frame that gets no answer (ID003's ACK of a VEND VALID), in turn."""
        async with self._lock:
            await self.channel.write(frame)

    async def _reply(self, timeout: float, is_reply: Callable[[F], bool]) -> F:
        garbled = 0
        while True:
            event = await self._next((self._frame_type, BadFrame), timeout, "reply")
            if isinstance(event, BadFrame):
                garbled += 1
                log.info("%s sent a garbled frame: %s", self.name, event.reason)
                if garbled > self.retries:
                    raise DeviceProtocolError(
                        f"{self.name} on {self.channel.description}: garbled reply "
                        f"({event.reason}), {garbled} times"
                    )
                await self.channel.write(bytes([NAK]))
                continue
            await self.channel.write(bytes([ACK]))
            if is_reply(event):
                reply: F = event
                return reply
            # Only the reply's kind: its fields can hold a whole track (a card reader's read).
            log.info("%s: ignored a stale reply (%s)", self.name, type(event).__name__)

    async def _next(self, kinds: tuple[type, ...], timeout: float, what: str) -> Any:
        # Listening time, not wall time: a stalled event loop is not a silent device.
        deadline = ListeningDeadline(timeout)
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, kinds):
                    return event
                if isinstance(event, Junk):
                    self._junk += event.data
                    log.debug("%s: %d byte(s) outside any frame", self.name, len(event.data))
                elif not isinstance(event, (Ack, Nak, BadFrame, self._frame_type)):
                    self.side_events.append(event)
            if deadline.expired:
                raise self._silence(what, timeout)
            data = await deadline.wait(self.channel.read)
            if data is not None:
                self._events.extend(self._decoder.feed(data))

    async def wait_side_event(self, timeout: float) -> Any:
        """Wait for the next unsolicited event (a key byte); ``DeviceTimeout`` after
        ``timeout``. Only while no exchange is running."""
        async with self._lock:
            if self.side_events:
                return self.side_events.popleft()
            deadline = ListeningDeadline(timeout)
            while not self.side_events:
                for event in self._drain():
                    if isinstance(event, Junk):
                        self._junk += event.data
                    elif not isinstance(event, (Ack, Nak, BadFrame, self._frame_type)):
                        self.side_events.append(event)
                if self.side_events:
                    break
                if deadline.expired:
                    raise DeviceTimeout(f"{self.name}: nothing within {timeout:g}s")
                data = await deadline.wait(self.channel.read)
                if data is not None:
                    self._events.extend(self._decoder.feed(data))
            return self.side_events.popleft()

    def _drain(self) -> list[Any]:
        out = list(self._events)
        self._events.clear()
        return out

    def _silence(self, what: str, timeout: float) -> DeviceTimeout | DeviceProtocolError:
        where = f"{self.name} on {self.channel.description}"
        if self._junk:
            shown = bytes(self._junk[:16]).hex(" ").upper()
            return DeviceProtocolError(
                f"{where}: answered bytes that are not {self.protocol} ({shown})"
            )
        return DeviceTimeout(f"{where}: no {what} within {timeout:g}s")


class FramedDevice(Generic[F]):
    """What every framed serial driver shares: connect, build its ``FramedLink``, run the
    device's start-up commands (closing again if they fail), close, and the "not open" error.

    A driver names itself (``DEVICE``, ``PROTOCOL``), says how its frames are decoded
    (``FRAME``, ``_new_decoder``) and what to send at start-up (``_initialise``). It gets
    the two things every polled device does: decode a reply's fields, the device's garbage
    becoming ``DeviceProtocolError`` (``_decoded``), and poll until something is so or a
    time runs out (``_poll_until``, ``_poll_for``: every ``poll_interval`` seconds)."""

    DEVICE: str
    PROTOCOL: str
    FRAME: type[F]
    HANDSHAKE = True  # False: no ACK/NAK bytes, a frame answers a frame (ID003)
    REFUSED = "refused"  # without the handshake: the answer that asks for the frame again

    def __init__(
        self,
        connect: Callable[[], Awaitable[Channel]],
        *,
        ack_timeout: float,
        reply_timeout: float,
        retries: int,
        poll_interval: float = 0.1,
    ) -> None:
        self._connect = connect
        self._ack_timeout = ack_timeout
        self._reply_timeout = reply_timeout
        self._retries = retries
        self._poll = poll_interval
        self._link: FramedLink[F] | None = None

    def _new_decoder(self) -> Decoder:
        raise NotImplementedError

    async def _initialise(self) -> None:
        """The device's start-up commands; they also prove it speaks ``PROTOCOL``."""

    def _decoded(self, what: str, decode: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``decode(*args)`` (a reply's fields); a reply it refuses (``ValueError``) is the
        device's garbage: ``DeviceProtocolError`` saying ``what`` did not decode."""
        try:
            return decode(*args, **kwargs)
        except ValueError as exc:
            prefix = f"{self.DEVICE}: {what}: " if what else f"{self.DEVICE}: "
            raise DeviceProtocolError(f"{prefix}{exc}") from exc

    async def _poll_until(self, done: Callable[[], Awaitable[bool]], timeout: float) -> bool:
        """Ask ``done`` now and every poll interval: True as soon as it says so, False once
        ``timeout`` seconds have passed without."""

        async def check() -> bool | None:
            return True if await done() else None

        return await self._poll_for(check, timeout) is not None

    async def _poll_for(self, check: Callable[[], Awaitable[T | None]], timeout: float) -> T | None:
        """Ask ``check`` now and every poll interval: its first answer that is not None, or
        None once ``timeout`` seconds have passed without (it is asked once at least)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await check()
            if found is not None:
                return found
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(min(self._poll, max(0.0, deadline - loop.time())))

    async def open(self) -> None:
        channel = await self._connect()
        self._link = FramedLink(
            channel,
            self._new_decoder(),
            self.FRAME,
            name=self.DEVICE,
            protocol=self.PROTOCOL,
            ack_timeout=self._ack_timeout,
            retries=self._retries,
            handshake=self.HANDSHAKE,
            new_decoder=self._new_decoder,
            refused=self.REFUSED,
        )
        try:
            await self._initialise()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._link is not None:
            link, self._link = self._link, None
            await link.channel.close()

    @property
    def link(self) -> FramedLink[F]:
        if self._link is None:
            raise DeviceUnavailable(f"{self.DEVICE} is not open")
        return self._link
