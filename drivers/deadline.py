"""How long a driver has listened for a device: the clock of every ACK, reply and status
timeout on the serial and USB links.

A device timeout says "the device stayed silent for N seconds while we listened". A wall
clock says more than that: when this process is not running (the event loop blocked by
other work, a thread pre-empted while it holds the GIL, a machine with more work than
cores), the device's answer waits in the kernel's buffer, or a simulator in this process
has not even been given the request yet, while the wall clock runs on. The first wake-up
after such a stall finds the timer due and the answer not yet read, and the driver would
report a silent device (or send the command again, and read the second answer as the
answer to its next command).

``ListeningDeadline`` counts only the time the driver was able to listen: it waits in
slices of at most ``SLICE`` seconds and credits each slice with no more than it asked for,
however late the loop woke. A device that answers nothing still times out after the
configured seconds on a healthy loop (the timeout is the device's documented timing, not
tuned to this machine), and after that plus the stalls on a loaded one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["SLICE", "ListeningDeadline", "listen"]

T = TypeVar("T")

#: The longest single wait: a stall costs a timeout at most this much of its time.
SLICE = 0.05


class ListeningDeadline:
    """``seconds`` of listening, measured on ``clock`` (the running loop's by default)."""

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] | None = None,
        slice_seconds: float = SLICE,
    ) -> None:
        if slice_seconds <= 0:
            raise ValueError(f"slice_seconds must be positive, got {slice_seconds}")
        self.seconds = seconds
        self._clock = clock or asyncio.get_running_loop().time
        self._slice = slice_seconds
        self._listened = 0.0
        self._since = self._clock()
        self._asked = min(self._slice, max(0.0, seconds))

    @property
    def remaining(self) -> float:
        return max(0.0, self.seconds - self._listened)

    @property
    def expired(self) -> bool:
        return self._listened >= self.seconds

    def next_wait(self) -> float:
        """How long the next wait may last: one slice, or what is left if less."""
        self._asked = min(self._slice, self.remaining)
        return self._asked

    def waited(self, *, timed_out: bool) -> None:
        """Credit the wait that just ended: the slice asked for when its timer ran out (a
        late wake-up is the process's stall, not the device's silence), the time it took
        when something arrived first (never more than the slice)."""
        now = self._clock()
        took = now - self._since
        self._since = now
        self._listened += self._asked if timed_out else min(max(0.0, took), self._asked)

    async def wait(self, awaitable: Callable[[], Awaitable[T]]) -> T | None:
        """``awaitable()`` within the next slice: its result, or None when the slice ran out
        first (the call is cancelled then, so it must be safe to cancel and call again, as
        a stream read is)."""
        try:
            async with asyncio.timeout(self.next_wait()):
                result = await awaitable()
        except TimeoutError:
            self.waited(timed_out=True)
            return None
        self.waited(timed_out=False)
        return result


async def listen(seconds: float, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``'s result within ``seconds`` of listening, else ``TimeoutError``: as
    ``asyncio.wait_for`` but on a ``ListeningDeadline`` (``call`` is cancelled at the end of
    each slice and called again, so it must be safe to cancel: a queue's ``get``, an event's
    ``wait``). The in-process simulated devices wait for their customer with it."""
    deadline = ListeningDeadline(seconds)
    while True:  # asked once at least, as wait_for does: a zero wait takes what is there
        try:
            async with asyncio.timeout(deadline.next_wait()):
                return await call()
        except TimeoutError:
            deadline.waited(timed_out=True)
        if deadline.expired:
            raise TimeoutError(f"nothing within {seconds:g}s of listening")
