"""An ESC/POS receipt printer with a paper roll that runs low (near end) and out, and a cover.
It parses the commands of ``drivers.codecs.escpos``, answers ``DLE EOT n`` with one status
byte, and keeps the receipts it printed (lines between initialise and cut)."""

from __future__ import annotations

from pathlib import Path

from drivers.codecs import escpos
from drivers.codecs.escpos import Cut, EscPosParser, Feed, Init, LineFeed, StatusRequest, Text
from drivers.statefile import StateFileError, load_state, save_state
from simulators.base import BYTE_FAULTS, Simulator

__all__ = ["PrinterSimulator"]


class PrinterSimulator(Simulator):
    NAME = "printer"
    FAULTS = frozenset({"paper_out", "paper_near_end", "cover_open"})
    WIRE_FAULTS = BYTE_FAULTS - {"nak"}  # ESC/POS has no ACK/NAK

    def __init__(
        self,
        paper_lines: int = 3000,
        near_end_lines: int = 300,
        *,
        state_path: Path | None = None,
    ) -> None:
        """``state_path``: keep the paper left on the roll in this file across a restart."""
        super().__init__()
        self.paper_left = paper_lines
        self.near_end_lines = near_end_lines
        self.receipts: list[list[str]] = []
        self.lines_lost = 0
        self._current: list[str] = []
        self._line = bytearray()
        self._parser = EscPosParser()
        self.state_path = state_path
        if state_path is not None:
            state = load_state(state_path)
            if state is not None:
                try:
                    self.paper_left = int(state["paper_left"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise StateFileError(
                        f"device state file {state_path} is damaged: {exc}"
                    ) from exc
            self.save()

    def save(self) -> None:
        if self.state_path is not None:
            save_state(self.state_path, {"device": "printer", "paper_left": self.paper_left})

    @property
    def paper_out(self) -> bool:
        return "paper_out" in self.faults or self.paper_left <= 0

    @property
    def near_end(self) -> bool:
        return "paper_near_end" in self.faults or self.paper_left <= self.near_end_lines

    @property
    def cover_open(self) -> bool:
        return "cover_open" in self.faults

    def status_byte(self, n: int) -> int:
        value = escpos.FIXED_BITS
        if n == escpos.PRINTER and (self.paper_out or self.cover_open):
            value |= escpos.OFFLINE
        elif n == escpos.OFFLINE_CAUSE:
            value |= escpos.COVER_OPEN if self.cover_open else 0
            value |= escpos.PAPER_OUT_STOP if self.paper_out else 0
        elif n == escpos.ROLL_PAPER:
            value |= escpos.NEAR_END if self.near_end or self.paper_out else 0
            value |= escpos.PAPER_OUT if self.paper_out else 0
        return value

    def on_bytes(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            if isinstance(event, StatusRequest):
                self.send_frame(bytes([self.status_byte(event.n)]))
            elif isinstance(event, Init):
                self._line.clear()
                self._current = []
            elif isinstance(event, Text):
                self._line += event.data
            elif isinstance(event, LineFeed):
                self._print_line()
            elif isinstance(event, Feed):
                self.paper_left = max(0, self.paper_left - event.lines)
            elif isinstance(event, Cut):
                if self._line:
                    self._print_line()
                if self._current:
                    self.receipts.append(self._current)
                self._current = []
                self.save()

    def _print_line(self) -> None:
        text = self._line.decode("cp437")
        self._line.clear()
        if self.paper_out or self.cover_open:
            self.lines_lost += 1
            return
        self._current.append(text)
        self.paper_left -= 1
