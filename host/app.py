"""Assembles a running host from a ``HostConfig``: engine, services, worker pools, link
server, and (for ``atm host``) the ops API and the statement worker."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import select

from host.admin.web import ADMIN
from host.bank.fastpath import FastAuthorizer, libpq_conninfo
from host.bank.models import Account
from host.bank.pins import PinVerifier
from host.bank.seed import seed
from host.bank.services import AuthorizationService
from host.bank.statements import StatementStore, StatementWorker
from host.config import HostConfig
from host.db import create_engine_for, is_sqlite, migrate, session_factory
from host.errors import NotFound
from host.link.server import LinkServer, StepHook
from host.metrics import HostMetrics
from host.ops import OpsContext, create_ops_app
from protocol.link import MessageTap

__all__ = ["Host", "hot_path_connections", "worker_threads"]

log = logging.getLogger(__name__)


def worker_threads() -> int:
    """The database worker threads of a host on PostgreSQL: two per core, at least two."""
    return max(2, (os.cpu_count() or 1) * 2)


def hot_path_connections() -> int:
    """The hot path's connections to PostgreSQL: twice the worker threads."""
    return 2 * worker_threads()


class Host:
    def __init__(
        self,
        config: HostConfig,
        *,
        tap: MessageTap | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        steps: StepHook | None = None,
    ) -> None:
        """``steps``: a test harness's hook into the link server (``host.link.server``)."""
        self.config = config
        self.engine = create_engine_for(
            config.database_url, prepared_statements=config.database_prepared_statements
        )
        self.sessions = session_factory(self.engine)
        # SQLite has one writer at a time: one worker keeps it simple and correct.
        self.workers = 1 if is_sqlite(config.database_url) else worker_threads()
        self.executor = concurrent.futures.ThreadPoolExecutor(self.workers, "host-worker")
        # bcrypt gets a pool of its own, one thread per core, and runs before the database
        # transaction (the link server awaits it): PIN checks never hold a database worker,
        # connection or row lock, so requests that need no PIN keep their latency.
        self.pins = PinVerifier(pepper=config.pin_pepper, secret_key=config.secret_key)
        self.metrics = HostMetrics()
        self.service = AuthorizationService(
            self.sessions, config, clock, pins=self.pins, metrics=self.metrics
        )
        self.store = StatementStore(config)
        self.worker = StatementWorker(self.sessions, self.store, clock=clock)
        self._ops_runner: web.AppRunner | None = None
        self._worker_thread: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self.ops_port: int | None = None
        self._clock = clock
        # PostgreSQL: inquiries, withdrawals and transfers take the hot path (one function
        # call on the event loop; host.bank.fastpath), on twice as many connections as
        # worker threads, each carrying up to PIPELINE_DEPTH pipelined calls (on 2 cores,
        # 8 x 4 served about 1.1x the rate of 4 x 8 and 16 x 2 no more: scripts.link_ab).
        self.fast: FastAuthorizer | None = None
        if not is_sqlite(config.database_url):
            self.fast = FastAuthorizer(
                self.service,
                libpq_conninfo(config.database_url),
                size=hot_path_connections(),
                prepared=config.database_prepared_statements,
            )
        self.server = LinkServer(
            self.service,
            self.executor,
            sessions=self.sessions,
            link_config=config.link,
            metrics=self.metrics,
            max_frame=config.max_frame,
            limits=config.link_limits,
            tap=tap,
            clock=clock,
            fast=self.fast,
            steps=steps,
        )

    def upgrade_and_seed(self) -> list[str]:
        migrate(self.config.database_url)
        with self.sessions.begin() as session:
            return seed(
                session,
                pin_pepper=self.config.pin_pepper,
                bcrypt_rounds=self.config.bcrypt_rounds,
            )

    def balance(self, account_number: str) -> int:
        with self.sessions() as session:
            account = session.scalar(select(Account).where(Account.number == account_number))
            if account is None:
                raise NotFound(f"no account {account_number}")
            return account.balance_cents

    async def start(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False
    ) -> int:
        for line in self.config.widened:
            log.warning("production-safety guard: %s", line)
        if self.fast is not None:
            await self.fast.open()
        await self.server.start(
            host or self.config.link_host,
            self.config.link_port if port is None else port,
            reuse_port=reuse_port,
        )
        return self.server.port

    async def start_ops(self, host: str | None = None, port: int | None = None) -> int:
        """Serve the ops API (``OPS_HOST``:``OPS_PORT`` unless given); returns the port."""
        ctx = OpsContext(self.config, self.sessions, self.metrics, self.store, self.worker)
        if self._clock is not None:
            ctx.clock = self._clock
        app = create_ops_app(ctx)
        app[ADMIN].push_switches = self.server.push_switches
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # HTTPS when OPS_TLS_CERT is set (host/config.py; production requires it).
        tls = self.config.ops_tls.context() if self.config.ops_tls is not None else None
        site = web.TCPSite(
            runner,
            host or self.config.ops_host,
            self.config.ops_port if port is None else port,
            ssl_context=tls,
        )
        await site.start()
        self._ops_runner = runner
        self.ops_port = int(runner.addresses[0][1])
        log.debug("ops API listening on %s:%d", host or self.config.ops_host, self.ops_port)
        return self.ops_port

    def start_worker(self, poll_seconds: float = 2.0) -> None:
        """Run the statement worker in a thread of this process."""
        self._worker_stop.clear()
        self._worker_thread = threading.Thread(
            target=self.worker.serve,
            args=(self._worker_stop, poll_seconds),
            name="statement-worker",
            daemon=True,
        )
        self._worker_thread.start()

    async def close(self) -> None:
        await self.server.close()
        if self.fast is not None:
            await self.fast.close()
        if self._ops_runner is not None:
            await self._ops_runner.cleanup()
            self._ops_runner = None
        if self._worker_thread is not None:
            self._worker_stop.set()
            self.worker.wake.set()
            await asyncio.to_thread(self._worker_thread.join)
            self._worker_thread = None
        self.executor.shutdown(wait=True)
        self.pins.close()
        await asyncio.to_thread(self.engine.dispose)
