"""The hot path's database connections (``host.bank.fastpath``): ``size`` autocommit psycopg
``AsyncConnection``s, made in the background and handed out first come, first served, each
driven at the libpq level (``HotConnection``) for the hot path's one call per request.

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

``HotConnection.call``: psycopg's async cursor spent about 165 us of CPU per call (against
68 us for the same call sync): a reader added and removed and a future made per wait, an
asyncio lock, the query's conversion, the dumpers, the prepared-statement bookkeeping. Here
the statement is prepared once per connection, its parameters go in as text (the caller
makes them), the socket's reader is registered once for the connection's life and the
results are loaded by psycopg's own ``Transformer`` (its C version with psycopg-binary);
errors are psycopg's (``psycopg.errors.error_from_result``: the same classes and SQLSTATEs
the cursor raises, ``UniqueViolation`` and the rest). A call cancelled or failed mid-way
leaves its connection not ``fit``: ``put`` closes and replaces it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import Transformer as RowLoader
from psycopg.adapt import Transformer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import ConnStatus, ExecStatus, TransactionStatus
from psycopg.pq.abc import PGconn, PGresult
from psycopg_pool import PoolClosed, PoolTimeout

__all__ = ["APPLICATION_NAME", "ConnectionQueue", "HotConnection"]

log = logging.getLogger(__name__)

# The pause between attempts to connect while the server does not answer: first, at most.
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0
MAX_LIFETIME_SECONDS = 3600.0
# How the connections show in pg_stat_activity, unless DATABASE_URL names them otherwise.
APPLICATION_NAME = "atm-host-fastpath"

_IDLE = TransactionStatus.IDLE
_BAD = ConnStatus.BAD
_FATAL_ERROR = ExecStatus.FATAL_ERROR
_TUPLES_OK = ExecStatus.TUPLES_OK


class HotConnection:
    """One autocommit connection, one call at a time: prepared statements executed with
    text parameters, answered on a reader registered once for the connection's life."""

    __slots__ = (
        "_encoding",
        "_fd",
        "_loop",
        "_pgconn",
        "_reading",
        "_results",
        "_statements",
        "_waiter",
        "conn",
        "expires",
    )

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop, expires: float
    ) -> None:
        self.conn = conn
        self.expires = expires
        self._loop = loop
        self._pgconn = pgconn = conn.pgconn
        self._encoding = conn.info.encoding
        # The statements prepared on this connection, each with the Transformer that loads
        # its rows (None until the first rows came: its loaders are looked up from those).
        self._statements: dict[bytes, RowLoader | None] = {}
        # The call in flight: its results so far and who waits for them.
        self._results: list[PGresult] = []
        self._waiter: asyncio.Future[list[PGresult]] | None = None
        self._fd = pgconn.socket
        loop.add_reader(self._fd, self._readable)
        self._reading = True

    @property
    def pgconn(self) -> PGconn:
        return self._pgconn

    @property
    def closed(self) -> bool:
        return self._pgconn.status == _BAD

    @property
    def fit(self) -> bool:
        """Sound, no call in flight, no transaction open: fit for the next request."""
        pgconn = self._pgconn
        return self._waiter is None and pgconn.status != _BAD and pgconn.transaction_status == _IDLE

    async def call(
        self, name: bytes, query: bytes, params: Sequence[bytes | None]
    ) -> tuple[Any, ...] | None:
        """Execute ``query`` (``$1``... placeholders; prepared as ``name`` on first use)
        with ``params`` as text; its first row, or None. Raises psycopg's errors."""
        pgconn = self._pgconn
        statements = self._statements
        if name not in statements:
            pgconn.send_prepare(name, query)
            self._check(await self._answer())
            statements[name] = None
        pgconn.send_query_prepared(name, params)
        result = self._check(await self._answer())
        if result.status != _TUPLES_OK or result.ntuples == 0:
            return None
        tx = statements[name]
        if tx is None:
            # The first rows of this statement: its loaders looked up (then kept).
            tx = Transformer(self.conn)
            tx.set_pgresult(result)
            statements[name] = tx
        else:
            tx.set_pgresult(result, set_loaders=False)
        row: tuple[Any, ...] = tx.load_row(0, tuple)
        return row

    async def ping(self) -> None:
        """An empty query: raises when the connection does not work."""
        self._pgconn.send_query(b"")
        self._check(await self._answer())

    async def execute(self, query: bytes) -> None:
        """A statement without parameters or rows (tests: leave a transaction open)."""
        self._pgconn.send_query(query)
        self._check(await self._answer())

    async def close(self) -> None:
        self._stop_reading()
        await self.conn.close()

    # -- inside ----------------------------------------------------------------------------
    async def _answer(self) -> list[PGresult]:
        """The results of the command just sent."""
        if self._pgconn.flush():
            await self._flush()
        waiter: asyncio.Future[list[PGresult]] = self._loop.create_future()
        self._waiter = waiter
        if self._reading:
            # Results read while the command was being flushed wait in libpq's buffer.
            self._collect(waiter)
        else:
            self._readable()  # the socket failed before: libpq tells why
        return await waiter

    async def _flush(self) -> None:
        """Rare: the socket took only part of the command."""
        loop, fd = self._loop, self._fd
        while self._pgconn.flush():
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(fd, _wake, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)

    def _readable(self) -> None:
        try:
            self._pgconn.consume_input()
        except psycopg.OperationalError as exc:
            # Gone (server restart, killed backend): stop watching its socket. A call in
            # flight gets the server's own error when one came first (as psycopg's fetch).
            self._stop_reading()
            waiter, self._waiter = self._waiter, None
            results, self._results = self._results, []
            if waiter is not None and not waiter.done():
                if any(result.status == _FATAL_ERROR for result in results):
                    waiter.set_result(results)
                else:
                    waiter.set_exception(exc)
            return
        waiter = self._waiter
        if waiter is not None:
            self._collect(waiter)

    def _collect(self, waiter: asyncio.Future[list[PGresult]]) -> None:
        pgconn = self._pgconn
        results = self._results
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                self._waiter = None
                self._results = []
                if not waiter.done():  # else cancelled: put() replaces this connection
                    waiter.set_result(results)
                return
            results.append(result)

    def _check(self, results: list[PGresult]) -> PGresult:
        for result in results:
            if result.status == _FATAL_ERROR:
                raise pg_errors.error_from_result(result, encoding=self._encoding)
        if not results:
            raise psycopg.InterfaceError("the server sent no result")
        return results[-1]

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


Connection = HotConnection


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
        if not conn.fit:
            # Broken, or left mid-call or in a transaction: replaced, never reused.
            status = TransactionStatus(conn.pgconn.transaction_status).name
            log.info("closing a hot-path connection returned %s", status)
            self._drop(conn)
            self._fill()
            return
        loop = self._loop
        assert loop is not None
        if conn.expires < loop.time():
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
                await conn.ping()
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
        conn: psycopg.AsyncConnection[Any] | None = None
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
        self._hand(HotConnection(conn, loop, loop.time() + self._max_lifetime))
