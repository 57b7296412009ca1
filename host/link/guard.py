"""Who may hold a connection to the link server, and for how long (docs/protocol.md section 1).

The link server asks this module, and only this module, whether to keep a connection:

* a frame that has started (length prefix or part of a message read) must be complete within
  ``frame_timeout``;
* a connection that has not yet authenticated a message must send its first frame within
  ``frame_timeout`` too (a terminal signs on as soon as it connects);
* an authenticated connection that says nothing for ``idle_timeout`` is closed; the default is
  longer than the ATM's echo interval (60 s), so a healthy terminal is never cut off;
* at most ``max_unauthenticated`` connections may wait for their first authenticated message;
* at most ``max_connections`` connections in all, a bound kept below the process's open-file
  limit (``RLIMIT_NOFILE``) so ``accept()`` never runs out of descriptors; the last
  ``reserved_for_known`` of them only go to peers whose address has already carried an
  authenticated message (a known terminal reconnecting after a network fault).

Every close or refusal for one of these reasons is counted in a metric and logged by a
``RateLimitedLog``: at most one line per reason per ``log_interval`` seconds, with the number
of events since the last line, so a flood cannot flood the log.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ACCEPT_BURST",
    "FD_HEADROOM",
    "LISTEN_QUEUE",
    "CloseReason",
    "ConnectionGuard",
    "LinkLimits",
    "RateLimitedLog",
    "connection_bound",
]

log = logging.getLogger("host.link")

#: How many connections the server accepts in one go (asyncio's ``backlog``). Each accepted
#: socket holds a descriptor for about five event-loop iterations before a refusal closes it
#: (accept, transport, protocol, the server's check, the close), and a flood can be accepted
#: in every one of them: up to ``5 * ACCEPT_BURST`` descriptors in flight at the limit. With
#: asyncio's default of 100 a flood on a loaded machine ran out of descriptors at 112 open
#: connections of a 256 limit.
ACCEPT_BURST = 16

#: The kernel's queue of connections not yet accepted (``listen()``; capped by
#: net.core.somaxconn): deep, so a fleet signing on dozens at a time is never made to retry.
LISTEN_QUEUE = 1024

#: Descriptors kept free below RLIMIT_NOFILE: 64 for everything else the host opens (database
#: connections, three files each on SQLite in WAL mode, log and statement files, the ops API,
#: the worker and PIN pools, TLS; about 15 on SQLite at rest) and the accept bursts in flight.
FD_HEADROOM = 64 + 5 * ACCEPT_BURST


class CloseReason(StrEnum):
    FRAME_TIMEOUT = "frame_timeout"
    FIRST_FRAME_TIMEOUT = "first_frame_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    UNAUTHENTICATED_LIMIT = "unauthenticated_limit"
    CONNECTION_LIMIT = "connection_limit"


_TEXT = {
    CloseReason.FRAME_TIMEOUT: "closed: a started frame did not complete in time",
    CloseReason.FIRST_FRAME_TIMEOUT: "closed: no message within the time allowed after connecting",
    CloseReason.IDLE_TIMEOUT: "closed: idle for longer than the idle timeout",
    CloseReason.UNAUTHENTICATED_LIMIT: "refused: too many connections not yet authenticated",
    CloseReason.CONNECTION_LIMIT: "refused: connection limit reached",
}


@dataclass(frozen=True)
class LinkLimits:
    """Timeouts (seconds) and bounds of the link server; ``max_connections`` 0 = derive it
    from the open-file limit."""

    frame_timeout: float = 10.0
    idle_timeout: float = 150.0
    max_unauthenticated: int = 64
    max_connections: int = 0
    reserved_for_known: int = 16
    log_interval: float = 10.0

    def __post_init__(self) -> None:
        if self.frame_timeout <= 0 or self.idle_timeout <= 0 or self.log_interval < 0:
            raise ValueError("link timeouts must be positive")
        if self.max_unauthenticated < 1 or self.max_connections < 0:
            raise ValueError("link connection limits must be positive")
        if self.reserved_for_known < 0:
            raise ValueError("reserved_for_known must not be negative")


def connection_bound(configured: int, soft_nofile: int | None = None) -> int:
    """How many link connections this process may hold: ``configured`` (0 = as many as the
    file limit allows), never more than the soft RLIMIT_NOFILE less ``FD_HEADROOM``."""
    if soft_nofile is None:
        soft_nofile, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = 65_536 if soft_nofile == resource.RLIM_INFINITY else soft_nofile - FD_HEADROOM
    room = max(room, 1)
    return min(configured, room) if configured > 0 else room


class RateLimitedLog:
    """At most one line per key per ``interval`` seconds; the next line says how many events
    it stands for."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: Any) -> bool:
        """Log unless a line for ``key`` was written within the interval; True if logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        more = self._suppressed.pop(key, 0)
        suffix = f" (and {more} more since the last such line)" if more else ""
        self._logger.warning(message + suffix, *args)
        return True


@dataclass
class ConnectionGuard:
    """Counts the link server's connections and decides admissions; single-threaded (the
    event loop), so plain counters suffice."""

    limits: LinkLimits
    max_connections: int
    on_event: Callable[[CloseReason], None] | None = None
    clock: Callable[[], float] = time.monotonic
    open: int = 0
    unauthenticated: int = 0
    known_peers: set[str] = field(default_factory=set)
    _log: RateLimitedLog = field(init=False)

    def __post_init__(self) -> None:
        self._log = RateLimitedLog(log, self.limits.log_interval, self.clock)

    @classmethod
    def for_limits(
        cls,
        limits: LinkLimits,
        on_event: Callable[[CloseReason], None] | None = None,
        soft_nofile: int | None = None,
    ) -> ConnectionGuard:
        return cls(limits, connection_bound(limits.max_connections, soft_nofile), on_event)

    def admit(self, peer_host: str) -> CloseReason | None:
        """A new connection from ``peer_host``: None to keep it (then counted as open and
        unauthenticated), else why it is refused."""
        known = peer_host in self.known_peers
        general = max(self.max_connections - self.limits.reserved_for_known, 1)
        if self.open >= self.max_connections or (self.open >= general and not known):
            return CloseReason.CONNECTION_LIMIT
        if self.unauthenticated >= self.limits.max_unauthenticated and not known:
            return CloseReason.UNAUTHENTICATED_LIMIT
        self.open += 1
        self.unauthenticated += 1
        return None

    def authenticated(self, peer_host: str) -> None:
        """The connection's first message passed its MAC check."""
        self.unauthenticated -= 1
        self.known_peers.add(peer_host)

    def closed(self, was_authenticated: bool) -> None:
        self.open -= 1
        if not was_authenticated:
            self.unauthenticated -= 1

    def report(self, reason: CloseReason, peer: object) -> None:
        """Count ``reason`` and write its (rate-limited) line."""
        if self.on_event is not None:
            self.on_event(reason)
        self._log.warning(
            reason.value,
            "link connection from %s %s (%d open, %d not authenticated, limit %d)",
            peer,
            _TEXT[reason],
            self.open,
            self.unauthenticated,
            self.max_connections,
        )
