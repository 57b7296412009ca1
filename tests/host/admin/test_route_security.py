"""Security of every admin route, generated from the route table (``ADMIN_ROUTES``), so a
route added later is covered without a new test: without a session every route answers 401;
a change with a missing or a wrong CSRF token is refused (403) and changes nothing; a viewer
can change nothing (403) and can read everything a viewer may; the OpenAPI description lists
exactly these routes."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from host.admin.routes import ADMIN_ROUTES
from host.admin.snapshot import export_bank
from host.admin.web import CHANGE_FIRST, AdminRoute
from tests.host.admin.conftest import AdminRig
from tests.host.conftest import ALICE_CHECKING

# A value for each path parameter the table uses (an existing record where one helps).
EXAMPLES = {
    "number": ALICE_CHECKING,
    "card_id": "1",
    "terminal_id": "ATM00001",
    "customer_id": "1",
    "name": "otto",
}


def concrete(route: AdminRoute) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in EXAMPLES, f"add an example value for {{{name}}} ({route.url})"
        return EXAMPLES[name]

    return re.sub(r"\{([^}]+)\}", value, route.url)


def bank_state(admin: AdminRig) -> Any:
    """Everything a change could touch: the bank with PIN hashes, operators, terminals,
    maintenance mode, and how many audit rows there are."""
    from sqlalchemy import func, select

    from host.admin.models import Operator
    from host.bank.models import AuditEntry, BankState, Terminal

    with admin.host.sessions() as session:
        bank = export_bank(session, now=admin.clock(), with_pin_hashes=True)
        operators = session.execute(
            select(
                Operator.name,
                Operator.role,
                Operator.active,
                Operator.password_hash,
                Operator.password_change_required,
            )
        ).all()
        terminals = session.execute(
            select(Terminal.terminal_id, Terminal.in_service, Terminal.key_change_due)
        ).all()
        maintenance = session.scalars(select(BankState.maintenance)).all()
        audit = session.scalar(select(func.count()).select_from(AuditEntry))
    return bank, sorted(operators), sorted(terminals), maintenance, audit


CHANGES = [r for r in ADMIN_ROUTES if r.changes]
READS = [r for r in ADMIN_ROUTES if not r.changes]


def test_the_table_has_changes_and_reads():
    assert len(CHANGES) >= 3 and len(READS) >= 3
    assert {r.role for r in ADMIN_ROUTES} <= {"viewer", "operator", "admin"}
    seen = [(r.method, r.url) for r in ADMIN_ROUTES]
    assert len(seen) == len(set(seen))


async def test_every_route_refuses_without_a_session(admin: AdminRig):
    failures = []
    async with aiohttp.ClientSession() as http:
        for route in ADMIN_ROUTES:
            kwargs: dict[str, Any] = {"json": {}} if route.changes else {}
            headers = {"Authorization": "Bearer test-ops-token-0123456789", "X-CSRF-Token": "x"}
            async with http.request(
                route.method, admin.base + concrete(route), headers=headers, **kwargs
            ) as response:
                body = await response.json()
                if response.status != 401 or body != {"error": "log in first"}:
                    failures.append((route.method, route.url, response.status, body))
    assert failures == []


async def test_every_change_refuses_a_missing_or_wrong_csrf_token(admin: AdminRig):
    ada = await admin.client("ada")  # the highest role: only the token can stop it
    before = bank_state(admin)
    failures = []
    for route in CHANGES:
        for token in ("", "not-the-token", ada.csrf[:-1], ada.csrf + "x"):
            status, body = await ada.call(route.method, concrete(route), {}, csrf=token)
            if status != 403 or "X-CSRF-Token" not in body.get("error", ""):
                failures.append((route.method, route.url, repr(token), status, body))
    assert failures == []
    assert bank_state(admin) == before
    # The session itself still works after all that.
    assert (await ada.get("/admin/api/session"))[0] == 200


async def test_a_viewer_can_change_nothing(admin: AdminRig):
    vera = await admin.client("vera")
    before = bank_state(admin)
    failures = []
    for route in CHANGES:
        if route.role == "viewer":
            continue  # one's own session and password: everyone's (logout checked below)
        status, body = await vera.call(route.method, concrete(route), {})
        if status != 403 or "role" not in body.get("error", ""):
            failures.append((route.method, route.url, status, body))
    assert failures == []
    assert bank_state(admin) == before
    assert (await vera.post("/admin/api/logout"))[0] == 200


async def test_roles_below_a_route_are_refused_and_its_role_is_let_through(admin: AdminRig):
    clients = {role: await admin.client(name) for name, role in
               (("vera", "viewer"), ("otto", "operator"), ("ada", "admin"))}  # fmt: skip
    order = ["viewer", "operator", "admin"]
    failures = []
    for route in READS:
        for role, client in clients.items():
            status, body = await client.get(concrete(route))
            allowed = order.index(role) >= order.index(route.role)
            if (allowed and status in (401, 403)) or (not allowed and status != 403):
                failures.append((route.url, role, status, body))
    assert failures == []


async def test_openapi_lists_every_route(admin: AdminRig):
    async with (
        aiohttp.ClientSession() as http,
        http.get(admin.base + "/admin/api/openapi.json") as response,
    ):
        assert response.status == 200
        document = await response.json()
    listed = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert {(r.method, r.url) for r in ADMIN_ROUTES} | {
        ("POST", "/admin/api/login"),
        ("GET", "/admin/api/openapi.json"),
    } == listed
    for route in CHANGES:
        operation = document["paths"][route.url][route.method.lower()]
        assert any(p["name"] == "X-CSRF-Token" for p in operation["parameters"])
        assert operation["x-role"] == route.role


def test_docs_list_every_route():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "admin.md").read_text()
    missing = [f"{r.method} {r.path}" for r in ADMIN_ROUTES if f"`{r.method} {r.path}`" not in doc]
    assert missing == []


async def test_a_password_change_due_opens_only_the_change(admin: AdminRig):
    ada = await admin.client("ada")
    password = "nina-first-password"
    nina_admin = {"name": "nina", "role": "admin", "password": password}
    assert (await ada.post("/admin/api/operators", nina_admin))[0] == 201
    nina = await admin.client()
    assert (await nina.login("nina", password))[0] == 200
    before = bank_state(admin)
    failures = []
    for route in ADMIN_ROUTES:
        if route.before_password_change:
            continue
        status, body = await nina.call(route.method, concrete(route), {} if route.changes else None)
        if status != 403 or body != {"error": CHANGE_FIRST}:
            failures.append((route.method, route.url, status, body))
    assert failures == []
    assert bank_state(admin) == before
    open_routes = {r.path for r in ADMIN_ROUTES if r.before_password_change}
    assert open_routes == {"/session", "/logout", "/password"}
