"""The hot path's database connections (``host.bank.fastpath``): ``size`` autocommit psycopg
``AsyncConnection``s, made in the background, each driven at the libpq level in pipeline
mode (``HotConnection``) and lent to up to ``depth`` requests at a time, the least lent
first.

psycopg_pool's ``getconn``/``putconn`` did the same for the hot path at several times the CPU
(an asyncio lock, statistics, a log call and a connection check per hand-out; a task and a
condition per waiting request), and a semaphore in front of it plus ``asyncio.timeout`` for
its acquire deadline cost as much again. Here a connection with room is handed out with no
await, a returned one goes straight to the oldest waiting request, and all waiting requests
share one timer (their deadlines come in the order they queued: the timer is set for the
oldest).

What stays as with the pool:

- at most ``size`` connections; a request that finds none with room waits at most
  ``timeout`` seconds, then gets ``PoolTimeout`` (``saturated`` tells the caller whether all
  were busy: an overloaded host, or fewer than ``size`` could be made: the database cannot
  be reached);
- a returned connection is lent again only if it is sound (and, with no call in flight, its
  transaction status ``IDLE``); a broken one (server restart, killed backend), one whose call
  was cancelled mid-way or one left in a transaction is lent no more, closed once no
  request holds it, and a new one made in the background, retried with a growing pause
  while the server does not answer;
- ``check()`` tries every connection no request holds and replaces those that fail;
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
the cursor raises, ``UniqueViolation`` and the rest).

Pipelining: each call is followed by its own Sync, so it is its own implicit transaction
as in autocommit, and an error aborts that call alone; the answers come in order. The
backend goes from one call to the next without waiting for the host, and the host reads
several answers per wake-up when it is busy. A call that waits on a row lock holds up the
calls queued behind it on its connection (never the other way round: no call holds a lock
past its own Sync), which is why requests go to the least lent connection. A backend killed
mid-pipeline fails every call in flight on it; each request is tried once more on a new
connection (``fastpath``), and the function's request record keeps any of them from being
applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
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
_PIPELINE_SYNC = ExecStatus.PIPELINE_SYNC


class HotConnection:
    """One autocommit connection in pipeline mode: prepared statements executed with text
    parameters, each call followed by its own Sync (its own implicit transaction: an error
    touches that call alone), answered in order on a reader registered once for the
    connection's life. ``lent``: the requests holding it (``ConnectionQueue``).
    ``prepared`` False: nothing is prepared on the server, each call is parsed afresh as the
    unnamed statement (for a pooler in transaction mode that cannot carry a prepared
    statement to the next server connection it hands out)."""

    __slots__ = (
        "_encoding",
        "_fd",
        "_loop",
        "_pending",
        "_pgconn",
        "_prepared",
        "_reading",
        "_results",
        "_statements",
        "abandoned",
        "conn",
        "expires",
        "lent",
    )

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        loop: asyncio.AbstractEventLoop,
        expires: float,
        *,
        prepared: bool = True,
    ) -> None:
        self.conn = conn
        self._prepared = prepared
        self.expires = expires
        self.lent = 0
        # A call on it was cancelled mid-way (its request went): no new requests get it.
        self.abandoned = False
        self._loop = loop
        self._pgconn = pgconn = conn.pgconn
        self._encoding = conn.info.encoding
        # The statements prepared on this connection, each with the Transformer that loads
        # its rows (None until the first rows came: its loaders are looked up from those).
        self._statements: dict[bytes, RowLoader | None] = {}
        # The calls sent and not yet answered, oldest first, and the oldest one's results
        # so far (a call's results end with its Sync's).
        self._pending: deque[asyncio.Future[list[PGresult]]] = deque()
        self._results: list[PGresult] = []
        pgconn.enter_pipeline_mode()
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
    def in_flight(self) -> int:
        """Calls sent and not yet answered."""
        return len(self._pending)

    @property
    def fit(self) -> bool:
        """Sound and not abandoned, and when no call is in flight no transaction open: fit
        for more requests."""
        pgconn = self._pgconn
        return (
            not self.abandoned
            and pgconn.status != _BAD
            and (bool(self._pending) or pgconn.transaction_status == _IDLE)
        )

    async def call(
        self, name: bytes, query: bytes, params: Sequence[bytes | None]
    ) -> tuple[Any, ...] | None:
        """Execute ``query`` (``$1``... placeholders; prepared as ``name`` on first use)
        with ``params`` as text; its first row, or None. Raises psycopg's errors."""
        for param in params:
            # libpq reads a text parameter up to its first NUL: refused, as psycopg's
            # dumpers refuse it, never cut short (a STAN or an account number cut at a NUL
            # would be another one).
            if param is not None and b"\x00" in param:
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        pgconn = self._pgconn
        statements = self._statements
        prepared: asyncio.Future[list[PGresult]] | None = None
        if not self._prepared:
            pgconn.send_query_params(query, params)
        else:
            if name not in statements:
                pgconn.send_prepare(name, query)
                prepared = self._sent()
                statements[name] = None  # later calls queue behind the Parse
            pgconn.send_query_prepared(name, params)
        answer = self._sent()
        if pgconn.flush():
            await self._flush()
        try:
            if prepared is not None:
                try:
                    self._check(await prepared)
                except psycopg.Error:
                    statements.pop(name, None)
                    with contextlib.suppress(psycopg.Error):
                        await answer  # fails too (no such statement); taken, not left
                    raise
            result = self._check(await answer)
        except asyncio.CancelledError:
            self.abandoned = True
            raise
        if result.status != _TUPLES_OK or result.ntuples == 0:
            return None
        tx = statements.get(name)
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
        """A trivial query: raises when the connection does not work."""
        await self.execute(b"SELECT 1")

    async def execute(self, query: bytes) -> None:
        """A statement without parameters (``ping``; tests: leave a transaction open)."""
        self._pgconn.send_query_params(query, None)
        answer = self._sent()
        if self._pgconn.flush():
            await self._flush()
        try:
            self._check(await answer)
        except asyncio.CancelledError:
            self.abandoned = True
            raise

    async def close(self) -> None:
        self._stop_reading()
        await self.conn.close()

    # -- inside ----------------------------------------------------------------------------
    def _sent(self) -> asyncio.Future[list[PGresult]]:
        """The command just queued ends its own transaction (a Sync); its results will come
        to the future returned."""
        self._pgconn.pipeline_sync()
        answer: asyncio.Future[list[PGresult]] = self._loop.create_future()
        self._pending.append(answer)
        if not self._reading:
            self._readable()  # the socket failed before: libpq tells why
        return answer

    async def _flush(self) -> None:
        """Rare: the socket took only part of the commands."""
        loop, fd = self._loop, self._fd
        while self._pgconn.flush():
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(fd, _wake, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)
        # Results read meanwhile wait in libpq's buffer.
        self._collect()

    def _readable(self) -> None:
        try:
            self._pgconn.consume_input()
        except psycopg.OperationalError as exc:
            # Gone (server restart, killed backend): stop watching its socket. The oldest
            # call gets the server's own error when one came first (as psycopg's fetch),
            # every other call in flight this one.
            self._stop_reading()
            pending, self._pending = self._pending, deque()
            results, self._results = self._results, []
            if pending and any(result.status == _FATAL_ERROR for result in results):
                _settle(pending.popleft(), results)
            for answer in pending:
                if not answer.done():
                    answer.set_exception(exc)
                    answer.exception()  # a cancelled caller's is not left unretrieved
            return
        self._collect()

    def _collect(self) -> None:
        pgconn = self._pgconn
        pending = self._pending
        results = self._results
        ended = False  # libpq said "no more results" for a command; twice: nothing waits
        while pending and not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                if ended:
                    break
                ended = True
                continue
            ended = False
            if result.status == _PIPELINE_SYNC:
                self._results = []
                _settle(pending.popleft(), results)
                results = self._results
            else:
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


