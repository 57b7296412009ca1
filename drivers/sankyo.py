"""Motorised card reader driver for a Sankyo ICT3K5-style reader.

``accept_card`` enables entry and polls the status until the reader has drawn a card in;
``eject`` moves the card to the gate and polls until the customer has taken it; ``capture``
pulls it into the capture bin. Negative replies become ``CardReaderFault`` with our code
(``jam``, ``read_error``, ``bin_full``, ...) and the reader's own code in the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from drivers.codecs import sankyo
from drivers.codecs.sankyo import SankyoCommand, SankyoDecoder, SankyoFrame, SankyoReply
from drivers.errors import CardReaderFault
from drivers.framed import FramedDevice
from drivers.interfaces import CardData, CardReader
from drivers.transport import Channel

__all__ = ["SankyoCardReader", "fault_code"]


def fault_code(error: str) -> str:
    if error in ("10", "17", "11"):
        return "jam"
    if error.startswith("2") or error in ("13", "14"):
        return "read_error"
    if error == "50":
        return "bin_full"
    if error == "B0":
        return "not_initialised"
    return "fault"


class SankyoCardReader(FramedDevice[SankyoFrame], CardReader):
    DEVICE = "card reader"
    PROTOCOL = "Sankyo ICT3K5"
    FRAME = SankyoFrame

    def __init__(
        self,
        connect: Callable[[], Awaitable[Channel]],
        *,
        ack_timeout: float = 0.5,
        reply_timeout: float = 3.0,
        poll_interval: float = 0.1,
        retries: int = 2,
    ) -> None:
        super().__init__(
            connect,
            ack_timeout=ack_timeout,
            reply_timeout=reply_timeout,
            retries=retries,
            poll_interval=poll_interval,
        )

    def _new_decoder(self) -> SankyoDecoder:
        return SankyoDecoder()

    async def _initialise(self) -> None:
        # Initialise, keeping any card where it is; then refuse cards until asked.
        await self._command(sankyo.INITIALISE, b"2")
        await self._command(sankyo.ENTRY, b"1")

    async def _command(
        self, cmd: bytes, param: bytes, *, resend: bool = True, check: bool = True
    ) -> SankyoReply:
        def matches(frame: SankyoFrame) -> bool:
            return frame.text[1:3] == cmd + param and frame.text[:1] in (b"P", b"N")

        frame = await self.link.exchange(
            SankyoCommand(cmd, param).encode(),
            reply_timeout=self._reply_timeout,
            is_reply=matches,
            resend_on_timeout=resend,
        )
        reply = self._decoded("", SankyoReply.parse, frame.text)
        if check and not reply.positive:
            raise CardReaderFault(
                f"card reader: {reply.error_text} (error {reply.code})",
                code=fault_code(reply.code),
            )
        return reply

    async def position(self) -> str:
        """``00`` no card, ``01`` card at the gate, ``02`` card inside."""
        return (await self._command(sankyo.STATUS, b"0")).code

    async def card_inside(self) -> bool:
        return await self.position() != sankyo.NO_CARD

    async def accept_card(self) -> None:
        try:
            await self._command(sankyo.ENTRY, b"0")
            # The reader tells nobody when a card arrives: polling is the protocol.
            while await self.position() != sankyo.CARD_INSIDE:  # noqa: ASYNC110
                await asyncio.sleep(self._poll)
        except asyncio.CancelledError:
            # Stop taking cards in when nobody waits for one any more.
            if self._link is not None:
                self._link.start_exchange(
                    SankyoCommand(sankyo.ENTRY, b"1").encode(),
                    reply_timeout=self._reply_timeout,
                    is_reply=lambda f: f.text[1:3] == sankyo.ENTRY + b"1",
                    resend_on_timeout=True,
                )
            raise
        await self._command(sankyo.ENTRY, b"1")

    async def read_card(self) -> CardData:
        reply = await self._command(sankyo.READ_TRACK, b"2")
        try:
            return CardData(reply.data.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CardReaderFault(f"track 2 unreadable: {exc}", code="read_error") from exc

    async def eject(self, timeout: float) -> bool:
        await self._command(sankyo.EJECT, b"0", resend=False)
        return await self._poll_until(self._card_taken, timeout)

    async def _card_taken(self) -> bool:
        return await self.position() == sankyo.NO_CARD

    async def capture(self) -> None:
        await self._command(sankyo.EJECT, b"1", resend=False)
