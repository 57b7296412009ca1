"""A Sankyo ICT3K5-style motorised card reader: a card waits at the slot until entry is
enabled, is drawn inside, read, ejected to the gate (where the customer takes it) or captured
into a bin of limited capacity. Speaks ``drivers.codecs.sankyo``."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from drivers.codecs import sankyo
from drivers.codecs.events import ACK, NAK, BadFrame, Nak
from drivers.codecs.sankyo import SankyoCommand, SankyoDecoder, SankyoFrame, SankyoReply
from drivers.interfaces import CardData
from drivers.physical import CardSlot, ModelField
from drivers.statefile import StateFileError
from protocol.masking import mask_track2
from simulators.base import Simulator

__all__ = ["CardReaderSimulator"]

_POSITION_CODES = {
    "none": sankyo.NO_CARD,
    "gate": sankyo.CARD_AT_GATE,
    "inside": sankyo.CARD_INSIDE,
}


class CardReaderSimulator(Simulator):
    NAME = "card reader"
    FAULTS = frozenset({"unreadable", "card_jam", "capture_bin_full"})

    def __init__(self, capture_bin_capacity: int = 50, *, state_path: Path | None = None) -> None:
        """``state_path``: keep the card's position (a card inside or at the gate, by masked
        track data only) and the capture bin in this file across a restart."""
        super().__init__()
        self.capture_bin_capacity = capture_bin_capacity
        self.initialised = False
        self.entry_enabled = False
        self._track2 = ""
        self._waiting: deque[str] = deque()
        self._take_pending = False
        self._decoder = SankyoDecoder()
        self.state_path = state_path
        self.slot = CardSlot(state_path)
        if self.slot.position not in _POSITION_CODES:
            raise StateFileError(f"device state file {state_path}: bad position")

    # -- physical state: the model ``slot`` (``drivers.physical``), the in-process reader's too
    position = ModelField[str]("slot", "position")  # none | gate | inside
    card = ModelField[str]("slot", "card")  # masked track data of the card in the reader
    captured = ModelField[list[str]]("slot", "captured")  # masked track data, captured cards

    def save(self) -> None:
        """Write down where the card is (the reader's moves set ``position``)."""
        self.slot.move(self.position, mask_track2(self._track2) if self._track2 else None)

    # -- customer side ------------------------------------------------------------------
    def insert(self, track2: str) -> None:
        """Hold a card at the slot; the reader draws it in once entry is enabled."""
        self._waiting.append(track2)
        self._admit()

    def take_card(self) -> None:
        """Take the card from the gate, or take it as soon as it gets there."""
        if self.position == "gate":
            self.position = "none"
            self._track2 = ""
            self.save()
        else:
            self._take_pending = True

    def _admit(self) -> None:
        if self.entry_enabled and self.position == "none" and self._waiting:
            self._track2 = self._waiting.popleft()
            self.position = "inside"
            self._take_pending = False
            self.save()

    # -- wire side ----------------------------------------------------------------------
    def on_bytes(self, data: bytes) -> None:
        for event in self._decoder.feed(data):
            if isinstance(event, Nak):
                self.resend_last()
            elif isinstance(event, BadFrame):
                self.send_control(bytes([NAK]))
            elif isinstance(event, SankyoFrame) and event.text[:1] == b"C":
                if self.should_nak():
                    self.send_control(bytes([NAK]))
                    continue
                self.frames_in += 1
                self.send_control(bytes([ACK]))
                reply = self._handle(SankyoCommand.parse(event.text))
                self.save()  # the physical state is on disk before the reply goes out
                self.send_frame(reply.encode())

    def _ok(self, c: SankyoCommand, data: bytes = b"") -> SankyoReply:
        return SankyoReply(True, c.cmd, c.param, _POSITION_CODES[self.position], data)

    @staticmethod
    def _error(c: SankyoCommand, code: str) -> SankyoReply:
        return SankyoReply(False, c.cmd, c.param, code)

    def _handle(self, c: SankyoCommand) -> SankyoReply:
        key = c.cmd + c.param
        if c.cmd == sankyo.INITIALISE:
            self.initialised = True
            self.entry_enabled = False
            if self.position == "inside" and c.param == b"0":
                self._to_gate()
            elif self.position == "inside" and c.param == b"1":
                return self._capture(c)
            return self._ok(c)
        if key == sankyo.STATUS + b"0":
            return self._ok(c)
        if not self.initialised:
            return self._error(c, "B0")
        if c.cmd == sankyo.ENTRY and c.param in (b"0", b"1"):
            self.entry_enabled = c.param == b"0"
            self._admit()
            return self._ok(c)
        if c.cmd == sankyo.READ_TRACK and c.param in (b"1", b"2", b"3", b"4"):
            if self.position != "inside":
                return self._error(c, "01")
            if "card_jam" in self.faults:
                return self._error(c, "10")
            if "unreadable" in self.faults:
                return self._error(c, "23")
            try:
                CardData(self._track2)
            except ValueError:
                return self._error(c, "21")
            return self._ok(c, self._track2.encode("ascii"))
        if key == sankyo.EJECT + b"0":
            if self.position == "none":
                return self._error(c, "01")
            if "card_jam" in self.faults:
                return self._error(c, "10")
            self._to_gate()
            return self._ok(c)
        if key == sankyo.EJECT + b"1":
            return self._capture(c)
        if c.cmd == sankyo.LED:
            return self._ok(c)
        return self._error(c, "00")

    def _to_gate(self) -> None:
        self.position = "gate"
        if self._take_pending:
            self._take_pending = False
            self.position = "none"
            self._track2 = ""

    def _capture(self, c: SankyoCommand) -> SankyoReply:
        if self.position == "none":
            return self._error(c, "01")
        if "card_jam" in self.faults:
            return self._error(c, "17")
        if "capture_bin_full" in self.faults or len(self.captured) >= self.capture_bin_capacity:
            return self._error(c, "50")
        self.captured.append(mask_track2(self._track2))
        self.position, self._track2 = "none", ""
        return self._ok(c)
