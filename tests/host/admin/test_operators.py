"""Admins manage operators over the admin API, on both databases: create one who must change
the admin-chosen password at first login, change a role (it applies to open sessions at
once), deactivate and reactivate, reset a password (sessions end, a lockout ends, a change is
due); each change audited before and after without a password; a viewer and an operator are
refused every operator route and change nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from host.admin.models import Operator
from tests.host.admin.conftest import PASSWORDS, AdminClient, AdminRig

API = "/admin/api"
NEW = "nina-first-password"


async def audit_rows(ada: AdminClient, prefix: str) -> list[dict[str, Any]]:
    status, body = await ada.get(f"{API}/audit?action={prefix}")
    assert status == 200
    return [r for r in body["rows"] if r["action"] != "operator.login"]


def operators(admin: AdminRig) -> list[tuple[Any, ...]]:
    with admin.host.sessions() as session:
        rows = session.execute(
            select(
                Operator.name,
                Operator.role,
                Operator.active,
                Operator.password_change_required,
                Operator.password_hash,
            ).order_by(Operator.name)
        ).all()
    return [tuple(r) for r in rows]


async def test_a_new_operator_must_change_the_password_an_admin_chose(admin: AdminRig):
    ada = await admin.client("ada")
    status, body = await ada.post(
        f"{API}/operators", {"name": "nina", "role": "operator", "password": NEW}
    )
    assert status == 201 and body["password_change_required"] is True
    nina = await admin.client()
    status, session = await nina.login("nina", NEW)
    assert status == 200
    assert session["password_change_required"] is True
    # Nothing opens but the change itself, the session view and logout.
    assert await nina.get(f"{API}/dashboard") == (
        403,
        {"error": "change your password first (POST /admin/api/password)"},
    )
    assert (await nina.post(f"{API}/customers", {"name": "Eve"}))[0] == 403
    assert (await nina.get(f"{API}/session"))[1]["password_change_required"] is True
    for change, problem in (
        ({"current": "not-the-password", "new": "nina-own-password"}, "current password is wrong"),
        ({"current": NEW, "new": NEW}, "must differ"),
        ({"current": NEW, "new": "short"}, "at least 12"),
        ({"current": NEW}, "'new' is required"),
    ):
        status, body = await nina.post(f"{API}/password", change)
        assert status == 400 and problem in body["error"], (change, body)
    status, body = await nina.post(f"{API}/password", {"current": NEW, "new": "nina-own-password"})
    assert (status, body["password_change_required"]) == (200, False)
    assert (await nina.get(f"{API}/dashboard"))[0] == 200
    assert (await nina.post(f"{API}/customers", {"name": "Eve Adams"}))[0] == 201
    # The new password opens a fresh session with nothing due; the old one opens nothing.
    again = await admin.client()
    assert (await again.login("nina", NEW))[0] == 401
    status, session = await again.login("nina", "nina-own-password")
    assert (status, session["password_change_required"]) == (200, False)

    rows = await audit_rows(ada, "operator.")
    assert [(r["actor"], r["action"], r["subject"], r["before"], r["after"]) for r in rows] == [
        ("ada", "operator.create", "operator nina", None,
         {"role": "operator", "active": True, "password_change_required": True}),
        ("nina", "operator.change_password", "operator nina",
         {"role": "operator", "active": True, "password_change_required": True},
         {"role": "operator", "active": True, "password_change_required": False}),
    ]  # fmt: skip
    status, csv = await ada.call("GET", f"{API}/audit.csv", raw=True)
    assert status == 200
    assert NEW.encode() not in csv and b"nina-own-password" not in csv


async def test_a_role_change_applies_to_open_sessions_and_is_audited(admin: AdminRig):
    ada = await admin.client("ada")
    otto = await admin.client("otto")
    assert (await otto.get(f"{API}/operators"))[0] == 403
    status, body = await ada.post(f"{API}/operators/otto/role", {"role": "admin"})
    assert (status, body["role"]) == (200, "admin")
    assert (await otto.get(f"{API}/operators"))[0] == 200  # the same session, the new role
    for name, role, code, problem in (
        ("otto", "admin", 400, "already admin"),
        ("otto", "root", 400, "unknown role"),
        ("ada", "viewer", 400, "cannot change the role of themselves"),
        ("nobody", "viewer", 404, "no operator 'nobody'"),
    ):
        status, body = await ada.post(f"{API}/operators/{name}/role", {"role": role})
        assert status == code and problem in body["error"], (name, role, body)
    assert (await ada.post(f"{API}/operators/otto/role", {"role": "viewer"}))[0] == 200
    assert (await otto.post(f"{API}/customers", {"name": "Eve Adams"}))[0] == 403
    rows = await audit_rows(ada, "operator.set_role")
    assert [(r["before"]["role"], r["after"]["role"]) for r in rows] == [
        ("operator", "admin"),
        ("admin", "viewer"),
    ]
    assert {r["actor"] for r in rows} == {"ada"}


async def test_a_password_reset_ends_sessions_and_a_lockout(admin: AdminRig):
    ada = await admin.client("ada")
    otto = await admin.client("otto")
    stranger = await admin.client()
    for _ in range(5):
        await stranger.login("otto", "wrong-password-x")
    assert (await stranger.login("otto"))[0] == 429  # locked, even with the right password
    before = operators(admin)
    status, body = await ada.post(f"{API}/operators/otto/reset-password", {"password": "short"})
    assert status == 400 and "at least 12" in body["error"]
    assert operators(admin) == before  # a refused reset changes nothing and is not audited
    assert await audit_rows(ada, "operator.reset_password") == []
    status, body = await ada.post(
        f"{API}/operators/otto/reset-password", {"password": "otto-reset-password"}
    )
    assert (status, body["password_change_required"], body["locked_until"]) == (200, True, None)
    assert (await otto.get(f"{API}/session"))[0] == 401  # their sessions ended
    assert (await otto.login("otto"))[0] == 401  # the old password is gone
    status, session = await otto.login("otto", "otto-reset-password")
    assert (status, session["password_change_required"]) == (200, True)
    assert (await otto.get(f"{API}/customers"))[0] == 403
    status, body = await ada.post(
        f"{API}/operators/ada/reset-password", {"password": "ada-new-password"}
    )
    assert status == 400 and "themselves" in body["error"]
    [row] = await audit_rows(ada, "operator.reset_password")
    assert (row["actor"], row["subject"]) == ("ada", "operator otto")
    assert row["before"]["password_change_required"] is False
    assert row["after"]["password_change_required"] is True
    assert "otto-reset-password" not in json.dumps(row)


async def test_viewers_and_operators_are_refused_every_operator_route(admin: AdminRig):
    before = operators(admin)
    for name in ("vera", "otto"):
        client = await admin.client(name)
        for method, path, body in (
            ("GET", "/operators", None),
            ("POST", "/operators", {"name": "mallory", "role": "admin", "password": NEW}),
            ("POST", "/operators/ada/role", {"role": "viewer"}),
            ("POST", "/operators/ada/deactivate", {}),
            ("POST", "/operators/ada/reactivate", {}),
            ("POST", "/operators/ada/reset-password", {"password": NEW}),
        ):
            status, answer = await client.call(method, API + path, body)
            assert status == 403, (name, method, path, answer)
            assert "needs the admin role" in answer["error"]
    assert operators(admin) == before
    ada = await admin.client("ada")
    assert await audit_rows(ada, "operator.") == []
    # Everyone may change their own password.
    vera = await admin.client("vera")
    status, _ = await vera.post(
        f"{API}/password", {"current": PASSWORDS["vera"], "new": "vera-new-password"}
    )
    assert status == 200


async def test_guessing_the_current_password_locks_and_a_change_ends_other_sessions(
    admin: AdminRig,
):
    laptop = await admin.client("otto")
    phone = await admin.client("otto")
    # A stolen session cannot guess the password: each wrong guess is a failed login.
    for _ in range(4):
        status, body = await phone.post(
            f"{API}/password", {"current": "guess-guess-guess", "new": "otto-new-password"}
        )
        assert (status, body) == (400, {"error": "the current password is wrong"})
    status, body = await phone.post(
        f"{API}/password", {"current": "guess-guess-guess", "new": "otto-new-password"}
    )
    assert status == 429 and body["error"].startswith("too many failed logins: locked until")
    assert (await phone.get(f"{API}/session"))[0] == 401  # every session of otto's ended
    assert (await laptop.get(f"{API}/session"))[0] == 401
    assert (await laptop.login("otto"))[0] == 429
    admin.clock.advance(901)
    assert (await laptop.login("otto"))[0] == 200
    assert (await phone.login("otto"))[0] == 200
    status, _ = await laptop.post(
        f"{API}/password", {"current": PASSWORDS["otto"], "new": "otto-new-password"}
    )
    assert status == 200
    assert (await laptop.get(f"{API}/session"))[0] == 200  # this one stays
    assert (await phone.get(f"{API}/session"))[0] == 401  # the others end
