"""Bill acceptor driver for a JCM ID003 validator with a bunch-note escrow (our variant).

ID003 has no ACK/NAK byte: the host sends a frame and the acceptor answers with a frame
(``drivers.framed.FramedDevice`` with ``HANDSHAKE = False``: the link, its lock and its
bounded waits are the ones the other serial drivers use).
The driver polls with STATUS REQUEST and acts on what the answers say. A garbled or missing
answer is met by sending the frame again: status requests are harmless to repeat, and our
acceptor treats a repeated STACK or RETURN with nothing in escrow as done (docs/devices.md).
The driver keeps its own list of the notes in escrow (ID003 reports each note once, as it
arrives) so it can say what ``stack`` and ``return_notes`` moved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from drivers.codecs import id003
from drivers.codecs.id003 import Command, Id003Decoder, Id003Frame, RejectReason, Status
from drivers.errors import BillAcceptorFault, DeviceProtocolError, DeviceTimeout
from drivers.framed import FramedDevice
from drivers.interfaces import (
    AcceptorState,
    AcceptorStatus,
    BillAcceptor,
    NoteEscrowed,
    NoteRejected,
)
from drivers.transport import Channel

__all__ = ["FAULT_STATUSES", "Id003BillAcceptor"]

log = logging.getLogger(__name__)

# status -> (our fault code, words)
FAULT_STATUSES: dict[int, tuple[str, str]] = {
    Status.STACKER_FULL: ("stacker_full", "stacker full"),
    Status.STACKER_OPEN: ("cassette_removed", "stacker cassette removed"),
    Status.JAM_IN_ACCEPTOR: ("jam", "note jam in the acceptor"),
    Status.JAM_IN_STACKER: ("jam", "note jam in the stacker"),
    Status.FAILURE: ("failure", "acceptor failure"),
    Status.CHEATED: ("failure", "cheat detected"),
    Status.PAUSE: ("failure", "paused (second note inserted)"),
}
_IDLE = (Status.IDLING, Status.DISABLED)
_STATES: dict[int, AcceptorState] = {
    Status.IDLING: AcceptorState.IDLE,
    Status.DISABLED: AcceptorState.IDLE,
    Status.HOLDING: AcceptorState.ESCROW,
    Status.ESCROW: AcceptorState.ESCROW,
    Status.RETURNING: AcceptorState.RETURNED,
    Status.STACKER_FULL: AcceptorState.STACKER_FULL,
    Status.STACKER_OPEN: AcceptorState.CASSETTE_REMOVED,
    Status.JAM_IN_ACCEPTOR: AcceptorState.JAM,
    Status.JAM_IN_STACKER: AcceptorState.JAM,
}


class Id003BillAcceptor(FramedDevice[Id003Frame], BillAcceptor):
    DEVICE = "bill acceptor"
    PROTOCOL = "ID003"
    FRAME = Id003Frame
    HANDSHAKE = False  # ID003 has no ACK/NAK byte: a frame answers a frame
    REFUSED = "COMMUNICATION ERROR (ID003's NAK)"

    def __init__(
        self,
        connect: Callable[[], Awaitable[Channel]],
        *,
        reply_timeout: float = 0.5,
        retries: int = 2,
        poll_interval: float = 0.1,
        stack_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            connect,
            ack_timeout=reply_timeout,
            reply_timeout=reply_timeout,
            retries=retries,
            poll_interval=poll_interval,
        )
        self._stack_timeout = stack_timeout
        self._escrow: list[int] = []
        self._enabled = False

    # -- link ---------------------------------------------------------------------------
    def _new_decoder(self) -> Id003Decoder:
        return Id003Decoder()

    async def _initialise(self) -> None:
        await self._poll_status()  # proves the device speaks ID003
        await self._inhibit(True)

    async def _exchange(self, cmd: int, data: bytes = b"") -> Id003Frame:
        """Send one frame and return the acceptor's answer, sending again on silence, a
        garbled answer or COMMUNICATION ERROR, up to ``retries`` times."""
        return await self.link.exchange(
            id003.encode(cmd, data),
            reply_timeout=self._reply_timeout,
            is_reply=lambda answer: answer.cmd != Status.COMMUNICATION_ERROR,
            resend_on_timeout=True,
        )

    async def _send_only(self, cmd: int) -> None:
        await self.link.send(id003.encode(cmd))

    async def _poll_status(self) -> Id003Frame:
        return await self._exchange(Command.STATUS_REQUEST)

    async def _operation(self, cmd: int) -> None:
        answer = await self._exchange(cmd)
        if answer.cmd != Status.ACK:
            raise DeviceProtocolError(
                f"{self.DEVICE}: command 0x{cmd:02X} answered 0x{answer.cmd:02X}, not ACK"
            )

    async def _inhibit(self, inhibited: bool) -> None:
        value = bytes([1 if inhibited else 0])
        answer = await self._exchange(Command.INHIBIT, value)
        if answer.cmd != Command.INHIBIT or answer.data != value:
            raise DeviceProtocolError(f"{self.DEVICE}: inhibit not echoed ({answer})")
        self._enabled = not inhibited

    # -- interface ----------------------------------------------------------------------
    async def status(self) -> AcceptorStatus:
        answer = await self._poll_status()
        self._note_event(answer)
        state = _STATES.get(answer.cmd)
        if state is None:
            failed = answer.cmd in (Status.FAILURE, Status.CHEATED, Status.PAUSE)
            state = AcceptorState.FAILURE if failed else AcceptorState.BUSY
        if state is AcceptorState.IDLE and self._escrow:
            state = AcceptorState.ESCROW
        return AcceptorStatus(state, tuple(self._escrow))

    def _note_event(self, answer: Id003Frame) -> NoteEscrowed | NoteRejected | None:
        if answer.cmd == Status.ESCROW:
            cents = self._denomination(answer)
            self._escrow.append(cents)
            return NoteEscrowed(cents)
        if answer.cmd == Status.REJECTING:
            code = answer.data[0] if answer.data else 0
            try:
                reason = RejectReason(code).name.lower()
            except ValueError:
                reason = f"0x{code:02X}"
            return NoteRejected(reason)
        return None

    def _denomination(self, answer: Id003Frame) -> int:
        """The note an ESCROW or VEND VALID answer names, in cents."""
        return self._decoded("", id003.denomination_cents, answer.data[0] if answer.data else 0)

    def _fault(self, answer: Id003Frame, stacked: dict[int, int] | None = None) -> None:
        if answer.cmd in FAULT_STATUSES:
            code, words = FAULT_STATUSES[answer.cmd]
            raise BillAcceptorFault(f"{self.DEVICE}: {words}", code=code, stacked=stacked)

    async def enable(self) -> None:
        await self._inhibit(False)

    async def wait_note(self, timeout: float) -> NoteEscrowed | NoteRejected:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout  # enabling the acceptor is part of the wait
        if not self._enabled:
            await self._inhibit(False)
        event: NoteEscrowed | NoteRejected | None = await self._poll_for(
            self._note_arrived, deadline - loop.time()
        )
        if event is None:
            await self._inhibit(True)
            raise DeviceTimeout(f"{self.DEVICE}: no note within {timeout:g}s")
        return event

    async def _note_arrived(self) -> NoteEscrowed | NoteRejected | None:
        answer = await self._poll_status()
        event = self._note_event(answer)
        if event is None:
            self._fault(answer)
        return event

    async def stack(self) -> dict[int, int]:
        if self._enabled:
            await self._inhibit(True)
        await self._operation(Command.STACK_1)
        stacked: dict[int, int] = {}

        async def stacking_ended() -> dict[int, int] | None:
            answer = await self._poll_status()
            while answer.cmd == Status.VEND_VALID:  # a note stacked: ACK it, ask again at once
                cents = self._denomination(answer)
                await self._send_only(Command.ACK)
                stacked[cents] = stacked.get(cents, 0) + 1
                if cents in self._escrow:
                    self._escrow.remove(cents)
                answer = await self._poll_status()
            if answer.cmd in FAULT_STATUSES:
                if answer.cmd in (Status.JAM_IN_STACKER, Status.JAM_IN_ACCEPTOR):
                    self._escrow = []  # the jammed note and any behind it are suspect
                self._fault(answer, stacked)
            if answer.cmd in _IDLE or (answer.cmd == Status.HOLDING and not self._escrow):
                self._escrow = []
                return stacked
            return None

        if await self._poll_for(stacking_ended, self._stack_timeout) is None:
            raise DeviceTimeout(f"{self.DEVICE}: stacking did not end in time")
        return stacked

    async def return_notes(self) -> dict[int, int]:
        if self._enabled:
            await self._inhibit(True)
        await self._operation(Command.RETURN)
        returned: dict[int, int] = {}
        for cents in self._escrow:
            returned[cents] = returned.get(cents, 0) + 1
        self._escrow = []
        return returned

    async def wait_returned_taken(self, timeout: float) -> bool:
        return await self._poll_until(self._entrance_clear, timeout)

    async def _entrance_clear(self) -> bool:
        answer = await self._poll_status()
        return answer.cmd != Status.RETURNING and answer.cmd != Status.REJECTING
