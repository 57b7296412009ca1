"""The admin API (``/admin/api/...``) and the panel (``/admin/``) on the host's ops app.

Every route is an ``AdminRoute`` row: method, path, the least role that may call it, what it
does (for the OpenAPI description), and the handler. This module holds the machinery, the
session, dashboard and snapshot rows (``CORE_ROUTES``) and the panel's files;
``host.admin.operator_routes`` the operators, ``host.admin.bank_routes`` the bank operations;
``host.admin.routes`` joins them into ``ADMIN_ROUTES``. ``guarded`` wraps each handler with
the checks, in this order:

1. a session: the ``atm_admin`` cookie names a live operator session (401 otherwise; a
   session idle longer than ``ADMIN_SESSION_IDLE_SECONDS`` is gone);
2. on a change (any method but GET): the ``X-CSRF-Token`` header equals the session's CSRF
   token (403 otherwise), and a body, if any, is JSON;
3. a password change due (an admin set the password): only the routes marked
   ``before_password_change`` (the change itself, the session, logout) answer; 403 otherwise;
4. the role: viewer < operator < admin (403 when the operator's role is below the route's).

The cookie is HttpOnly, SameSite=Strict, path ``/admin``, and Secure in production. Login
counts failures and locks the operator after ``ADMIN_MAX_FAILED_LOGINS`` in a row. The ops
API's bearer token does not open these routes (it keeps opening the machine routes: metrics,
statements, account views); operators log in. Database work runs in threads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from host.admin import dashboard as dashboard_figures
from host.admin import operators as ops_auth
from host.admin import snapshot
from host.admin.models import Operator
from host.admin.operators import (
    AuthError,
    LoggedIn,
    LoginLocked,
    LoginRefused,
    OperatorView,
    SessionExpired,
)
from host.bank.audit import Actor, record
from host.config import Environment
from host.errors import BadRequest, ControlRefused, NotFound
from host.forwarded import client_address
from webpanel import StaticFiles, cross_site

__all__ = [
    "ADMIN",
    "COOKIE",
    "CORE_ROUTES",
    "AdminContext",
    "AdminRoute",
    "Caller",
    "Field",
    "Handler",
    "admin_errors",
]

log = logging.getLogger(__name__)

COOKIE = "atm_admin"
CSRF_HEADER = "X-CSRF-Token"
API = "/admin/api"
READS = frozenset({"GET", "HEAD"})
CHANGE_FIRST = "change your password first (POST /admin/api/password)"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
STATIC = StaticFiles(
    resources.files("host.admin") / "static", {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the logged-in operator and the client's address."""

    operator: OperatorView
    source: str
    csrf_token: str

    @property
    def actor(self) -> Actor:
        """The logged-in operator as the audit trail's actor."""
        return Actor(self.operator.name, self.operator.role, self.source)


Handler = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Field:
    """A body or query field, for the OpenAPI description (and the panel's forms)."""

    name: str
    kind: str = "string"  # string | integer | boolean
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class AdminRoute:
    method: str
    path: str  # below /admin/api
    role: str  # the least role allowed: viewer | operator | admin
    summary: str
    handler: Handler
    body: tuple[Field, ...] = ()
    query: tuple[Field, ...] = ()
    produces: str = "application/json"
    # Open to an operator who must change their password first (the change itself, the
    # session view, logout); every other route refuses them (403) until they have.
    before_password_change: bool = False

    @property
    def changes(self) -> bool:
        return self.method not in READS

    @property
    def url(self) -> str:
        return API + self.path


# -- the context the handlers need (set by host.ops) ----------------------------------------
@dataclass
class AdminContext:
    """What the admin routes need from the ops app (``host.ops.OpsContext`` provides it)."""

    sessions: Any  # sessionmaker[Session]
    config: Any  # HostConfig
    clock: Callable[[], dt.datetime]
    # Tells connected terminals at once that an operator stopped them (the link server's
    # push_switches; it also polls on its own). None when the ops app runs without a link.
    push_switches: Callable[[], Awaitable[Any]] | None = None


ADMIN = web.AppKey("admin", AdminContext)


def _ctx(request: web.Request) -> AdminContext:
    return request.app[ADMIN]


def _source(request: web.Request) -> str:
    """The client's address for the audit trail and the session row: the TCP peer, or behind
    a trusted proxy the address it forwarded (``OPS_TRUSTED_PROXIES``, host/forwarded.py)."""
    trusted = _ctx(request).config.ops_trusted_proxies
    forwarded = request.headers.getall("X-Forwarded-For", [])
    return f"web {client_address(request.remote, forwarded, trusted)}"


async def run_db(request: web.Request, work: Callable[[Session], Any], *, write: bool) -> Any:
    """``work(session)`` in a thread, in a transaction committed when ``write``."""
    ctx = _ctx(request)

    def job() -> Any:
        if write:
            with ctx.sessions.begin() as session:
                return work(session)
        with ctx.sessions() as session:
            return work(session)

    return await asyncio.to_thread(job)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        data, status=status, headers={**SECURITY_HEADERS, **(headers or {})}, dumps=_dumps
    )


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, status)


