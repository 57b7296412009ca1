"""Receipt printer driver for ESC/POS printers, over any ``Channel`` (serial, TCP or USB bulk).

Status comes from the real-time ``DLE EOT n`` requests, each answered by one byte with fixed
bits; a byte without them means the device is not an ESC/POS printer. ESC/POS has no ACK/NAK,
so a lost status byte is asked for again (the request is harmless to repeat).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from drivers.codecs import escpos
from drivers.codecs.escpos import StatusByte
from drivers.deadline import ListeningDeadline
from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable, PrinterFault
from drivers.interfaces import PaperState, PrinterStatus, ReceiptPrinter
from drivers.transport import Channel

__all__ = ["EscPosPrinter"]


class EscPosPrinter(ReceiptPrinter):
    def __init__(
        self,
        connect: Callable[[], Awaitable[Channel]],
        *,
        status_timeout: float = 1.0,
        retries: int = 2,
        feed_lines: int = 4,
    ) -> None:
        self._connect = connect
        self._status_timeout = status_timeout
        self._retries = retries
        self._feed_lines = feed_lines
        self._channel: Channel | None = None
        self._pending = bytearray()
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._channel = await self._connect()
        try:
            await self._query(escpos.PRINTER)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    @property
    def channel(self) -> Channel:
        if self._channel is None:
            raise DeviceUnavailable("printer is not open")
        return self._channel

    async def _query(self, n: int) -> StatusByte:
        async with self._lock:
            return await asyncio.shield(self._query_locked(n))

    async def _query_locked(self, n: int) -> StatusByte:
        channel = self.channel
        self._pending.clear()
        for attempt in range(self._retries + 1):
            await channel.write(escpos.status_request(n))
            # Listening time, not wall time: a stalled event loop is not a silent printer.
            deadline = ListeningDeadline(self._status_timeout)
            while not self._pending and not deadline.expired:
                self._pending += await deadline.wait(channel.read) or b""
            if not self._pending:
                if attempt == self._retries:
                    raise DeviceTimeout(
                        f"printer on {channel.description}: no status byte within "
                        f"{self._status_timeout:g}s"
                    )
                continue
            value = self._pending.pop(0)
            extra = bytes(self._pending)
            self._pending.clear()
            try:
                if extra:
                    raise ValueError(f"{len(extra)} unexpected byte(s) after it")
                return StatusByte(n, value)
            except ValueError as exc:
                # A byte damaged on the line is asked for again; a device that keeps
                # answering like this is not an ESC/POS printer.
                if attempt == self._retries:
                    raise DeviceProtocolError(
                        f"printer on {channel.description}: answered "
                        f"{bytes([value]).hex().upper()}{extra.hex(' ').upper()} to DLE EOT "
                        f"{n}, which is not ESC/POS: {exc}"
                    ) from exc
        raise AssertionError("unreachable")

    async def status(self) -> PrinterStatus:
        offline = await self._query(escpos.OFFLINE_CAUSE)
        paper = await self._query(escpos.ROLL_PAPER)
        state = PaperState.OK
        if paper.paper_out or offline.paper_out:
            state = PaperState.OUT
        elif paper.near_end:
            state = PaperState.NEAR_END
        return PrinterStatus(state, cover_open=offline.cover_open)

    async def print_receipt(self, lines: list[str], *, qr: str = "") -> None:
        before = await self.status()
        if not before.can_print:
            raise PrinterFault(_why(before), code=_code(before))
        job = bytearray(escpos.INIT)
        for line in lines:
            job += escpos.encode_line(line)
        if qr:
            job += escpos.qr_code(qr.encode("utf-8"))
        job += escpos.feed(self._feed_lines) + escpos.CUT_PARTIAL
        async with self._lock:
            await self.channel.write(bytes(job))
        after = await self.status()
        if not after.can_print:
            raise PrinterFault(f"receipt incomplete: {_why(after)}", code=_code(after))


def _why(status: PrinterStatus) -> str:
    return "cover open" if status.cover_open else f"paper {status.paper.value}"


def _code(status: PrinterStatus) -> str:
    return "cover_open" if status.cover_open else "paper_out"
