"""The operators' HTTP API (aiohttp), on its own port (``OPS_PORT``), inside ``atm host``.

Routes (a table, below): ``GET /health`` and ``GET /ready`` need no token; everything else
needs ``Authorization: Bearer $OPS_API_TOKEN`` (compared in constant time; without a
configured token every protected route answers 401). Errors are JSON ``{"error": "..."}``:
400 bad input, 401 no or wrong token, 404 unknown account, job or route, 409 statement not
ready, 503 database unreachable. Database work runs in threads, never on the event loop.

- ``GET /health``: the process answers.
- ``GET /ready``: the database answers ``SELECT 1`` and its schema is at the newest migration
  (503 otherwise, saying which).
- ``GET /metrics``: Prometheus text exposition.
- ``POST /statements`` ``{"account": N, "from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}``: 202 with
  the job; ``GET /statements/{id}``: its status; ``GET /statements/{id}/pdf``: the PDF.
- ``GET /accounts/{number}``: the account; ``GET /accounts/{number}/entries?limit=N``: its
  newest entries (read-only views).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from host.admin.routes import admin_routes
from host.admin.web import ADMIN, AdminContext, admin_errors
from host.bank.models import Account, Card, CardSession, Customer, Entry, Posting, StatementJob
from host.bank.statements import (
    StatementStore,
    StatementWorker,
    job_view,
    parse_period,
    request_statement,
)
from host.config import HostConfig
from host.db import schema_problem
from host.errors import BadRequest, NotFound, StatementError
from host.metrics import CONTENT_TYPE, HostMetrics

__all__ = ["OPS", "OpsContext", "create_ops_app"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = frozenset({"/health", "/ready"})
MAX_ENTRIES = 500


@dataclass
class OpsContext:
    config: HostConfig
    sessions: sessionmaker[Session]
    metrics: HostMetrics
    store: StatementStore
    worker: StatementWorker | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


OPS = web.AppKey("ops", OpsContext)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors to HTTP errors, in one place; every error body is JSON."""
    try:
        return await handler(request)
    except NotFound as exc:
        return _error(404, str(exc))
    except BadRequest as exc:
        return _error(400, str(exc))
    except StatementError as exc:
        return _error(500, str(exc))
    except SQLAlchemyError as exc:
        log.warning("ops API: database error: %s", type(exc).__name__)
        return _error(503, "database unavailable")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason)
        raise


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    # /admin/ has its own guard (operator sessions, CSRF, roles: host/admin/web.py).
    if request.path in PUBLIC or request.path == "/admin" or request.path.startswith("/admin/"):
        return await handler(request)
    expected = request.app[OPS].config.ops_api_token
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    # Compare in constant time, and compare even when no token is configured, so the
    # answer's timing says nothing about either.
    good = hmac.compare_digest(presented.strip().encode(), (expected or "\0").encode())
    if not expected or scheme.lower() != "bearer" or not good:
        return web.json_response(
            {"error": "a valid bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="atm-host-ops"'},
        )
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _ping(sessions: sessionmaker[Session]) -> str | None:
    """``SELECT 1``, then why the schema cannot serve this code (None when it can)."""
    with sessions() as session:
        session.execute(text("SELECT 1"))
        return schema_problem(session.connection())


async def ready(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    try:
        problem = await asyncio.wait_for(asyncio.to_thread(_ping, ctx.sessions), 5)
    except (SQLAlchemyError, TimeoutError) as exc:
        log.warning("not ready: database unreachable (%s)", type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    if problem is not None:
        # Serving on an old schema would fail every request: not ready until migrated.
        log.warning("not ready: the database %s (run `atm db upgrade`)", problem)
        return web.json_response(
            {"status": "unavailable", "database": f"{problem}: run `atm db upgrade`"}, status=503
        )
    return web.json_response({"status": "ready", "database": "ok"})


def _refresh_gauges(ctx: OpsContext) -> None:
    now = ctx.clock()
    idle = now - dt.timedelta(seconds=ctx.config.session_timeout_seconds)
    with ctx.sessions() as session:
        ctx.metrics.active_sessions.set(
            session.scalar(
                select(func.count()).select_from(CardSession).where(CardSession.last_used_at > idle)
            )
            or 0
        )
        ctx.metrics.locked_cards.set(
            session.scalar(select(func.count()).select_from(Card).where(Card.locked_until > now))
            or 0
        )
        counts = dict(
            session.execute(
                select(StatementJob.status, func.count()).group_by(StatementJob.status)
            ).all()
        )
        for status in ("queued", "running", "done", "failed"):
            ctx.metrics.statement_jobs.labels(status=status).set(counts.get(status, 0))


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    try:
        await asyncio.to_thread(_refresh_gauges, ctx)
    except SQLAlchemyError as exc:  # counters still worth serving; gauges keep old values
        log.warning("metrics: cannot read the database (%s)", type(exc).__name__)
    return web.Response(body=ctx.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def statement_request(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    body = await _json_body(request)
    account = body.get("account")
    if not isinstance(account, str) or not account:
        raise BadRequest("'account' (an account number) is required")
    start, end = parse_period(str(body.get("from", "")), str(body.get("to", "")))

    def queue() -> dict[str, Any]:
        with ctx.sessions.begin() as session:
            job = request_statement(session, account, start, end, now=ctx.clock())
            return job_view(job)

    view = await asyncio.to_thread(queue)
    if ctx.worker is not None:
        ctx.worker.wake.set()
    view["links"] = {"self": f"/statements/{view['job']}", "pdf": f"/statements/{view['job']}/pdf"}
    return web.json_response(view, status=202)


def _job_id(request: web.Request) -> int:
    raw = request.match_info["job_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"no statement job {raw}")
    return int(raw)


def _load_job(ctx: OpsContext, job_id: int) -> tuple[dict[str, Any], str]:
    with ctx.sessions() as session:
        job = session.get(StatementJob, job_id)
        if job is None:
            raise NotFound(f"no statement job {job_id}")
        return job_view(job), job.location


async def statement_status(request: web.Request) -> web.Response:
    view, _ = await asyncio.to_thread(_load_job, request.app[OPS], _job_id(request))
    return web.json_response(view)


async def statement_pdf(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    view, location = await asyncio.to_thread(_load_job, ctx, _job_id(request))
    if not view["ready"]:
        return web.json_response(
            {"error": f"statement job {view['job']} is {view['status']}", **view}, status=409
        )
    pdf = await asyncio.to_thread(ctx.store.load, location)
    name = location.rsplit("/", 1)[-1]
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _account(session: Session, number: str) -> Account:
    account = session.scalar(select(Account).where(Account.number == number))
    if account is None:
        raise NotFound(f"no account {number}")
    return account


async def account_view(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    number = request.match_info["number"]

    def load() -> dict[str, Any]:
        with ctx.sessions() as session:
            account = _account(session, number)
            customer = session.get(Customer, account.customer_id) if account.customer_id else None
            return {
                "number": account.number,
                "kind": account.kind,
                "customer": customer.name if customer else None,
                "currency": account.currency,
                "balance_cents": account.balance_cents,
            }

    return web.json_response(await asyncio.to_thread(load))


async def entries_view(request: web.Request) -> web.Response:
    ctx = request.app[OPS]
    number = request.match_info["number"]
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ENTRIES:
        raise BadRequest(f"limit must be 1..{MAX_ENTRIES}")
    limit = int(raw)

    def load() -> dict[str, Any]:
        with ctx.sessions() as session:
            account = _account(session, number)
            rows = session.execute(
                select(Entry, Posting)
                .join(Posting, Entry.posting_id == Posting.id)
                .where(Entry.account_id == account.id)
                .order_by(Entry.created_at.desc(), Entry.id.desc())
                .limit(limit)
            ).all()
            return {
                "account": account.number,
                "balance_cents": account.balance_cents,
                "entries": [
                    {
                        "id": entry.id,
                        "posting": posting.id,
                        "kind": posting.kind,
                        "description": posting.description,
                        "amount_cents": entry.amount_cents,
                        "at": entry.created_at.isoformat(),
                        "terminal_id": posting.terminal_id,
                        "stan": posting.stan,
                        "rrn": posting.rrn,
                        "reverses": posting.reverses_id,
                    }
                    for entry, posting in rows
                ],
            }

    return web.json_response(await asyncio.to_thread(load))


ROUTES = [
    web.get("/health", health),
    web.get("/ready", ready),
    web.get("/metrics", metrics),
    web.post("/statements", statement_request),
    web.get("/statements/{job_id}", statement_status),
    web.get("/statements/{job_id}/pdf", statement_pdf),
    web.get("/accounts/{number}", account_view),
    web.get("/accounts/{number}/entries", entries_view),
]


def create_ops_app(ctx: OpsContext) -> web.Application:
    # The error middleware sits outside auth, so a 401 and a 404 look alike (JSON).
    # Snapshot imports arrive as one JSON body: allow a few megabytes.
    app = web.Application(
        middlewares=[_errors, admin_errors, _auth], client_max_size=16 * 1024 * 1024
    )
    app[OPS] = ctx
    app[ADMIN] = AdminContext(ctx.sessions, ctx.config, lambda: ctx.clock())
    app.add_routes(ROUTES)
    app.add_routes(admin_routes())
    return app
