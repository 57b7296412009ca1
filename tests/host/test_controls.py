"""Bank operations (host.bank.controls) on SQLite and PostgreSQL: each changes what it says,
refuses what it must, and leaves one audit row with the state before and after."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from host.bank import controls
from host.bank.audit import Actor, list_audit, write_csv
from host.bank.models import AuditEntry
from host.errors import BadRequest, ControlRefused, NotFound
from tests.host.conftest import ALICE, ALICE_CHECKING, BOB_CHECKING, CHARLIE_CHECKING, ServiceRig

OPERATOR = Actor("olga", "operator", "cli")


def _setting(rig: ServiceRig) -> controls.PinSetting:
    return controls.PinSetting(rig.config.pin_pepper, rig.config.bcrypt_rounds)


def test_customer_lifecycle_is_audited(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        created = controls.create_customer(session, OPERATOR, "  Dana   Evans ")
        controls.update_customer(session, OPERATOR, created.id, name="Dana Evans-Ford")
        controls.deactivate_customer(session, OPERATOR, created.id)
        with pytest.raises(ControlRefused, match="already deactivated"):
            controls.deactivate_customer(session, OPERATOR, created.id)
        controls.reactivate_customer(session, OPERATOR, created.id)
        account = controls.open_account(session, OPERATOR, created.id, "checking")
    assert created.name == "Dana Evans"
    assert account.number == f"1000-{created.id:04d}-0001" and account.status == "open"
    with rig.service._sessions() as session:
        rows = list_audit(session, subject=f"customer {created.id}")
        names = [c.name for c in controls.list_customers(session)]
    assert [r.action for r in rows] == [
        "customer.create",
        "customer.update",
        "customer.deactivate",
        "customer.reactivate",
    ]
    assert rows[1].before == {"name": "Dana Evans", "active": True}
    assert rows[1].after == {"name": "Dana Evans-Ford", "active": True}
    assert all(r.actor == "olga" and r.role == "operator" and r.source == "cli" for r in rows)
    assert "Dana Evans-Ford" in names


def test_closing_needs_a_zero_balance(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        with pytest.raises(ControlRefused, match="balance of 525000 cents"):
            controls.close_account(session, OPERATOR, ALICE_CHECKING)
        closed = controls.close_account(session, OPERATOR, CHARLIE_CHECKING)
        with pytest.raises(NotFound, match="no customer account"):
            controls.freeze_account(session, OPERATOR, "CASH-ATM00001")
    assert closed.status == "closed"


def test_issue_card_returns_a_new_pan_and_refuses_weak_pins(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        with pytest.raises(BadRequest, match="straight sequence"):
            controls.issue_card(session, OPERATOR, 2, [BOB_CHECKING], "1234", _setting(rig))
        with pytest.raises(ControlRefused, match="not customer 2's"):
            controls.issue_card(session, OPERATOR, 2, [ALICE_CHECKING], "4826", _setting(rig))
        pan = controls.issue_card(session, OPERATOR, 2, [BOB_CHECKING], "4826", _setting(rig))
        cards = {c.pan: c for c in controls.list_cards(session, customer_id=2)}
    assert pan.startswith("400000") and len(pan) == 16
    assert cards[pan].pin_change_required and cards[pan].accounts == (("20", BOB_CHECKING),)
    with rig.service._sessions() as session:
        (row,) = list_audit(session, action="card.issue")
    assert row.subject == f"card 400000******{pan[-4:]}"
    assert pan not in repr(row)


def test_audit_csv_masks_pans(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        controls.report_card_stolen(session, OPERATOR, ALICE)
        new = controls.replace_card(session, OPERATOR, ALICE)
    out = io.StringIO()
    with rig.service._sessions() as session:
        assert write_csv(list_audit(session, action="card."), out) == 2
    body = out.getvalue()
    assert ALICE not in body and new not in body
    assert "400000******7899" in body and "card.report_stolen" in body


def test_audit_log_refuses_update_and_delete_on_postgresql(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        controls.set_maintenance(session, OPERATOR, True)
    engine = rig.service._sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        # SQLite has no trigger: the code never updates or deletes (host.bank.audit).
        with rig.service._sessions() as session:
            assert session.scalar(select(AuditEntry.action)) == "bank.maintenance"
        return
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with rig.service._sessions.begin() as session:
                session.execute(text(statement))
    with rig.service._sessions() as session:
        assert session.scalar(select(AuditEntry.actor)) == "olga"