SMALL_BODY = 64 * 1024
SNAPSHOT_BODY = 16 * 1024 * 1024  # the ops app's client_max_size


async def json_body(request: web.Request, *, limit: int = SMALL_BODY) -> dict[str, Any]:
    """The JSON object in the body; a body over ``limit`` bytes is refused before it is read
    (the ops app accepts up to a snapshot's size, only the snapshot import needs that)."""
    if not request.can_read_body:
        return {}
    if request.content_length is None:
        raise web.HTTPLengthRequired()
    if request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    if request.content_type != "application/json":
        raise BadRequest("the body must be JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def text_field(
    body: Mapping[str, Any], name: str, *, required: bool = True, size: int = 200
) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"'{name}' is required")
        return ""
    if not isinstance(value, str) or len(value) > size:
        raise BadRequest(f"'{name}' must be a text of at most {size} characters")
    return value.strip()


def int_field(body: Mapping[str, Any], name: str, *, low: int = 0, high: int = 10**11) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a whole number {low}..{high}")
    return value


def cookie_token(request: web.Request) -> str:
    return request.cookies.get(COOKIE, "")


def _resume(request: web.Request) -> LoggedIn:
    ctx = _ctx(request)
    token = cookie_token(request)
    now = ctx.clock()

    def work() -> LoggedIn:
        # Commit even when the session has expired: it is deleted then.
        with ctx.sessions() as session:
            try:
                return ops_auth.resume_session(
                    session, token, now=now, idle_seconds=ctx.config.admin_session_idle_seconds
                )
            finally:
                session.commit()

    return work()


