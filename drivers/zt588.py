"""Encrypting PIN pad driver for a ZT588-style EPP.

The pad holds the keys; this driver only ever sees key names in clear mode (menus, amounts),
``*`` placeholders during PIN entry, and the encrypted PIN block at the end.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from drivers.codecs import zt588
from drivers.codecs.zt588 import Key, PadFrame, PadReply, Zt588Decoder
from drivers.errors import (
    CancelledByCustomer,
    DeviceProtocolError,
    DeviceTimeout,
    PinPadFault,
)
from drivers.framed import FramedDevice
from drivers.interfaces import PinBlock, PinPad
from drivers.transport import Channel

__all__ = ["Zt588PinPad"]

log = logging.getLogger(__name__)

_FAULT_CODES = {
    "E1": "timeout",
    "E2": "no_key",
    "E3": "kcv",
    "E4": "no_pin",
    "E5": "format",
    "E7": "key_length",
    "E8": "unwrap",
}


class Zt588PinPad(FramedDevice[PadFrame], PinPad):
    DEVICE = "PIN pad"
    PROTOCOL = "ZT588"
    FRAME = PadFrame

    def __init__(
        self,
        connect: Callable[[], Awaitable[Channel]],
        *,
        ack_timeout: float = 0.5,
        reply_timeout: float = 3.0,
        retries: int = 2,
        grace: float = 2.0,
        pin_format: int = 0,
    ) -> None:
        """``grace``: how long past the pad's own entry timer the driver waits before it
        declares the pad silent. ``pin_format``: the ISO 9564 format asked for, 0 (a TDES
        terminal) or 4 (an AES terminal); it must fit the pad's master key."""
        if pin_format not in (0, 4):
            raise ValueError("the PIN pad makes format 0 or format 4 PIN blocks")
        super().__init__(
            connect, ack_timeout=ack_timeout, reply_timeout=reply_timeout, retries=retries
        )
        self.pin_format = pin_format
        self._grace = grace

    def _new_decoder(self) -> Zt588Decoder:
        return Zt588Decoder(keys=True)

    async def _initialise(self) -> None:
        await self._command("0")
        await self._command("5", "0")

    async def _command(self, command: str, data: str = "", *, check: bool = True) -> PadReply:
        frame = await self.link.exchange(
            zt588.encode_frame((command + data).encode("ascii")),
            reply_timeout=self._reply_timeout,
            is_reply=lambda f: f.text[:1] == command.encode(),
            resend_on_timeout=command != "7",
        )
        try:
            reply = PadReply.parse(frame.text)
        except ValueError as exc:
            raise DeviceProtocolError(f"PIN pad: {exc}") from exc
        if check and not reply.ok:
            code = _FAULT_CODES.get(reply.status, "fault")
            raise PinPadFault(f"PIN pad: {reply.status_text} ({reply.status})", code=code)
        return reply

    async def identify(self) -> str:
        """The pad's answer to the status command (model text); also a liveness check."""
        reply = await self._command("0")
        return reply.data.decode("ascii", errors="replace")

    async def load_working_key(self, encrypted_key: bytes, check_value: str) -> None:
        if len(encrypted_key) not in (16, 24):
            raise PinPadFault("working key must be 16 or 24 bytes", code="key_length")
        await self._command(
            "3", zt588.TPK_SLOT + zt588.TMK_SLOT + encrypted_key.hex().upper() + check_value.upper()
        )

    async def _next_key(self, timeout: float) -> str:
        event = await self.link.wait_side_event(timeout)
        if not isinstance(event, Key):
            raise DeviceProtocolError(f"PIN pad: unexpected event {event!r}")
        return event.name

    async def read_key(self, timeout: float) -> str:
        try:
            await self._command("5", "1")  # open the keypad for one key
            key = await self._next_key(timeout)
        except DeviceTimeout:
            await self._command("5", "0")
            raise DeviceTimeout(f"no key pressed within {timeout:g}s") from None
        except asyncio.CancelledError:
            # Never leave the keypad open: the next digit pressed could be a PIN digit.
            self._close_keypad_soon()
            raise
        if key == "TIMEOUT":
            raise DeviceTimeout("no key pressed (the PIN pad's entry timer ran out)")
        if key == "*":
            raise DeviceProtocolError("PIN pad sent a PIN placeholder outside PIN entry")
        return key

    async def read_pin(
        self,
        pan: str,
        timeout: float,
        *,
        min_length: int = 4,
        max_length: int = 6,
        on_key: Callable[[int], None] | None = None,
    ) -> PinBlock:
        if not pan.isdigit() or not 13 <= len(pan) <= 19:
            raise ValueError("PAN must be 13 to 19 digits")
        self.link.side_events.clear()  # keys left from clear mode are not PIN digits
        seconds = min(999, max(1, math.ceil(timeout)))
        pan_field = pan[-13:-1] if self.pin_format == 0 else pan
        await self._command(
            "6",
            f"{zt588.TPK_SLOT}{self.pin_format}{min_length:02d}{max_length:02d}{seconds:03d}"
            f"{pan_field}",
        )
        entered = 0
        try:
            while True:
                key = await self._next_key(seconds + self._grace)
                if key == "*":
                    entered += 1
                elif key == "CLEAR":
                    entered = 0
                elif key == "ENTER":
                    break
                elif key == "CANCEL":
                    raise CancelledByCustomer("PIN entry cancelled")
                elif key == "TIMEOUT":
                    raise DeviceTimeout(f"no PIN entered within {timeout:g}s")
                else:
                    log.info("PIN pad: ignored %s during PIN entry", key)
                    continue
                if on_key:
                    on_key(entered)
        except DeviceTimeout:
            await self._abort()
            raise
        except asyncio.CancelledError:
            self._close_keypad_soon()
            raise
        reply = await self._command("7")
        text = reply.data.decode("ascii", errors="replace")
        try:
            fmt, block = int(text[:1]), bytes.fromhex(text[1:])
        except ValueError as exc:
            raise DeviceProtocolError("PIN pad: malformed PIN block reply") from exc
        if fmt != self.pin_format or len(block) != (8 if fmt == 0 else 16):
            raise DeviceProtocolError(
                f"PIN pad: format {fmt} PIN block of {len(block)} bytes "
                f"(format {self.pin_format} asked for)"
            )
        return PinBlock(block, fmt)

    async def same_pin(self, first: PinBlock, second: PinBlock, pan: str) -> bool:
        if first.format != 4 or second.format != 4:
            return await super().same_pin(first, second, pan)
        reply = await self._command(
            "8",
            f"{len(pan):02d}{pan}{first.ciphertext.hex().upper()}{second.ciphertext.hex().upper()}",
        )
        if reply.data not in (b"0", b"1"):
            raise DeviceProtocolError("PIN pad: malformed compare reply")
        return reply.data == b"1"

    def _close_keypad_soon(self) -> None:
        """Queue "keypad closed" behind whatever exchange is running (used when the caller
        is cancelled: the pad must not be left listening)."""
        if self._link is not None:
            self._link.start_exchange(
                zt588.encode_frame(b"50"),
                reply_timeout=self._reply_timeout,
                is_reply=lambda f: f.text[:1] == b"5",
                resend_on_timeout=True,
            )

    async def _abort(self) -> None:
        try:
            await asyncio.shield(self._command("5", "0"))
        except (DeviceTimeout, DeviceProtocolError):
            log.info("PIN pad did not confirm the end of entry")