def _settle(answer: asyncio.Future[list[PGresult]], results: list[PGresult]) -> None:
    if not answer.done():  # else cancelled: its results are dropped
        answer.set_result(results)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ConnectionQueue:
    """``size`` autocommit connections to ``conninfo``, each lent to at most ``depth``
    requests at a time (their calls pipelined); ``get`` waits at most ``timeout``."""

    def __init__(
        self,
        conninfo: str,
        size: int,
        *,
        timeout: float,
        depth: int = 1,
        max_lifetime: float = MAX_LIFETIME_SECONDS,
        prepared: bool = True,
    ) -> None:
        self.size = max(1, size)
        self.prepared = prepared
        self.depth = max(1, depth)
        self.timeout = timeout
        named = "application_name" in conninfo_to_dict(conninfo)
        self._conninfo = (
            conninfo if named else make_conninfo(conninfo, application_name=APPLICATION_NAME)
        )
        self._max_lifetime = max_lifetime
        # The connections in use (made, not retired), in the order they were made.
        self._live: list[HotConnection] = []
        # Requests waiting for a connection, oldest first: (deadline, future).
        self._waiters: deque[tuple[float, asyncio.Future[HotConnection]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._connecting = 0
        # Tasks making connections (cancelled by close) and closing dropped ones (awaited).
        self._connectors: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._closed = True
        # Connections handed out and not yet returned (a connection lent to n requests
        # counts n times).
        self.lent = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def saturated(self) -> bool:
        """Every connection made, each lent ``depth`` times: an overloaded host (rather
        than a database that cannot be reached)."""
        return len(self._live) >= self.size and self.lent >= self.size * self.depth

    def open(self) -> None:
        """Start making the connections (in the background); requests may wait for them."""
        if self._closed:
            self._loop = asyncio.get_running_loop()
            self._closed = False
            self._fill()

    async def get(self) -> HotConnection:
        """A connection for one request; give it back with ``put``."""
        if self._closed:
            raise PoolClosed("the hot path's connections are closed")
        conn = self._least_lent()
        if conn is not None:
            conn.lent += 1
            self.lent += 1
            return conn
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[HotConnection] = loop.create_future()
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

    def put(self, conn: HotConnection) -> None:
        """Give back a connection ``get`` handed out."""
        conn.lent -= 1
        self.lent -= 1
        if self._closed or conn not in self._live:
            if conn.lent == 0:
                self._drop(conn)  # retired meanwhile: closed once no request holds it
            return
        if not conn.fit:
            # Broken, or a call on it cancelled mid-way, or a transaction left open:
            # replaced, never lent again (closed once no other request holds it).
            status = TransactionStatus(conn.pgconn.transaction_status).name
            log.info("closing a hot-path connection returned %s", status)
            self._retire(conn)
            return
        loop = self._loop
        assert loop is not None
        if conn.expires < loop.time():
            self._retire(conn)
            return
        self._hand(conn)

    async def check(self) -> None:
        """Try every connection no request holds; those that fail are replaced (in the
        background)."""
        for conn in [c for c in self._live if c.lent == 0]:
            conn.lent += 1
            self.lent += 1
            try:
                await conn.ping()
            except psycopg.Error as exc:
                log.info("hot-path connection failed its check: %s", type(exc).__name__)
                self._retire(conn)
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
        live, self._live = self._live, []
        for conn in live:
            if conn.lent == 0:
                await conn.close()
        connectors = list(self._connectors)
        for task in connectors:
            task.cancel()
        await asyncio.gather(*connectors, *self._closers, return_exceptions=True)

    # -- inside ----------------------------------------------------------------------------
    def _least_lent(self) -> HotConnection | None:
        """The sound connection lent to the fewest requests, if one is below ``depth``."""
        best: HotConnection | None = None
        depth = self.depth
        for conn in self._live:
            lent = conn.lent
            if lent < depth and (best is None or lent < best.lent):
                if conn.closed:  # its socket failed while idle: replaced at once
                    self._retire(conn)
                    return self._least_lent()
                best = conn
                if lent == 0:
                    break
        return best

    def _hand(self, conn: HotConnection) -> None:
        """To the oldest requests still waiting, as many as ``conn`` may take."""
        waiters = self._waiters
        while waiters and conn.lent < self.depth:
            _, future = waiters.popleft()
            if not future.done():
                conn.lent += 1
                self.lent += 1
                future.set_result(conn)

    def _retire(self, conn: HotConnection) -> None:
        """``conn`` is lent no more; closed now if no request holds it, else on its last
        return; a new one is made in its place."""
        if conn in self._live:
            self._live.remove(conn)
            self._fill()
        if conn.lent == 0:
            self._drop(conn)

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

    def _drop(self, conn: HotConnection) -> None:
        self._spawn(conn.close(), self._closers)

    def _fill(self) -> None:
        """Start making the connections missing (those in use and being made count)."""
        missing = self.size - len(self._live) - self._connecting
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
        hot = HotConnection(conn, loop, loop.time() + self._max_lifetime, prepared=self.prepared)
        self._live.append(hot)
        self._hand(hot)
