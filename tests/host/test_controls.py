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
from host.bank.services import CardRequest
from host.errors import BadRequest, ControlRefused, NotFound
from protocol.messages import TransactionType
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


# -- what the authorization service does with them (both databases) ---------------------------
def _code(rig: ServiceRig, request: CardRequest) -> str:
    return str(rig.service.authorize(request).response_code)


def test_frozen_account_declines_78_and_nothing_moves(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        controls.freeze_account(session, OPERATOR, ALICE_CHECKING)
    assert _code(rig, rig.requests.withdrawal(2_000)) == "78"
    assert _code(rig, rig.requests.balance()) == "78"
    assert rig.balance_of(ALICE_CHECKING) == 525_000
    with rig.service._sessions.begin() as session:
        controls.unfreeze_account(session, OPERATOR, ALICE_CHECKING)
    assert _code(rig, rig.requests.withdrawal(2_000)) == "00"
    assert rig.balance_of(ALICE_CHECKING) == 523_000


def test_switches_and_card_states_in_check_order(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        controls.terminal_out_of_service(session, OPERATOR, "ATM00001")
    assert _code(rig, rig.requests.withdrawal(2_000)) == "89"
    assert _code(rig, rig.requests.withdrawal(2_000, terminal_id="ATM00002")) == "00"
    with rig.service._sessions.begin() as session:
        controls.set_maintenance(session, OPERATOR, True)
    assert _code(rig, rig.requests.withdrawal(2_000, terminal_id="ATM00002")) == "90"
    with rig.service._sessions.begin() as session:
        controls.set_maintenance(session, OPERATOR, False)
        controls.terminal_in_service(session, OPERATOR, "ATM00001")
        controls.deactivate_customer(session, OPERATOR, 1)
    assert _code(rig, rig.requests.balance()) == "14"
    with rig.service._sessions.begin() as session:
        controls.reactivate_customer(session, OPERATOR, 1)
        controls.report_card_lost(session, OPERATOR, ALICE)
    assert rig.service.authorize(rig.requests.balance()).capture_card
    with rig.service._sessions.begin() as session:
        new = controls.replace_card(session, OPERATOR, ALICE)
        controls.block_card(session, OPERATOR, new)
    assert _code(rig, rig.requests.balance(new, pin="1234")) == "14"
    assert rig.balance_of(ALICE_CHECKING) == 525_000 - 2_000


def test_pin_reset_answers_77_until_changed(rig: ServiceRig) -> None:
    with rig.service._sessions.begin() as session:
        controls.reset_pin(session, OPERATOR, ALICE, "2580", _setting(rig))
    assert _code(rig, rig.requests.balance(pin="1234")) == "55"
    assert _code(rig, rig.requests.withdrawal(2_000, pin="2580")) == "77"
    change = rig.requests.make(TransactionType.PIN_CHANGE, ALICE, pin="2580", new_pin="4826")
    assert _code(rig, change) == "00"
    assert _code(rig, rig.requests.withdrawal(2_000, pin="4826")) == "00"
    assert rig.balance_of(ALICE_CHECKING) == 523_000
    with rig.service._sessions() as session:
        actions = [r.action for r in list_audit(session)]
    assert actions == [
        "card.reset_pin",
        "pin.failed",
        "txn.balance_inquiry",
        "pin.verified",
        "txn.withdrawal",
        "txn.pin_change",
        "txn.withdrawal",  # the card session goes on under the new PIN: no bcrypt again
    ]


def test_pin_lockout_is_audited_with_the_pan_masked(rig: ServiceRig) -> None:
    for _ in range(rig.config.max_failed_pin_attempts):
        rig.service.authorize(rig.requests.balance(pin="9999"))
    with rig.service._sessions() as session:
        rows = list_audit(session, action="pin.")
    assert [r.action for r in rows] == ["pin.failed"] * (len(rows) - 1) + ["pin.locked"]
    assert all(r.subject == "card 400000******7899" and r.actor == "ATM00001" for r in rows)
    assert rows[-1].after is not None and "locked_until" in rows[-1].after
