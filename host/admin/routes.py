"""The whole admin API as one table (``ADMIN_ROUTES``: sessions, dashboard and snapshots from
``host.admin.web``, operators from ``host.admin.operator_routes``, the bank operations from
``host.admin.bank_routes``), the
aiohttp routes built from it with their guard, and its OpenAPI description, generated from the
same table so it cannot drift."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from host.admin.bank_routes import BANK_ROUTES
from host.admin.operator_routes import OPERATOR_ROUTES
from host.admin.web import (
    API,
    COOKIE,
    CORE_ROUTES,
    CSRF_HEADER,
    STATIC,
    AdminRoute,
    Field,
    _json,
    guarded,
    login,
    panel_redirect,
)

__all__ = ["ADMIN_ROUTES", "PUBLIC_ROUTES", "admin_routes", "openapi"]

ADMIN_ROUTES: list[AdminRoute] = [*CORE_ROUTES, *OPERATOR_ROUTES, *BANK_ROUTES]


async def openapi_view(request: web.Request) -> web.StreamResponse:
    return _json(openapi())


PUBLIC_ROUTES = [
    ("POST", f"{API}/login", login, "log in: sets the session cookie, returns the CSRF token"),
    ("GET", f"{API}/openapi.json", openapi_view, "this API's OpenAPI description"),
]


def admin_routes() -> list[web.RouteDef]:
    routes = [
        web.get("/admin", panel_redirect),
        web.get("/admin/", STATIC.index),
        web.get("/admin/static/{name}", STATIC.named),
    ]
    routes += [web.route(method, path, handler) for method, path, handler, _ in PUBLIC_ROUTES]
    routes += [web.route(r.method, r.url, guarded(r)) for r in ADMIN_ROUTES]
    return routes


# -- OpenAPI -------------------------------------------------------------------------------
_TYPES = {
    "string": "string",
    "integer": "integer",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}


def openapi() -> dict[str, Any]:
    """An OpenAPI 3.1 description generated from the route table (so it cannot drift)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, _, summary in PUBLIC_ROUTES:
        operation: dict[str, Any] = {"summary": summary, "security": []}
        if method == "POST":
            operation["requestBody"] = _body((Field("name"), Field("password")))
        operation["responses"] = {"200": {"description": "OK"}, "401": {"description": "refused"}}
        if path.endswith("/login"):
            operation["responses"]["403"] = {"description": "refused: sent from another site"}
            operation["responses"]["429"] = {"description": "locked after failed logins"}
        paths.setdefault(path, {})[method.lower()] = operation
    for route in ADMIN_ROUTES:
        template = route.url
        operation = {
            "summary": route.summary,
            "x-role": route.role,
            "responses": {
                "200": {"description": "OK", "content": {route.produces: {}}},
                "400": {"description": "bad input (the error says which)"},
                "401": {"description": "no session, or it expired"},
                "403": {
                    "description": "role too low, a password change due, missing/wrong CSRF "
                    "token, or sent from another site"
                },
            },
        }
        parameters = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in template.split("/")
            if part.startswith("{")
        ]
        parameters += [
            {
                "name": f.name,
                "in": "query",
                "required": f.required,
                "description": f.description,
                "schema": {"type": _TYPES[f.kind]},
            }
            for f in route.query
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.changes:
            operation["parameters"] = [
                *operation.get("parameters", []),
                {"name": CSRF_HEADER, "in": "header", "required": True,
                 "schema": {"type": "string"}},
            ]  # fmt: skip
            if route.body:
                operation["requestBody"] = _body(route.body)
        paths.setdefault(template, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "atm-simulator admin API",
            "version": "1",
            "description": "Bank operations for logged-in operators (docs/admin.md). Every "
            "route but login and this description needs the session cookie; every change "
            f"needs the {CSRF_HEADER} header; x-role is the least role allowed.",
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE},
            }
        },
        "security": [{"session": []}],
        "paths": paths,
    }


def _schema(field: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _TYPES[field.kind], "description": field.description}
    if field.kind == "array":
        schema["items"] = {"type": "string"}
    return schema


def _body(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {f.name: _schema(f) for f in fields},
                    "required": [f.name for f in fields if f.required],
                }
            }
        },
    }
