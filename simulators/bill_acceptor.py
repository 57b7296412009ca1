"""A JCM ID003 bill acceptor with a bunch-note escrow and a stacker. Speaks the bytes of
``drivers.codecs.id003``.

Notes are conserved: every note the customer inserted is in the escrow, the stacker, jammed
in the transport (``jammed``), at the entrance waiting to be taken (``at_entrance``) or taken
back by the customer (``taken_back``). The acceptor reports what happened as a queue of
status events that the host's polls consume one by one; ``VEND VALID`` stays at the head of
the queue until the host ACKs it, as ID003 requires.

Device faults: ``reject`` (the next notes are not recognised), ``jam`` (the next note jams in
the acceptor), ``stack_jam`` (a note jams on its way to the stacker), ``stacker_full``,
``cassette_removed``; byte-level faults from ``simulators.base`` (``nak`` answers
COMMUNICATION ERROR).

The notes' whereabouts are the model ``notes`` (``drivers.physical``), the in-process
acceptor's too: with ``state_path`` they are kept in that file, written when they change,
so before the answer that reports the change goes out.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from drivers.codecs import id003
from drivers.codecs.events import BadFrame
from drivers.codecs.id003 import Command, Id003Decoder, Id003Frame, RejectReason, Status
from drivers.physical import AcceptorNotes, HoldsAcceptorNotes
from simulators.base import Simulator

__all__ = ["BillAcceptorSimulator"]

log = logging.getLogger(__name__)

VERSION = b"ID003 SIM USA 1.0"


_REASONS = {
    "inhibited": RejectReason.INHIBITED,
    "denomination": RejectReason.DENOMINATION,
    "operation": RejectReason.OPERATION,
}


class BillAcceptorSimulator(HoldsAcceptorNotes, Simulator):
    NAME = "bill-acceptor"
    FAULTS = frozenset({"reject", "jam", "stack_jam", "stacker_full", "cassette_removed"})
    ACCEPTED = frozenset(id003.DENOMINATIONS.values())
    MAX_ESCROW = id003.MAX_ESCROW

    def __init__(self, stacker_capacity: int = 500, *, state_path: Path | None = None) -> None:
        super().__init__()
        self.inhibited = True
        self._events: deque[tuple[int, bytes]] = deque()
        self._decoder = Id003Decoder()
        self.state_path = state_path
        self.notes = AcceptorNotes(stacker_capacity, state_path)

    # -- customer side ------------------------------------------------------------------
    def insert_note(self, cents: int) -> None:
        """The customer pushes one note into the entrance."""
        outcome = self._insert(cents)
        if outcome == "jam":
            log.info("bill acceptor: a %d-cent note jammed in the acceptor", cents)
        elif outcome == "escrow":
            self._events.append((Status.ESCROW, bytes([id003.denomination_code(cents)])))
        else:
            self._events.append((Status.REJECTING, bytes([_REASONS[outcome]])))

    def take_returned(self) -> list[int]:
        """The customer takes the notes at the entrance."""
        return self.notes.take_returned()

    # -- wire side ----------------------------------------------------------------------
    def on_bytes(self, data: bytes) -> None:
        for event in self._decoder.feed(data):
            if isinstance(event, BadFrame):
                self._reply(Status.COMMUNICATION_ERROR)
            elif isinstance(event, Id003Frame):
                if self.should_nak():
                    self._reply(Status.COMMUNICATION_ERROR)
                    continue
                self.frames_in += 1
                self._handle(event)

    def _reply(self, status: int, data: bytes = b"") -> None:
        self.send_frame(id003.encode(status, data))

    def _handle(self, frame: Id003Frame) -> None:
        cmd = frame.cmd
        if cmd == Command.STATUS_REQUEST:
            self._reply(*self._status())
        elif cmd == Command.ACK:
            # The host took the VEND VALID: no answer, the next poll moves on.
            if self._events and self._events[0][0] == Status.VEND_VALID:
                self._events.popleft()
        elif cmd == Command.INHIBIT and len(frame.data) == 1:
            self.inhibited = frame.data[0] != 0
            self._reply(cmd, frame.data)  # setting commands echo their data
        elif cmd == Command.ENABLE and len(frame.data) == 2:
            self._reply(cmd, frame.data)
        elif cmd == Command.VERSION_REQUEST:
            self._reply(cmd, VERSION)
        elif cmd in (Command.STACK_1, Command.STACK_2):
            self._reply(Status.ACK)
            self._stack()
        elif cmd == Command.RETURN:
            self._reply(Status.ACK)
            self._return()
        elif cmd in (Command.HOLD, Command.WAIT):
            self._reply(Status.ACK)
        elif cmd == Command.RESET:
            self._reply(Status.ACK)
            self._return()
            self._events.clear()
            self.inhibited = True
        else:
            self._reply(Status.INVALID_COMMAND)

    def _status(self) -> tuple[int, bytes]:
        if "cassette_removed" in self.faults:
            return Status.STACKER_OPEN, b""
        if self._events:
            status, data = self._events[0]
            if status != Status.VEND_VALID:
                self._events.popleft()
            return status, data
        if "jam" in self.faults and self.jammed:
            return Status.JAM_IN_ACCEPTOR, b""
        if self.jammed:
            return Status.JAM_IN_STACKER, b""
        if self.escrow:
            return Status.HOLDING, b""
        if self.at_entrance:
            return Status.RETURNING, bytes([len(self.at_entrance)])
        if self._stacker_full():
            return Status.STACKER_FULL, b""
        return (Status.DISABLED if self.inhibited else Status.IDLING), b""

    def _stack(self) -> None:
        """Stack-1 (and Stack-2: our unit has one stacker) move every escrowed note; a
        repeated Stack with nothing in escrow does nothing (so a host may resend it)."""
        with self.notes.change():
            while self.escrow:
                if self._stacker_full():
                    self._events.append((Status.STACKER_FULL, b""))
                    return  # the rest stays in escrow
                if "stack_jam" in self.faults:
                    log.info(
                        "bill acceptor: a %d-cent note jammed on its way to the stacker",
                        self.escrow[0],
                    )
                    self.notes.jam_escrow()
                    self._events.append((Status.JAM_IN_STACKER, b""))
                    return
                cents = self.notes.stack_next()
                self._events.append((Status.STACKING, b""))
                self._events.append((Status.VEND_VALID, bytes([id003.denomination_code(cents)])))
                self._events.append((Status.STACKED, b""))

    def _return(self) -> None:
        if self.notes.return_escrow():
            self._events.append((Status.RETURNING, bytes([len(self.at_entrance)])))
