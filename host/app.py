"""Assembles a running host from a ``HostConfig``: engine, services, worker pool, link server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
from collections.abc import Callable

from sqlalchemy import select

from host.config import HostConfig
from host.db import create_engine_for, is_sqlite, migrate, session_factory
from host.errors import NotFound
from host.models import Account
from host.seed import seed
from host.server import LinkServer
from host.services import AuthorizationService
from protocol.link import MessageTap

__all__ = ["Host"]

log = logging.getLogger(__name__)


class Host:
    def __init__(
        self,
        config: HostConfig,
        *,
        tap: MessageTap | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.config = config
        self.engine = create_engine_for(config.database_url)
        self.sessions = session_factory(self.engine)
        # SQLite has one writer at a time: one worker keeps it simple and correct.
        workers = 1 if is_sqlite(config.database_url) else max(2, (os.cpu_count() or 1) * 2)
        self.executor = concurrent.futures.ThreadPoolExecutor(workers, "host-worker")
        self.service = AuthorizationService(self.sessions, config, clock)
        self.server = LinkServer(
            self.service, self.executor, max_frame=config.max_frame, tap=tap, clock=clock
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

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        await self.server.start(
            host or self.config.link_host, self.config.link_port if port is None else port
        )
        return self.server.port

    async def close(self) -> None:
        await self.server.close()
        self.executor.shutdown(wait=True)
        await asyncio.to_thread(self.engine.dispose)
