"""Operators logging in to the admin API over a real socket, on both databases: the session
cookie's attributes, lockout after failed logins and idle expiry (with the test's clock), the
CSRF token, and the ops API's bearer token still working for machines."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from sqlalchemy import select

from host.admin.models import Operator, OperatorSession
from host.admin.operators import create_operator
from host.app import Host
from host.config import Environment
from host.errors import BadRequest
from tests.host.admin.conftest import PASSWORDS, AdminRig

TOKEN = "test-ops-token-0123456789"


async def test_login_sets_a_strict_http_only_cookie_and_returns_the_csrf_token(admin: AdminRig):
    client = await admin.client()
    async with client.http.post(
        admin.base + "/admin/api/login", json={"name": "otto", "password": PASSWORDS["otto"]}
    ) as response:
        assert response.status == 200
        body = await response.json()
        cookie = response.headers["Set-Cookie"]
    assert body["operator"] == {"name": "otto", "role": "operator"}
    assert len(body["csrf_token"]) >= 32
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # not production
    client.csrf = body["csrf_token"]
    assert await client.get("/admin/api/session") == (
        200,
        {"operator": {"name": "otto", "role": "operator"}, "csrf_token": client.csrf,
         "idle_seconds": 900, "password_change_required": False},
    )  # fmt: skip
    # Only a hash of the cookie's token is stored.
    token = next(iter(client.http.cookie_jar)).value
    with admin.host.sessions() as session:
        stored = session.scalars(select(OperatorSession.token_hash)).all()
    assert stored and token not in stored


async def test_production_cookies_are_secure(seeded_config, clock):
    config = dataclasses.replace(seeded_config, environment=Environment.PRODUCTION)
    host = Host(config, clock=clock)
    with host.sessions.begin() as session:
        create_operator(session, "ada", "admin", PASSWORDS["ada"], rounds=4, now=clock())
    port = await host.start_ops("127.0.0.1", 0)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/admin/api/login",
                json={"name": "ada", "password": PASSWORDS["ada"]},
            ) as response,
        ):
            assert response.status == 200
            assert "Secure" in response.headers["Set-Cookie"]
    finally:
        await host.close()


async def test_wrong_password_and_unknown_name_get_the_same_answer(admin: AdminRig):
    client = await admin.client()
    wrong = await client.login("otto", "not-the-password")
    unknown = await client.login("nobody", "not-the-password")
    assert wrong == unknown == (401, {"error": "wrong operator name or password"})
    assert await client.get("/admin/api/session") == (401, {"error": "log in first"})


async def test_lockout_after_repeated_failures_and_its_end(admin: AdminRig):
    client = await admin.client()
    for _ in range(4):
        assert (await client.login("otto", "wrong-password-x"))[0] == 401
    status, body = await client.login("otto", "wrong-password-x")
    assert status == 429
    assert body["error"].startswith("too many failed logins: locked until")
    # Even the right password is refused while locked.
    assert (await client.login("otto"))[0] == 429
    admin.clock.advance(899)
    assert (await client.login("otto"))[0] == 429
    admin.clock.advance(2)
    assert (await client.login("otto"))[0] == 200
    # A success resets the count: four more failures do not lock.
    for _ in range(4):
        assert (await client.login("otto", "wrong-password-x"))[0] == 401
    assert (await client.login("otto"))[0] == 200


async def test_idle_sessions_expire(admin: AdminRig):
    client = await admin.client("vera")
    admin.clock.advance(899)
    assert (await client.get("/admin/api/session"))[0] == 200  # and this use restarts the idle time
    admin.clock.advance(899)
    assert (await client.get("/admin/api/dashboard"))[0] == 200
    admin.clock.advance(901)
    assert await client.get("/admin/api/session") == (
        401,
        {"error": "the session has expired: log in again"},
    )
    with admin.host.sessions() as session:
        assert session.scalars(select(OperatorSession)).all() == []
    assert (await client.login("vera"))[0] == 200


async def test_logout_ends_the_session(admin: AdminRig):
    client = await admin.client("ada")
    assert (await client.post("/admin/api/logout", csrf="wrong"))[0] == 403
    assert await client.post("/admin/api/logout") == (200, {"logged_out": "ada"})
    assert (await client.get("/admin/api/session"))[0] == 401


async def test_a_deactivated_operator_is_logged_out(admin: AdminRig):
    otto = await admin.client("otto")
    ada = await admin.client("ada")
    assert (await otto.post("/admin/api/operators/ada/deactivate"))[0] == 403
    status, body = await ada.post("/admin/api/operators/ada/deactivate")
    assert status == 400 and "themselves" in body["error"]
    status, body = await ada.post("/admin/api/operators/otto/deactivate")
    assert (status, body["name"], body["active"]) == (200, "otto", False)
    assert (await otto.get("/admin/api/session"))[0] == 401
    assert (await otto.login("otto"))[0] == 401
    assert (await ada.post("/admin/api/operators/nobody/deactivate"))[0] == 404
    assert (await ada.post("/admin/api/operators/otto/reactivate"))[0] == 200
    assert (await otto.login("otto"))[0] == 200
    status, audit = await ada.get("/admin/api/audit?action=operator.")
    actions = [(r["action"], r["subject"]) for r in audit["rows"] if "activate" in r["action"]]
    assert actions == [
        ("operator.deactivate", "operator otto"),
        ("operator.reactivate", "operator otto"),
    ]


async def test_admins_create_operators(admin: AdminRig):
    ada = await admin.client("ada")
    nina = {"name": "nina", "role": "viewer", "password": "nina-password-4"}
    status, body = await ada.post("/admin/api/operators", nina)
    assert (status, body) == (
        201,
        {"name": "nina", "role": "viewer", "active": True, "password_change_required": True,
         "locked_until": None, "last_login_at": None},
    )  # fmt: skip
    status, body = await ada.post("/admin/api/operators", nina)
    assert status == 400 and "exists already" in body["error"]
    status, listed = await ada.get("/admin/api/operators")
    assert [o["name"] for o in listed["operators"]] == ["ada", "nina", "otto", "vera"]
    browser = await admin.client()
    assert (await browser.login("nina", "nina-password-4"))[0] == 200


async def test_the_bearer_token_still_serves_machines_and_opens_no_admin_route(admin: AdminRig):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(admin.base + "/metrics", headers=bearer) as response:
            assert response.status == 200
        async with http.get(admin.base + "/admin/api/dashboard", headers=bearer) as response:
            assert response.status == 401
        async with http.get(admin.base + "/metrics") as response:
            assert response.status == 401


async def test_login_needs_json_and_a_bounded_body(admin: AdminRig):
    async with aiohttp.ClientSession() as http:
        async with http.post(admin.base + "/admin/api/login", data="name=ada") as response:
            assert response.status == 400
            assert "JSON" in (await response.json())["error"]
        big = {"name": "ada", "password": "x" * 100_000}
        async with http.post(admin.base + "/admin/api/login", json=big) as response:
            assert response.status == 413


def test_operator_rules(seeded_config, clock):
    host = Host(seeded_config)
    try:
        with host.sessions.begin() as session:
            for name, role, password, problem in (
                ("bad name!", "viewer", "long-enough-password", "operator name"),
                ("ok", "root", "long-enough-password", "unknown role"),
                ("ok", "viewer", "short", "at least 12"),
                ("ok", "viewer", "x" * 73, "at most 72"),
            ):
                with pytest.raises(BadRequest, match=problem):
                    create_operator(session, name, role, password, rounds=4, now=clock())
            create_operator(session, "ok", "viewer", "long-enough-password", rounds=4, now=clock())
            with pytest.raises(BadRequest, match="exists already"):
                create_operator(
                    session, "ok", "admin", "long-enough-password", rounds=4, now=clock()
                )
            stored = session.scalars(select(Operator.password_hash)).one()
            assert stored.startswith("$2b$") and "long-enough-password" not in stored
    finally:
        host.executor.shutdown()
        host.pins.close()
        host.engine.dispose()


async def test_a_cross_site_login_is_refused_with_a_clear_error(admin: AdminRig):
    """Login CSRF: a page of another site posting the attacker's name and password would log
    the victim's browser in as the attacker. What the browser says about the request's site
    decides, before the body is read."""
    good = {"name": "otto", "password": PASSWORDS["otto"]}
    for headers, why in (
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
         "Sec-Fetch-Site: cross-site"),
        ({"Sec-Fetch-Site": "same-site", "Origin": "https://other.bank.example"},
         "Sec-Fetch-Site: same-site"),
        ({"Origin": "https://evil.example"}, "Origin https://evil.example is not this server"),
    ):  # fmt: skip
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
            http.post(admin.base + "/admin/api/login", json=good, headers=headers) as response,
        ):
            assert response.status == 403
            assert await response.json() == {
                "error": f"refused: the request came from another site ({why})"
            }
            assert "Set-Cookie" not in response.headers
            assert len(http.cookie_jar) == 0
    with admin.host.sessions() as session:
        assert session.scalars(select(OperatorSession)).all() == []
    # The same login from the panel's own page, and from a script, goes through.
    for headers in ({"Sec-Fetch-Site": "same-origin", "Origin": admin.base},
                    {"Origin": admin.base}, {}):  # fmt: skip
        async with (
            aiohttp.ClientSession() as http,
            http.post(admin.base + "/admin/api/login", json=good, headers=headers) as response,
        ):
            assert response.status == 200, headers


async def test_a_change_from_another_site_is_refused_even_with_the_token(admin: AdminRig):
    otto = await admin.client("otto")
    async with otto.http.post(
        admin.base + "/admin/api/customers",
        json={"name": "Eve Adams"},
        headers={"X-CSRF-Token": otto.csrf, "Sec-Fetch-Site": "cross-site"},
    ) as response:
        assert response.status == 403
        assert "another site" in (await response.json())["error"]
    _, customers = await otto.get("/admin/api/customers")
    assert "Eve Adams" not in [c["name"] for c in customers["customers"]]
