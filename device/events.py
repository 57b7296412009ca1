"""Events the controller publishes for consoles, scripts, the web panel and tests.

Subscribers are plain callables; they must not block. Everything a person could see or a
tester could check is an event: screens, state changes, host-link messages (already masked by
whoever renders them), receipts and journal lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from device.screens import Screen
from protocol.messages import Message

__all__ = [
    "DeviceEvent",
    "EventBus",
    "JournalLine",
    "LinkMessage",
    "ReceiptPrinted",
    "ScreenShown",
    "StateChanged",
]


@dataclass(frozen=True)
class ScreenShown:
    screen: Screen


@dataclass(frozen=True)
class StateChanged:
    source: str
    dest: str
    trigger: str = ""  # the event that moved the machine


@dataclass(frozen=True)
class LinkMessage:
    direction: str  # "send" | "recv"
    message: Message


@dataclass(frozen=True)
class ReceiptPrinted:
    lines: tuple[str, ...]
    qr: str = ""  # the text of the QR code printed under the lines ("" for none)


@dataclass(frozen=True)
class JournalLine:
    line: str


DeviceEvent = ScreenShown | StateChanged | LinkMessage | ReceiptPrinted | JournalLine


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[DeviceEvent], None]] = []

    def subscribe(self, callback: Callable[[DeviceEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: DeviceEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)
