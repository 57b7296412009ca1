"""The admin API's operator routes: admins list, create and change operators (role, active,
password reset), and every operator changes their own password. Each change writes one audit
row (``operator.*``, before and after, never a password) in the transaction that makes it.

An admin acts on others only (not their own role, state or reset), so the bank cannot lose
its last active admin from the panel. A password an admin chose, at creation or a reset, must
be changed by its operator at their next login (``host.admin.operators``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from host.admin import operators as ops_auth
from host.admin.operators import (
    AuthError,
    LoginLocked,
    OperatorView,
    WrongPassword,
    operator_state,
)
from host.admin.web import (
    AdminRoute,
    Caller,
    Field,
    Handler,
    _ctx,
    _error,
    _json,
    cookie_token,
    json_body,
    run_db,
    text_field,
)
from host.bank.audit import record
from host.errors import BadRequest

__all__ = ["OPERATOR_ROUTES", "operator_json"]

log = logging.getLogger(__name__)


def operator_json(view: OperatorView) -> dict[str, Any]:
    return {
        "name": view.name,
        "role": view.role,
        "active": view.active,
        "password_change_required": view.password_change_required,
        "locked_until": view.locked_until.isoformat() if view.locked_until else None,
        "last_login_at": view.last_login_at.isoformat() if view.last_login_at else None,
    }


def _password(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{name}' is required")
    return value


async def operators_list(request: web.Request, caller: Caller) -> web.StreamResponse:
    rows = await run_db(request, ops_auth.list_operators, write=False)
    return _json({"operators": [operator_json(o) for o in rows]})


async def operator_create(request: web.Request, caller: Caller) -> web.StreamResponse:
    ctx = _ctx(request)
    body = await json_body(request)
    name = text_field(body, "name", size=64)
    role = text_field(body, "role", size=16)
    password = _password(body, "password")
    now = ctx.clock()

    def work(session: Session) -> OperatorView:
        view = ops_auth.create_operator(
            session, name, role, password, rounds=ctx.config.bcrypt_rounds, now=now,
            change_required=True,
        )  # fmt: skip
        record(session, caller.actor, "operator.create", f"operator {name}", None,
               operator_state(view))  # fmt: skip
        return view

    return _json(operator_json(await run_db(request, work, write=True)), 201)


# One change of another operator: the operation gets the session, the operator's name and
# the request's body; the handler refuses it on oneself and audits it (audited_change).
Change = Callable[[Session, str, dict[str, Any]], OperatorView]


def _operator_change(action: str, what: str, change: Change, *, body: bool = False) -> Handler:
    async def handler(request: web.Request, caller: Caller) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == caller.operator.name:
            raise BadRequest(f"an operator cannot {what} themselves")
        fields = await json_body(request) if body else {}

        def work(session: Session) -> OperatorView:
            return ops_auth.audited_change(
                session, caller.actor, action, name, lambda s, n: change(s, n, fields)
            )

        return _json(operator_json(await run_db(request, work, write=True)))

    return handler


def _set_active(active: bool) -> Change:
    return lambda session, name, _: ops_auth.set_operator_active(session, name, active)


def _set_role(session: Session, name: str, body: dict[str, Any]) -> OperatorView:
    return ops_auth.set_operator_role(session, name, text_field(body, "role", size=16))


def _reset_password(request: web.Request) -> Change:
    rounds = _ctx(request).config.bcrypt_rounds
    return lambda session, name, body: ops_auth.reset_password(
        session, name, _password(body, "password"), rounds=rounds
    )


async def operator_reset_password(request: web.Request, caller: Caller) -> web.StreamResponse:
    change = _operator_change(
        "operator.reset_password", "reset the password of", _reset_password(request), body=True
    )
    return await change(request, caller)


async def password_change(request: web.Request, caller: Caller) -> web.StreamResponse:
    """The logged-in operator's own password (the one route open while a change is due). A
    wrong current password counts as a failed login and is committed as one."""
    ctx = _ctx(request)
    body = await json_body(request)
    current, new = _password(body, "current"), _password(body, "new")
    before = operator_state(caller.operator)
    token = cookie_token(request)
    now = ctx.clock()
    config = ctx.config

    def work() -> OperatorView:
        with ctx.sessions() as session:
            try:
                view = ops_auth.change_password(
                    session, caller.operator.id, current, new, keep_token=token, now=now,
                    max_failed=config.admin_max_failed_logins,
                    lockout_seconds=config.admin_lockout_seconds, rounds=config.bcrypt_rounds,
                )  # fmt: skip
            except AuthError:
                session.commit()  # the failure counts
                raise
            record(session, caller.actor, "operator.change_password",
                   f"operator {view.name}"[:64], before, operator_state(view))  # fmt: skip
            session.commit()
            return view

    try:
        view = await asyncio.to_thread(work)
    except LoginLocked as exc:
        log.warning("admin: %s locked after wrong current passwords (%s)", caller.operator.name,
                    caller.source)  # fmt: skip
        return _error(429, str(exc), locked_until=exc.until.isoformat())
    except WrongPassword as exc:
        return _error(400, str(exc))
    return _json(operator_json(view))


OPERATOR_ROUTES: list[AdminRoute] = [
    AdminRoute("POST", "/password", "viewer",
               "change your own password (open while a change is due)", password_change,
               body=(Field("current"), Field("new", description="12 to 72 bytes")),
               before_password_change=True),
    AdminRoute("GET", "/operators", "admin", "list operators", operators_list),
    AdminRoute("POST", "/operators", "admin",
               "create an operator (who changes the password at first login)", operator_create,
               body=(Field("name"), Field("role", description="viewer, operator or admin"),
                     Field("password", description="12 to 72 bytes"))),
    AdminRoute("POST", "/operators/{name}/role", "admin", "give an operator another role",
               _operator_change("operator.set_role", "change the role of", _set_role,
                                body=True),
               body=(Field("role", description="viewer, operator or admin"),)),
    AdminRoute("POST", "/operators/{name}/deactivate", "admin",
               "deactivate an operator (their sessions end)",
               _operator_change("operator.deactivate", "deactivate", _set_active(False))),
    AdminRoute("POST", "/operators/{name}/reactivate", "admin", "reactivate an operator",
               _operator_change("operator.reactivate", "reactivate", _set_active(True))),
    AdminRoute("POST", "/operators/{name}/reset-password", "admin",
               "set a password the operator must change at next login (their sessions end)",
               operator_reset_password,
               body=(Field("password", description="12 to 72 bytes"),)),
]  # fmt: skip
