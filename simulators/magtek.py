"""A MagTek-style USB HID swipe reader: each swipe becomes one 337-byte input report
(``drivers.codecs.magtek``). There is no USB bus to put it on here, so it feeds a fake
``usb.backend.IBackend`` in the tests; ``reports`` is what the interrupt IN endpoint yields."""

from __future__ import annotations

from collections import deque

from drivers.codecs.magtek import Swipe, encode_report

__all__ = ["MagtekSimulator"]


class MagtekSimulator:
    NAME = "USB card reader"
    FAULTS = frozenset({"unreadable"})

    def __init__(self) -> None:
        self.faults: set[str] = set()
        self.reports: deque[bytes] = deque()

    def inject(self, fault: str, arg: object = None) -> None:
        if fault not in self.FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(self.FAULTS))}")
        self.faults.add(fault)

    def clear(self, fault: str | None = None) -> None:
        if fault is None:
            self.faults.clear()
        else:
            self.faults.discard(fault)

    def insert(self, track2: str) -> None:
        """Swipe a card."""
        if "unreadable" in self.faults:
            swipe = Swipe((0, 1, 0), ("", "", ""))
        else:
            swipe = Swipe((0, 0, 0), ("", f";{track2}?", ""), encoding=2)
        self.reports.append(encode_report(swipe))

    def take_card(self) -> None:
        """A swiped card never left the customer's hand."""
