"""A running host with its ops app and operators, and an HTTP client that keeps the admin
cookie, for the admin API tests (real sockets, both databases)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from host.admin.operators import create_operator
from host.app import Host
from host.config import HostConfig
from tests.host.conftest import Clock

PASSWORDS = {
    "vera": "viewer-password-1",
    "otto": "operator-password-2",
    "ada": "admin-password-3",
}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}


def add_operators(host: Host, now: dt.datetime) -> None:
    with host.sessions.begin() as session:
        for name, role in ROLES.items():
            create_operator(session, name, role, PASSWORDS[name], rounds=4, now=now)


@dataclass
class AdminClient:
    """One browser: a cookie jar, and the CSRF token its login returned."""

    base: str
    http: aiohttp.ClientSession
    csrf: str = ""
    last: dict[str, Any] = field(default_factory=dict)

    async def login(self, name: str, password: str | None = None) -> tuple[int, Any]:
        status, body = await self.call(
            "POST", "/admin/api/login", {"name": name, "password": password or PASSWORDS[name]}
        )
        if status == 200:
            self.csrf = body["csrf_token"]
        return status, body

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: str | None = None,
        raw: bool = False,
    ) -> tuple[int, Any]:
        headers = {}
        token = self.csrf if csrf is None else csrf
        if method not in ("GET", "HEAD") and token:
            headers["X-CSRF-Token"] = token
        async with self.http.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            if raw:
                return response.status, await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", path, body if body is not None else {}, **kw)


@dataclass
class AdminRig:
    host: Host
    base: str
    clock: Clock
    clients: list[AdminClient] = field(default_factory=list)

    async def client(self, name: str | None = None) -> AdminClient:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        client = AdminClient(self.base, http)
        self.clients.append(client)
        if name is not None:
            status, body = await client.login(name)
            assert status == 200, body
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.http.close()


@contextlib.asynccontextmanager
async def running_admin(
    config: HostConfig, clock: Clock, *, link: bool = True
) -> AsyncIterator[AdminRig]:
    """The host (with its link unless not ``link``, and its ops app) with the three
    operators; its clock is the test's."""
    host = Host(config, clock=clock)
    add_operators(host, clock())
    if link:
        await host.start("127.0.0.1", 0)
    port = await host.start_ops("127.0.0.1", 0)
    rig = AdminRig(host, f"http://127.0.0.1:{port}", clock)
    try:
        yield rig
    finally:
        await rig.close()
        await host.close()


@pytest.fixture
async def admin(seeded_config: HostConfig, clock: Clock) -> AsyncIterator[AdminRig]:
    """The host (link and ops app) on a seeded database with three operators: vera (viewer),
    otto (operator), ada (admin); its clock is the test's."""
    async with running_admin(seeded_config, clock) as rig:
        yield rig
