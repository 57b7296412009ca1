"""What every peripheral simulator shares: device-level faults (named flags, per device) and
byte-level faults (delay, split, garble, drop, NAK, disconnect, silent) applied on the way
out, both set with ``inject(name, arg)`` and removed with ``clear``: configuration, not code.

A simulator is driven by whoever carries its bytes (``simulators.ports``): ``receive(data)``
for bytes from the wire; it answers through the ``writer`` it was attached to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from protocol.hexdump import trace_text

__all__ = ["BYTE_FAULTS", "ByteFaults", "Simulator"]

log = logging.getLogger(__name__)

BYTE_FAULTS = frozenset({"delay", "split", "garble", "drop", "nak", "disconnect", "silent"})
SPLIT_GAP = 0.002  # seconds between the pieces of a split frame (the device pausing)


#: ``--trace``: every chunk of bytes a simulator receives and sends, redacted, at DEBUG.
wire_log = logging.getLogger("simulators.wire")


def _trace(direction: str, where: str, data: bytes) -> None:
    if wire_log.isEnabledFor(logging.DEBUG):
        wire_log.debug("%s", trace_text(direction, where, data))


@dataclass
class ByteFaults:
    delay: float = 0.0  # seconds before every answer
    split: int = 0  # send frames in pieces of this many bytes (0: whole)
    garble: int = 0  # garble the next N frames (-1: every frame)
    drop: int = 0  # drop the next N frames (-1: every frame)
    nak: int = 0  # NAK the next N commands (-1: every command)
    silent: bool = False  # answer nothing at all

    @staticmethod
    def take(count: int) -> tuple[bool, int]:
        """(apply now?, count left) for a counted fault."""
        if count < 0:
            return True, count
        if count > 0:
            return True, count - 1
        return False, 0


class Simulator:
    """Base of the peripheral simulators. Subclasses set ``NAME``, ``FAULTS`` and implement
    ``on_bytes``; they answer with ``send_control`` (single bytes) and ``send_frame``."""

    NAME = "device"
    FAULTS: frozenset[str] = frozenset()
    WIRE_FAULTS: frozenset[str] = BYTE_FAULTS

    def __init__(self) -> None:
        self.faults: set[str] = set()
        self.wire = ByteFaults()
        self._writer: Callable[[bytes], None] | None = None
        self._hangup: Callable[[], None] | None = None
        self._last_frame = b""
        # The last bytes each way on the wire, for a console's engineer view.
        self.last_in = b""
        self.last_out = b""
        self.frames_in = 0
        self.frames_out = 0

    # -- wiring -------------------------------------------------------------------------
    def attach(self, writer: Callable[[bytes], None], hangup: Callable[[], None]) -> None:
        self._writer, self._hangup = writer, hangup

    def detach(self) -> None:
        self._writer = self._hangup = None

    def receive(self, data: bytes) -> None:
        """Bytes from the wire (the driver)."""
        _trace("sim <-", type(self).__name__, data)
        self.last_in = data
        if self.wire.silent or "silent" in self.faults:
            return
        self.on_bytes(data)

    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    # -- faults -------------------------------------------------------------------------
    @property
    def fault_names(self) -> list[str]:
        return sorted(self.FAULTS | self.WIRE_FAULTS)

    def inject(self, fault: str, arg: str | float | int | None = None) -> None:
        """Device faults are flags (``inject("jam")``); wire faults take an argument:
        ``delay`` seconds (0.5), ``split`` piece size (1), ``garble``/``drop``/``nak`` how many
        frames (1; -1 or "always" for every one); ``disconnect`` hangs up now."""
        if fault in self.FAULTS:
            self.faults.add(fault)
        elif fault in self.WIRE_FAULTS:
            self._inject_wire(fault, arg)
        else:
            raise ValueError(
                f"unknown fault {fault!r} for the {self.NAME}; known: {', '.join(self.fault_names)}"
            )
        log.info("%s: fault %s injected", self.NAME, fault)

    def _inject_wire(self, fault: str, arg: str | float | int | None) -> None:
        if fault == "disconnect":
            if self._hangup is not None:
                self._hangup()
            return
        if fault == "silent":
            self.wire.silent = True
        elif fault == "delay":
            self.wire.delay = float(arg if arg is not None else 0.5)
        elif fault == "split":
            self.wire.split = int(arg if arg is not None else 1)
        else:
            count = -1 if arg in ("always", "-1", -1) else int(arg if arg is not None else 1)
            setattr(self.wire, fault, count)

    def clear(self, fault: str | None = None) -> None:
        if fault is None:
            self.faults.clear()
            self.wire = ByteFaults()
        elif fault in self.WIRE_FAULTS:
            default = ByteFaults()
            if hasattr(default, fault):
                setattr(self.wire, fault, getattr(default, fault))
        else:
            self.faults.discard(fault)

    def should_nak(self) -> bool:
        apply, self.wire.nak = ByteFaults.take(self.wire.nak)
        return apply

    # -- output -------------------------------------------------------------------------
    def send_control(self, data: bytes) -> None:
        """ACK/NAK and key bytes: only delay and silence apply."""
        if self.wire.silent or "silent" in self.faults:
            return
        self.last_out = data
        self._write_later(data, self.wire.delay)

    def send_frame(self, frame: bytes, *, remember: bool = True) -> None:
        if remember:
            self._last_frame = frame
        if self.wire.silent or "silent" in self.faults:
            return
        self.last_out = frame
        drop, self.wire.drop = ByteFaults.take(self.wire.drop)
        if drop:
            log.info("%s: dropped a frame", self.NAME)
            return
        garble, self.wire.garble = ByteFaults.take(self.wire.garble)
        if garble:
            frame = frame[:-1] + bytes([frame[-1] ^ 0x01])
        self.frames_out += 1
        step = self.wire.split
        if step <= 0:
            self._write_later(frame, self.wire.delay)
            return
        for i, start in enumerate(range(0, len(frame), step)):
            self._write_later(frame[start : start + step], self.wire.delay + i * SPLIT_GAP)

    def resend_last(self) -> None:
        if self._last_frame:
            self.send_frame(self._last_frame)

    def _write_later(self, data: bytes, delay: float) -> None:
        writer = self._writer
        if writer is None:
            return
        if delay <= 0:
            _trace("sim ->", type(self).__name__, data)
            writer(data)
        else:
            asyncio.get_running_loop().call_later(delay, self._write_if_attached, writer, data)

    def _write_if_attached(self, writer: Callable[[bytes], None], data: bytes) -> None:
        if self._writer is writer:
            _trace("sim ->", type(self).__name__, data)
            writer(data)
