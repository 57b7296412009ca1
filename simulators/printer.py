"""An ESC/POS receipt printer with a paper roll that runs low (near end) and out, and a cover.

It parses the whole common ESC/POS command set with ``drivers.codecs.escpos`` (commands it does
not render are skipped by their length, never printed as text), answers ``DLE EOT n`` with one
status byte, and keeps the receipts it printed (everything between initialise and cut): the text
lines in ``receipts`` and, in ``receipt_items``, the same receipts with barcodes, QR codes and
images kept as structured items. Paper is counted in dots fed, as a real roll is used: a text
line takes the line spacing (30 dots by default, ``ESC 3 n``) or the character height if that is
larger, a barcode its height, a QR code its modules, an image its rows.
"""

from __future__ import annotations

from pathlib import Path

from drivers.codecs import escpos
from drivers.codecs.escpos import (
    LINE_DOTS,
    Barcode,
    Cut,
    EscPosParser,
    Feed,
    FeedDots,
    Image,
    Init,
    LineFeed,
    QrCode,
    Setting,
    StatusRequest,
    Text,
)
from drivers.physical import ModelField, PaperRoll
from simulators.base import BYTE_FAULTS, Simulator

__all__ = ["LINE_DOTS", "PrinterSimulator", "ReceiptItem", "describe_item"]

CHAR_DOTS = 24  # height of font A

ReceiptItem = str | Barcode | QrCode | Image


def describe_item(item: ReceiptItem) -> str:
    """One line for a receipt item, as a console or a web panel shows it."""
    if isinstance(item, str):
        return item
    if isinstance(item, Barcode):
        return f"[{item.symbology} barcode: {item.data.decode('ascii', 'replace')}]"
    if isinstance(item, QrCode):
        return f"[QR code: {item.data.decode('utf-8', 'replace')}]"
    return f"[image {item.width}x{item.height} dots ({item.command})]"


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
        self.near_end_dots = near_end_lines * LINE_DOTS
        self.receipts: list[list[str]] = []
        self.receipt_items: list[list[ReceiptItem]] = []
        self.lines_lost = 0
        self.items_lost = 0
        self._current: list[str] = []
        self._items: list[ReceiptItem] = []
        self._line = bytearray()
        self._parser = EscPosParser()
        self._reset_modes()
        self.state_path = state_path
        self.roll = PaperRoll(paper_lines * LINE_DOTS, state_path)

    # The paper left, in dots: the model ``roll`` (``drivers.physical``), the in-process
    # printer's too; written when a receipt is cut.
    paper_dots = ModelField[int | None]("roll", "dots")

    def _reset_modes(self) -> None:
        self._line_spacing = LINE_DOTS
        self._char_height = CHAR_DOTS

    @property
    def qr_codes(self) -> list[str]:
        """The text of the (first) QR code on each receipt, "" for none: what a phone
        scanning the printed receipt would read."""
        return [
            next((i.data.decode("utf-8", "replace") for i in r if isinstance(i, QrCode)), "")
            for r in self.receipt_items
        ]

    @property
    def paper_left(self) -> int | None:
        """Paper left, in default-spaced lines (None: a roll that never runs out)."""
        return self.roll.lines_left()

    @property
    def paper_out(self) -> bool:
        return "paper_out" in self.faults or self.roll.at_most(0)

    @property
    def near_end(self) -> bool:
        return "paper_near_end" in self.faults or self.roll.at_most(self.near_end_dots)

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
                self._items = []
                self._reset_modes()
            elif isinstance(event, Text):
                self._line += event.data
            elif isinstance(event, LineFeed):
                self._print_line()
            elif isinstance(event, Feed):
                self._print_line(only_if_pending=True)
                self._use_paper(event.lines * self._line_spacing)
            elif isinstance(event, FeedDots):
                self._print_line(only_if_pending=True)
                self._use_paper(event.dots)
            elif isinstance(event, Barcode | QrCode | Image):
                self._print_line(only_if_pending=True)
                self._print_item(event)
            elif isinstance(event, Setting):
                self._apply(event)
            elif isinstance(event, Cut):
                self._print_line(only_if_pending=True)
                if self._current or self._items:
                    self.receipts.append(self._current)
                    self.receipt_items.append(self._items)
                    self.roll.cut()
                else:
                    self.roll.save()
                self._current = []
                self._items = []

    def _apply(self, setting: Setting) -> None:
        """The settings that change how much paper a line takes."""
        if setting.command == "ESC 2":
            self._line_spacing = LINE_DOTS
        elif setting.command == "ESC 3":
            self._line_spacing = setting.params[0]
        elif setting.command == "GS !":
            self._char_height = CHAR_DOTS * ((setting.params[0] & 0x07) + 1)
        elif setting.command == "ESC !":
            self._char_height = CHAR_DOTS * (2 if setting.params[0] & 0x10 else 1)

    def _use_paper(self, dots: int) -> None:
        self.roll.feed(dots)

    def _print_line(self, *, only_if_pending: bool = False) -> None:
        if only_if_pending and not self._line:
            return
        text = self._line.decode("cp437")
        self._line.clear()
        if self.paper_out or self.cover_open:
            self.lines_lost += 1
            return
        self._current.append(text)
        self._items.append(text)
        self._use_paper(max(self._line_spacing, self._char_height))

    def _print_item(self, item: Barcode | QrCode | Image) -> None:
        if self.paper_out or self.cover_open:
            self.items_lost += 1
            return
        self._items.append(item)
        self._use_paper(item.height)
