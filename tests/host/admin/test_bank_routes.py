"""The bank operations over the admin API on both databases, as an operator would use them:
the effect on the next request through the authorization service, the answer codes of a
refusal, and the audit trail (who, from where, before and after; PANs masked; CSV)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from urllib.parse import quote

from tests.host.admin.conftest import AdminRig
from tests.host.conftest import ALICE, ALICE_CHECKING, BOB, BOB_CHECKING, Requests


async def authorize(admin: AdminRig, request) -> str:
    outcome = await asyncio.to_thread(admin.host.service.authorize, request)
    return str(outcome.response_code)


async def card_id(client, masked: str) -> int:
    status, body = await client.get("/admin/api/cards")
    assert status == 200
    return int(next(c["id"] for c in body["cards"] if c["masked_pan"] == masked))


async def test_freeze_declines_and_nothing_moves_then_unfreeze_approves(admin: AdminRig):
    otto = await admin.client("otto")
    requests = Requests()
    status, body = await otto.post(f"/admin/api/accounts/{ALICE_CHECKING}/freeze")
    assert status == 200 and body["status"] == "frozen"
    assert await otto.post(f"/admin/api/accounts/{ALICE_CHECKING}/freeze") == (
        409,
        {"error": f"account {ALICE_CHECKING} is already frozen"},
    )
    assert await authorize(admin, requests.withdrawal(10_000)) == "78"
    assert admin.host.balance(ALICE_CHECKING) == 525_000
    assert (await otto.post(f"/admin/api/accounts/{ALICE_CHECKING}/unfreeze"))[0] == 200
    assert await authorize(admin, requests.withdrawal(10_000)) == "00"
    assert admin.host.balance(ALICE_CHECKING) == 515_000
    status, audit = await otto.get("/admin/api/audit?action=account.")
    assert status == 200
    rows = audit["rows"]
    assert [r["action"] for r in rows] == ["account.freeze", "account.unfreeze"]
    assert rows[0]["actor"] == "otto" and rows[0]["role"] == "operator"
    assert rows[0]["source"] == "web 127.0.0.1"
    assert rows[0]["subject"] == f"account {ALICE_CHECKING}"
    assert rows[0]["before"]["status"] == "open" and rows[0]["after"]["status"] == "frozen"


async def test_cards_by_id_with_masked_pans_stolen_is_captured(admin: AdminRig):
    otto = await admin.client("otto")
    status, cards = await otto.get("/admin/api/cards?customer=1")
    assert status == 200
    assert ALICE not in json.dumps(cards)
    alice = await card_id(otto, "400000******7899")
    status, body = await otto.post(f"/admin/api/cards/{alice}/report-stolen")
    assert status == 200 and body["status"] == "stolen"
    assert await authorize(admin, Requests().withdrawal(2_000)) == "43"
    assert admin.host.balance(ALICE_CHECKING) == 525_000
    assert (await otto.post("/admin/api/cards/99999/block"))[0] == 404
    assert (await otto.post("/admin/api/cards/abc/block"))[0] == 404
    # The audit trail names the card masked, in the JSON and in the CSV.
    for path in ("/admin/api/audit", "/admin/api/audit.csv"):
        status, text = await otto.call("GET", path, raw=True)
        assert status == 200 and ALICE.encode() not in text
        assert b"400000******7899" in text


async def test_issue_a_card_and_reset_a_pin(admin: AdminRig):
    otto = await admin.client("otto")
    status, issued = await otto.post(
        "/admin/api/cards", {"customer_id": 2, "accounts": [BOB_CHECKING], "pin": "2468"}
    )
    assert status == 201, issued
    assert issued["pan"].startswith("400000") and len(issued["pan"]) == 16
    assert issued["pin_change_required"] is True
    assert issued["accounts"] == [{"type": "20", "number": BOB_CHECKING}]
    status, body = await otto.post(
        "/admin/api/cards", {"customer_id": 2, "accounts": [BOB_CHECKING], "pin": "1234"}
    )
    assert status == 400 and "PIN refused" in body["error"]
    bob = await card_id(otto, "400000******3219")
    assert (await otto.post(f"/admin/api/cards/{bob}/reset-pin", {"pin": "1111"}))[0] == 400
    status, body = await otto.post(f"/admin/api/cards/{bob}/reset-pin", {"pin": "2580"})
    assert status == 200 and body["pin_change_required"] is True
    # The next transaction with the new PIN sends the customer to PIN change.
    assert await authorize(admin, Requests().withdrawal(2_000, pan=BOB, pin="2580")) == "77"
    status, audit = await otto.get("/admin/api/audit?action=card.")
    assert [r["action"] for r in audit["rows"]] == ["card.issue", "card.reset_pin"]
    # Neither PIN in what the rows record (their timestamps' microseconds may hold the digits).
    recorded = json.dumps(
        [{k: v for k, v in r.items() if k not in ("at", "id")} for r in audit["rows"]]
    )
    assert "2580" not in recorded and "2468" not in recorded


async def test_customers_and_accounts_lifecycle(admin: AdminRig):
    otto = await admin.client("otto")
    status, dora = await otto.post("/admin/api/customers", {"name": "Dora  Evans"})
    assert status == 201 and dora["name"] == "Dora Evans" and dora["active"] is True
    number = f"/admin/api/customers/{dora['id']}"
    status, renamed = await otto.call("PATCH", number, {"name": "Dora Evans-Lee"})
    assert status == 200 and renamed["name"] == "Dora Evans-Lee"
    status, account = await otto.post(
        "/admin/api/accounts", {"customer_id": dora["id"], "kind": "savings"}
    )
    assert status == 201 and account["balance_cents"] == 0
    assert (await otto.post(f"{number}/deactivate"))[1]["active"] is False
    status, body = await otto.post(
        "/admin/api/accounts", {"customer_id": dora["id"], "kind": "checking"}
    )
    assert status == 409 and "deactivated" in body["error"]
    assert (await otto.post(f"{number}/reactivate"))[1]["active"] is True
    status, body = await otto.post(f"/admin/api/accounts/{ALICE_CHECKING}/close")
    assert status == 409 and "zero balance" in body["error"]
    status, closed = await otto.post(f"/admin/api/accounts/{account['number']}/close")
    assert status == 200 and closed["status"] == "closed"
    status, listed = await otto.get(f"/admin/api/accounts?customer={dora['id']}")
    assert [a["status"] for a in listed["accounts"]] == ["closed"]
    assert (await otto.post("/admin/api/accounts", {"customer_id": 1, "kind": "gold"}))[0] == 400


async def test_terminals_maintenance_and_roles(admin: AdminRig):
    otto = await admin.client("otto")
    ada = await admin.client("ada")
    status, body = await otto.post("/admin/api/terminals/ATM00003/out-of-service")
    assert status == 200 and body["in_service"] is False
    assert (await otto.post("/admin/api/terminals/ATM00003/key-change"))[0] == 403
    status, body = await ada.post("/admin/api/terminals/ATM00003/key-change")
    assert status == 200 and body["key_change_due"] is True
    assert (await otto.post("/admin/api/maintenance", {"on": True}))[0] == 403
    assert await ada.post("/admin/api/maintenance", {"on": True}) == (200, {"maintenance": True})
    assert await authorize(admin, Requests().balance()) == "90"
    status, listed = await otto.get("/admin/api/terminals")
    assert listed["maintenance"] is True
    atm3 = next(t for t in listed["terminals"] if t["terminal_id"] == "ATM00003")
    assert atm3["in_service"] is False and atm3["cash_account"] == "CASH-ATM00003"
    status, figures = await otto.get("/admin/api/dashboard")
    assert figures["terminals"] == {"in_service": 9, "out_of_service": 1}
    assert figures["maintenance"] is True
    assert (await otto.post("/admin/api/terminals/NOPE/in-service"))[0] == 404


async def test_audit_filters_and_csv(admin: AdminRig):
    otto = await admin.client("otto")
    await otto.post(f"/admin/api/accounts/{BOB_CHECKING}/freeze")
    await otto.post(f"/admin/api/accounts/{ALICE_CHECKING}/freeze")
    await otto.post(f"/admin/api/accounts/{BOB_CHECKING}/unfreeze")
    status, body = await otto.get("/admin/api/audit?action=account.&subject=0002-0001")
    assert [r["action"] for r in body["rows"]] == ["account.freeze", "account.unfreeze"]
    status, body = await otto.get("/admin/api/audit?actor=otto&action=operator.login")
    assert len(body["rows"]) == 1 and body["rows"][0]["after"] == {"outcome": "ok"}
    # Time windows: the audit rows carry the time they were written.
    status, body = await otto.get("/admin/api/audit?action=account.")
    stamps = [r["at"] for r in body["rows"]]
    assert stamps == sorted(stamps)
    last = quote(stamps[-1])
    status, body = await otto.get(f"/admin/api/audit?action=account.&since={last}")
    assert body["rows"][-1]["action"] == "account.unfreeze"
    assert all(r["at"] >= stamps[-1] for r in body["rows"])
    status, body = await otto.get(f"/admin/api/audit?action=account.&until={quote(stamps[0])}")
    assert body["rows"] == []
    assert (await otto.get("/admin/api/audit?since=yesterday"))[0] == 400
    assert (await otto.get("/admin/api/audit?limit=0"))[0] == 400
    status, text = await otto.call("GET", "/admin/api/audit.csv?action=account.", raw=True)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    assert [r["action"] for r in rows] == ["account.freeze"] * 2 + ["account.unfreeze"]
    assert rows[0]["actor"] == "otto" and rows[0]["source"] == "web 127.0.0.1"
    assert json.loads(rows[0]["after"])["status"] == "frozen"
