"""The hot path's database connections (``host.bank.fastpath``): ``size`` autocommit psycopg
``AsyncConnection``s, made in the background and handed out first come, first served.

psycopg_pool's ``getconn``/``putconn`` did the same for the hot path at several times the CPU
(an asyncio lock, statistics, a log call and a connection check per hand-out; a task and a
condition per waiting request), and a semaphore in front of it plus ``asyncio.timeout`` for
its acquire deadline cost as much again. Here a free connection is handed out with no await,
a returned one goes straight to the oldest waiting request, and all waiting requests share one
timer (their deadlines come in the order they queued: the timer is set for the oldest).

What stays as with the pool:

- at most ``size`` connections; a request that finds none free waits at most ``timeout``
  seconds, then gets ``PoolTimeout`` (``lent`` tells the caller whether all were busy: an
  overloaded host, or fewer than ``size`` could be made: the database cannot be reached);
- a returned connection is kept only if it is idle and sound (its transaction status
  ``IDLE``); a broken one (server restart, killed backend) or one left mid-query (a cancelled
  request) is closed and a new one made in the background, retried with a growing pause
  while the server does not answer;
- ``check()`` tries every idle connection and replaces those that fail;
- connections older than ``max_lifetime`` are replaced when returned (the pool's default,
  an hour), so a backend's caches do not grow for ever;
- after ``close()`` every waiting and later request gets ``PoolClosed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg_pool import PoolClosed, PoolTimeout

__all__ = ["APPLICATION_NAME", "ConnectionQueue"]

log = logging.getLogger(__name__)

# The pause between attempts to connect while the server does not answer: first, at most.
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0
MAX_LIFETIME_SECONDS = 3600.0
# How the connections show in pg_stat_activity, unless DATABASE_URL names them otherwise.
APPLICATION_NAME = "atm-host-fastpath"

_IDLE = TransactionStatus.IDLE

Connection = psycopg.AsyncConnection[Any]


class ConnectionQueue:
    """``size`` autocommit connections to ``conninfo``; ``get`` waits at most ``timeout``."""

    def __init__(
        self,
        conninfo: str,
        size: int,
        *,
        timeout: float,
        max_lifetime: float = MAX_LIFETIME_SECONDS,
    ) -> None:
        self.size = max(1, size)
        self.timeout = timeout
        named = "application_name" in conninfo_to_dict(conninfo)
        self._conninfo = (
            conninfo if named else make_conninfo(conninfo, application_name=APPLICATION_NAME)
        )
        self._max_lifetime = max_lifetime
        self._idle: deque[Connection] = deque()
        # Requests waiting for a connection, oldest first: (deadline, future).
        self._waiters: deque[tuple[float, asyncio.Future[Connection]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._expires: dict[Connection, float] = {}
        self._connecting = 0
        # Tasks making connections (cancelled by close) and closing dropped ones (awaited).
        self._connectors: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._closed = True
        # Connections handed out and not yet returned.
        self.lent = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self) -> None:
        """Start making the connections (in the background); requests may wait for them."""
        if self._closed:
            self._loop = asyncio.get_running_loop()
            self._closed = False
            self._fill()

    async def get(self) -> Connection:
        """A connection for one request; give it back with ``put``."""
        if self._closed:
            raise PoolClosed("the hot path's connections are closed")
        idle = self._idle
        if idle:
            self.lent += 1
            return idle.popleft()
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[Connection] = loop.create_future()
        deadline = loop.time() + self.timeout
        self._waiters.append((deadline, future))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled after a connection was handed to it: the connection goes back.
            if future.done() and not future.cancelled() and future.exception() is None:
                self.put(future.result())
            raise

    def put(self, conn: Connection) -> None:
        """Give back a connection ``get`` handed out."""
        self.lent -= 1
        if self._closed:
            self._drop(conn)
            return
        status = conn.pgconn.transaction_status
        if status != _IDLE:
            # Broken, or left mid-query or in a transaction: replaced, never reused.
            log.info("closing a hot-path connection returned %s", TransactionStatus(status).name)
            self._drop(conn)
            self._fill()
            return
        loop = self._loop
        assert loop is not None
        if self._expires.get(conn, 0.0) < loop.time():
            self._drop(conn)
            self._fill()
            return
        self._hand(conn)

    async def check(self) -> None:
        """Try every idle connection; those that fail are replaced (in the background)."""
        conns = list(self._idle)
        self._idle.clear()
        self.lent += len(conns)
        for conn in conns:
            try:
                await conn.execute("")
            except psycopg.Error as exc:
                log.info("hot-path connection failed its check: %s", type(exc).__name__)
                await conn.close()
            self.put(conn)

    async def close(self) -> None:
        """Close every connection (those lent out when they are returned); waiting and later
        requests get ``PoolClosed``."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters, self._waiters = self._waiters, deque()
        for _, future in waiters:
            if not future.done():
                future.set_exception(PoolClosed("the hot path's connections are closed"))
        idle = list(self._idle)
        self._idle.clear()
        for conn in idle:
            self._expires.pop(conn, None)
            await conn.close()
        connectors = list(self._connectors)
        for task in connectors:
            task.cancel()
        await asyncio.gather(*connectors, *self._closers, return_exceptions=True)

    # -- inside ----------------------------------------------------------------------------
    def _hand(self, conn: Connection) -> None:
        """To the oldest request still waiting, else to the idle ones."""
        waiters = self._waiters
        while waiters:
            _, future = waiters.popleft()
            if not future.done():
                self.lent += 1
                future.set_result(conn)
                return
        self._idle.append(conn)

    def _expire(self) -> None:
        """The oldest waiting request's deadline may have passed (the timer's only job)."""
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        waiters = self._waiters
        while waiters:
            deadline, future = waiters[0]
            if future.done():
                waiters.popleft()
            elif deadline <= now:
                waiters.popleft()
                future.set_exception(PoolTimeout(f"no connection free within {self.timeout:.1f} s"))
            else:
                self._timer = loop.call_at(deadline, self._expire)
                return

    def _drop(self, conn: Connection) -> None:
        self._expires.pop(conn, None)
        self._spawn(conn.close(), self._closers)

    def _fill(self) -> None:
        """Start making the connections missing (lent, idle and being made count)."""
        missing = self.size - self.lent - len(self._idle) - self._connecting
        for _ in range(missing):
            self._connecting += 1
            self._spawn(self._connect(), self._connectors)

    @staticmethod
    def _spawn(coro: Any, tasks: set[asyncio.Task[None]]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _connect(self) -> None:
        pause = RETRY_FIRST_SECONDS
        conn: Connection | None = None
        try:
            while not self._closed:
                try:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                except psycopg.Error as exc:
                    log.debug("could not connect the hot path (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, RETRY_MAX_SECONDS)
                    continue
                break
        finally:
            self._connecting -= 1
        if conn is None:
            return
        if self._closed:
            await conn.close()
            return
        loop = self._loop
        assert loop is not None
        self._expires[conn] = loop.time() + self._max_lifetime
        self._hand(conn)