def guarded(route: AdminRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler behind the session, CSRF and role checks (module docstring)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            logged_in = await asyncio.to_thread(_resume, request)
        except SessionExpired as exc:
            return _error(401, str(exc))
        if route.changes:
            refused = _cross_site(request)
            if refused:
                return refused
            presented = request.headers.get(CSRF_HEADER, "")
            if not ops_auth.csrf_matches(logged_in.csrf_token, presented):
                log.warning(
                    "admin API: %s %s refused, missing or wrong CSRF token (%s)",
                    request.method,
                    request.path,
                    logged_in.operator.name,
                )
                return _error(403, f"a change needs the session's {CSRF_HEADER} header")
        if logged_in.operator.password_change_required and not route.before_password_change:
            return _error(403, CHANGE_FIRST)
        if not ops_auth.role_allows(logged_in.operator.role, route.role):
            return _error(
                403,
                f"{route.method} {route.url} needs the {route.role} role "
                f"(you are {logged_in.operator.role})",
            )
        caller = Caller(logged_in.operator, _source(request), logged_in.csrf_token)
        return await route.handler(request, caller)

    return handler


# -- sessions ------------------------------------------------------------------------------
def _session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    production = _ctx(request).config.environment is Environment.PRODUCTION
    response.set_cookie(
        COOKIE,
        token,
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=production,
    )


def _view(logged_in: LoggedIn, ctx: AdminContext) -> dict[str, Any]:
    return {
        "operator": {"name": logged_in.operator.name, "role": logged_in.operator.role},
        "csrf_token": logged_in.csrf_token,
        "idle_seconds": ctx.config.admin_session_idle_seconds,
        "password_change_required": logged_in.operator.password_change_required,
    }


def _audit_login(session: Session, name: str, source: str, outcome: str) -> None:
    """An audit row for a login attempt (the operator's role when the name is known)."""
    role = session.scalar(select(Operator.role).where(Operator.name == name)) or "system"
    record(session, Actor(name or "?", role, source), "operator.login", f"operator {name}"[:64],
           None, {"outcome": outcome})  # fmt: skip


def _cross_site(request: web.Request) -> web.Response | None:
    """403 for a request a page of another site made (``webpanel.cross_site``): the login
    CSRF defence (a login has no session token to check yet), and a second lock beside the
    CSRF token on every change."""
    why = cross_site(request, origin_required=False)
    if not why:
        return None
    log.warning("admin API: %s %s from another site refused (%s, %s)", request.method,
                request.path, why, _source(request))  # fmt: skip
    return _error(403, f"refused: the request came from another site ({why})")


async def login(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
    refused = _cross_site(request)
    if refused:
        return refused
    body = await json_body(request)
    name = text_field(body, "name", size=64)
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise BadRequest("'password' is required")
    source = _source(request)
    now = ctx.clock()

    def work() -> LoggedIn:
        with ctx.sessions() as session:
            try:
                logged_in = ops_auth.log_in(
                    session,
                    name,
                    password,
                    source=source,
                    now=now,
                    max_failed=ctx.config.admin_max_failed_logins,
                    lockout_seconds=ctx.config.admin_lockout_seconds,
                    idle_seconds=ctx.config.admin_session_idle_seconds,
                    rounds=ctx.config.bcrypt_rounds,
                )
            except AuthError as exc:
                outcome = "locked" if isinstance(exc, LoginLocked) else "refused"
                _audit_login(session, name, source, outcome)
                session.commit()  # the failure counts
                raise
            _audit_login(session, name, source, "ok")
            session.commit()
            return logged_in

    try:
        logged_in = await asyncio.to_thread(work)
    except LoginLocked as exc:
        log.warning("admin login: %s locked (%s)", name, source)
        return _error(429, str(exc), locked_until=exc.until.isoformat())
    except LoginRefused as exc:
        log.info("admin login refused for %r from %s", name, source)
        return _error(401, str(exc))
    response = _json(_view(logged_in, ctx))
    _session_cookie(request, response, logged_in.token)
    return response


async def logout(request: web.Request, caller: Caller) -> web.StreamResponse:
    token = cookie_token(request)

    def work(session: Session) -> None:
        ops_auth.end_session(session, token)
        record(session, caller.actor, "operator.logout", f"operator {caller.operator.name}")

    await run_db(request, work, write=True)
    response = _json({"logged_out": caller.operator.name})
    response.del_cookie(COOKIE, path="/admin")
    return response


async def session_view(request: web.Request, caller: Caller) -> web.StreamResponse:
    ctx = _ctx(request)
    return _json(_view(LoggedIn(caller.operator, caller.csrf_token), ctx))


# -- dashboard and snapshots ---------------------------------------------------------------
async def dashboard(request: web.Request, caller: Caller) -> web.StreamResponse:
    ctx = _ctx(request)
    raw = request.query.get("hours", "24")
    if not raw.isdigit() or not 1 <= int(raw) <= 24 * 31:
        raise BadRequest("hours must be 1..744")
    now = ctx.clock()
    figures = await run_db(
        request, lambda s: dashboard_figures.dashboard(s, now=now, hours=int(raw)), write=False
    )
    return _json(figures)


async def snapshot_export(request: web.Request, caller: Caller) -> web.StreamResponse:
    ctx = _ctx(request)
    with_pins = request.query.get("pin_hashes", "") in ("1", "true", "yes")
    now = ctx.clock()

    def work(session: Session) -> dict[str, Any]:
        document = snapshot.export_bank(session, now=now, with_pin_hashes=with_pins)
        customers = document["customers"]
        record(session, caller.actor, "bank.export", "bank", None, {
            "customers": len(customers),
            "accounts": sum(len(c["accounts"]) for c in customers),
            "cards": sum(len(c["cards"]) for c in customers),
            "pin_hashes": with_pins,
            "to": "download",
        })  # fmt: skip
        return document

    document = await run_db(request, work, write=True)
    name = f"bank-snapshot-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    return _json(document, headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def snapshot_import(request: web.Request, caller: Caller) -> web.StreamResponse:
    body = await json_body(request, limit=SNAPSHOT_BODY)
    policy = text_field(body, "policy", size=16)
    document = body.get("snapshot")

    def work(session: Session) -> snapshot.ImportReport:
        report = snapshot.import_bank(session, document, policy=policy)
        record(session, caller.actor, "bank.import", "bank", None, report.summary("upload"))
        return report

    report = await run_db(request, work, write=True)
    return _json(report.as_dict())


# -- the panel -----------------------------------------------------------------------------
async def panel_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/admin/")


# -- the table -----------------------------------------------------------------------------
CORE_ROUTES: list[AdminRoute] = [
    AdminRoute("GET", "/session", "viewer", "who is logged in, and the CSRF token", session_view,
               before_password_change=True),
    AdminRoute("POST", "/logout", "viewer", "end this session", logout,
               before_password_change=True),
    AdminRoute("GET", "/dashboard", "viewer", "the bank's figures", dashboard,
               query=(Field("hours", "integer", "the window, 1..744 hours (24)", False),)),
    AdminRoute("GET", "/snapshot", "admin", "export the bank as JSON", snapshot_export,
               query=(Field("pin_hashes", "boolean", "include the cards' PIN hashes", False),)),
    AdminRoute("POST", "/snapshot", "admin", "import a bank snapshot", snapshot_import,
               body=(Field("policy", description="skip or replace an existing record"),
                     Field("snapshot", "object", "a document from GET /snapshot"))),
]  # fmt: skip


@web.middleware
async def admin_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Admin answers carry the security headers; an unknown /admin/api path is JSON 404."""
    if not request.path.startswith("/admin"):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error(exc.status, exc.reason)
    except (BadRequest, snapshot.SnapshotError) as exc:
        response = _error(400, str(exc))
    except NotFound as exc:
        response = _error(404, str(exc))
    except ControlRefused as exc:
        response = _error(409, str(exc))
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
