"""The admin API's bank routes: each one calls an operation of ``host.bank.controls`` (or
reads through it) as the logged-in operator, from the client's address; the controls write
the audit row in the same transaction. Cards are named by their id, never by their PAN, so a
full PAN reaches the browser only once: in the answer to issuing or replacing a card.

``ControlRefused`` answers 409, ``NotFound`` 404, ``BadRequest`` 400 (``host.admin.web``).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from host.admin.web import (
    AdminRoute,
    Caller,
    Field,
    Handler,
    _ctx,
    _json,
    int_field,
    json_body,
    run_db,
    text_field,
)
from host.bank import controls
from host.bank.audit import Actor, list_audit, write_csv
from host.bank.models import Card
from host.errors import BadRequest, NotFound

__all__ = ["BANK_ROUTES"]

AUDIT_LIMIT = 5000


def _time(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# -- views as JSON -------------------------------------------------------------------------
def customer_json(view: controls.CustomerView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "active": view.active,
        "accounts": list(view.accounts),
        "cards": list(view.cards),
    }


def account_json(view: controls.AccountView) -> dict[str, Any]:
    return {
        "number": view.number,
        "kind": view.kind,
        "customer_id": view.customer_id,
        "customer": view.customer,
        "status": view.status,
        "balance_cents": view.balance_cents,
        "available_cents": view.available_cents,
        "held_cents": view.held_cents,
    }


def card_json(view: controls.CardView, card_id: int) -> dict[str, Any]:
    return {
        "id": card_id,
        "masked_pan": view.masked_pan,
        "customer_id": view.customer_id,
        "customer": view.customer,
        "status": view.status,
        "expiry": view.expiry,
        "pin_change_required": view.pin_change_required,
        "locked_until": _time(view.locked_until),
        "accounts": [{"type": kind, "number": number} for kind, number in view.accounts],
    }


def terminal_json(view: controls.TerminalView) -> dict[str, Any]:
    return {
        "terminal_id": view.terminal_id,
        "in_service": view.in_service,
        "key_change_due": view.key_change_due,
        "last_sign_on_at": _time(view.last_sign_on_at),
        "key_scheme": view.key_scheme,
        "tpk_kcv": view.tpk_kcv,
        "tak_kcv": view.tak_kcv,
        "last_message_at": _time(view.last_message_at),
        "last_message": view.last_message,
        "cash_account": view.cash_account,
    }


def _card_ids(session: Session) -> dict[str, int]:
    return {pan: card_id for card_id, pan in session.execute(select(Card.id, Card.pan)).all()}


def _pan_of(session: Session, card_id: int) -> str:
    pan = session.scalar(select(Card.pan).where(Card.id == card_id))
    if pan is None:
        raise NotFound(f"no card with id {card_id}")
    return pan


def _int_param(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"no {name.removesuffix('_id')} with id {raw}")
    return int(raw)


def _customer_query(request: web.Request) -> int | None:
    raw = request.query.get("customer", "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise BadRequest("customer must be a customer id")
    return int(raw)


K = TypeVar("K")
V = TypeVar("V")


def _change(
    key: Callable[[web.Request], K],
    operation: Callable[[Session, Actor, K], V],
    answer: Callable[[K, V], dict[str, Any]],
) -> Handler:
    """A route that changes one record: its key from the path, ``operation`` of
    ``host.bank.controls`` as the operator in one transaction, the record as JSON."""

    async def handler(request: web.Request, caller: Caller) -> web.StreamResponse:
        found = key(request)

        def work(session: Session) -> dict[str, Any]:
            return answer(found, operation(session, caller.actor, found))

        return _json(await run_db(request, work, write=True))

    return handler


def _customer_id(request: web.Request) -> int:
    return _int_param(request, "customer_id")


def _card_id(request: web.Request) -> int:
    return _int_param(request, "card_id")


def _path_text(name: str) -> Callable[[web.Request], str]:
    return lambda request: request.match_info[name]


def _customer_change(operation: Callable[[Session, Actor, int], controls.CustomerView]) -> Handler:
    return _change(_customer_id, operation, lambda _, view: customer_json(view))


def _account_change(operation: Callable[[Session, Actor, str], controls.AccountView]) -> Handler:
    return _change(_path_text("number"), operation, lambda _, view: account_json(view))


def _card_change(operation: Callable[[Session, Actor, str], controls.CardView]) -> Handler:
    """Cards are named by id in the path; the operation takes the PAN."""
    return _change(
        _card_id,
        lambda session, who, card_id: operation(session, who, _pan_of(session, card_id)),
        lambda card_id, view: card_json(view, card_id),
    )


def _terminal_change(operation: Callable[[Session, Actor, str], controls.TerminalView]) -> Handler:
    return _change(_path_text("terminal_id"), operation, lambda _, view: terminal_json(view))


# -- customers -----------------------------------------------------------------------------
async def customers_list(request: web.Request, caller: Caller) -> web.StreamResponse:
    views = await run_db(request, controls.list_customers, write=False)
    return _json({"customers": [customer_json(v) for v in views]})


async def customer_create(request: web.Request, caller: Caller) -> web.StreamResponse:
    name = text_field(await json_body(request), "name", size=120)
    view = await run_db(
        request, lambda s: controls.create_customer(s, caller.actor, name), write=True
    )
    return _json(customer_json(view), 201)


async def customer_update(request: web.Request, caller: Caller) -> web.StreamResponse:
    customer_id = _int_param(request, "customer_id")
    name = text_field(await json_body(request), "name", size=120)
    view = await run_db(
        request,
        lambda s: controls.update_customer(s, caller.actor, customer_id, name=name),
        write=True,
    )
    return _json(customer_json(view))


# -- accounts ------------------------------------------------------------------------------
async def accounts_list(request: web.Request, caller: Caller) -> web.StreamResponse:
    customer_id = _customer_query(request)
    views = await run_db(
        request, lambda s: controls.list_accounts(s, customer_id=customer_id), write=False
    )
    return _json({"accounts": [account_json(v) for v in views]})


async def account_open(request: web.Request, caller: Caller) -> web.StreamResponse:
    body = await json_body(request)
    customer_id = int_field(body, "customer_id", low=1, high=10**12)
    kind = text_field(body, "kind", size=16)
    view = await run_db(
        request, lambda s: controls.open_account(s, caller.actor, customer_id, kind), write=True
    )
    return _json(account_json(view), 201)


# -- cards ---------------------------------------------------------------------------------
async def cards_list(request: web.Request, caller: Caller) -> web.StreamResponse:
    customer_id = _customer_query(request)

    def work(session: Session) -> list[dict[str, Any]]:
        ids = _card_ids(session)
        return [
            card_json(v, ids[v.pan]) for v in controls.list_cards(session, customer_id=customer_id)
        ]

    return _json({"cards": await run_db(request, work, write=False)})


def _pin_setting(request: web.Request) -> controls.PinSetting:
    config = _ctx(request).config
    return controls.PinSetting(config.pin_pepper, config.bcrypt_rounds)


def _pin(body: dict[str, Any]) -> str:
    pin = body.get("pin")
    if not isinstance(pin, str) or not pin:
        raise BadRequest("'pin' is required (4 to 6 digits)")
    return pin


async def card_issue(request: web.Request, caller: Caller) -> web.StreamResponse:
    body = await json_body(request)
    customer_id = int_field(body, "customer_id", low=1, high=10**12)
    accounts = body.get("accounts")
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise BadRequest("'accounts' must be a list of account numbers")
    pin = _pin(body)
    setting = _pin_setting(request)
    now = _ctx(request).clock()

    def work(session: Session) -> dict[str, Any]:
        pan = controls.issue_card(
            session, caller.actor, customer_id, accounts, pin, setting, now=now
        )
        return {"pan": pan, **_card_by_pan(session, pan)}

    return _json(await run_db(request, work, write=True), 201)


def _card_by_pan(session: Session, pan: str) -> dict[str, Any]:
    ids = _card_ids(session)
    view = next(v for v in controls.list_cards(session) if v.pan == pan)
    return card_json(view, ids[pan])


async def card_replace(request: web.Request, caller: Caller) -> web.StreamResponse:
    card_id = _int_param(request, "card_id")
    now = _ctx(request).clock()

    def work(session: Session) -> dict[str, Any]:
        pan = controls.replace_card(session, caller.actor, _pan_of(session, card_id), now=now)
        return {"pan": pan, **_card_by_pan(session, pan)}

    return _json(await run_db(request, work, write=True), 201)


async def card_reset_pin(request: web.Request, caller: Caller) -> web.StreamResponse:
    card_id = _int_param(request, "card_id")
    pin = _pin(await json_body(request))
    setting = _pin_setting(request)

    def work(session: Session) -> dict[str, Any]:
        pan = _pan_of(session, card_id)
        return card_json(controls.reset_pin(session, caller.actor, pan, pin, setting), card_id)

    return _json(await run_db(request, work, write=True))


# -- terminals and the bank ----------------------------------------------------------------
async def _push(request: web.Request) -> None:
    """Stopped terminals hear it now rather than at the link server's next poll."""
    push = _ctx(request).push_switches
    if push is not None:
        await push()


async def terminals_list(request: web.Request, caller: Caller) -> web.StreamResponse:
    def work(session: Session) -> dict[str, Any]:
        return {
            "maintenance": controls.maintenance_mode(session),
            "terminals": [terminal_json(v) for v in controls.list_terminals(session)],
        }

    return _json(await run_db(request, work, write=False))


async def maintenance_view(request: web.Request, caller: Caller) -> web.StreamResponse:
    on = await run_db(request, controls.maintenance_mode, write=False)
    return _json({"maintenance": on})


async def maintenance_set(request: web.Request, caller: Caller) -> web.StreamResponse:
    body = await json_body(request)
    on = body.get("on")
    if not isinstance(on, bool):
        raise BadRequest("'on' must be true or false")
    now = _ctx(request).clock()
    result = await run_db(
        request,
        lambda s: controls.set_maintenance(s, caller.actor, on, now=now),
        write=True,
    )
    await _push(request)
    return _json({"maintenance": result})


# -- the audit trail -----------------------------------------------------------------------
def _moment(request: web.Request, name: str) -> dt.datetime | None:
    raw = request.query.get(name, "")
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: not an ISO 8601 date or time: {raw[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _audit_rows(request: web.Request) -> Callable[[Session], list[Any]]:
    raw = request.query.get("limit", "500")
    if not raw.isdigit() or not 1 <= int(raw) <= AUDIT_LIMIT:
        raise BadRequest(f"limit must be 1..{AUDIT_LIMIT}")
    since, until = _moment(request, "since"), _moment(request, "until")
    action = request.query.get("action", "")[:40] or None
    by = request.query.get("actor", "")[:64] or None
    subject = request.query.get("subject", "")[:64] or None
    limit = int(raw)
    return lambda session: list_audit(
        session, since=since, until=until, action=action, actor=by, subject=subject, limit=limit
    )


async def audit_list(request: web.Request, caller: Caller) -> web.StreamResponse:
    rows = await run_db(request, _audit_rows(request), write=False)
    return _json(
        {
            "rows": [
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "role": r.role,
                    "source": r.source,
                    "action": r.action,
                    "subject": r.subject,
                    "before": r.before,
                    "after": r.after,
                }
                for r in rows
            ]
        }
    )


async def audit_csv(request: web.Request, caller: Caller) -> web.StreamResponse:
    rows = await run_db(request, _audit_rows(request), write=False)
    out = io.StringIO()
    write_csv(rows, out)
    stamp = _ctx(request).clock().strftime("%Y%m%dT%H%M%SZ")
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


AUDIT_QUERY = (
    Field("since", description="from this time (ISO 8601, UTC unless it says)", required=False),
    Field("until", description="before this time", required=False),
    Field("action", description="actions starting with this, e.g. card. or pin.", required=False),
    Field("actor", description="this operator or terminal id", required=False),
    Field("subject", description="subjects containing this, e.g. 7899", required=False),
    Field("limit", "integer", f"at most this many rows (500, at most {AUDIT_LIMIT})", False),
)
CUSTOMER_FILTER = (Field("customer", "integer", "only this customer's (id)", False),)

BANK_ROUTES: list[AdminRoute] = [
    AdminRoute("GET", "/customers", "viewer", "list customers", customers_list),
    AdminRoute("POST", "/customers", "operator", "create a customer", customer_create,
               body=(Field("name"),)),
    AdminRoute("PATCH", "/customers/{customer_id}", "operator", "rename a customer",
               customer_update, body=(Field("name"),)),
    AdminRoute("POST", "/customers/{customer_id}/deactivate", "operator",
               "deactivate a customer: their cards are declined (14)",
               _customer_change(controls.deactivate_customer)),
    AdminRoute("POST", "/customers/{customer_id}/reactivate", "operator",
               "reactivate a customer", _customer_change(controls.reactivate_customer)),
    AdminRoute("GET", "/accounts", "viewer", "list customer accounts", accounts_list,
               query=CUSTOMER_FILTER),
    AdminRoute("POST", "/accounts", "operator", "open an account (zero balance)", account_open,
               body=(Field("customer_id", "integer"),
                     Field("kind", description="checking or savings"))),
    AdminRoute("POST", "/accounts/{number}/close", "operator",
               "close an account (zero balance, no holds)",
               _account_change(controls.close_account)),
    AdminRoute("POST", "/accounts/{number}/freeze", "operator",
               "freeze an account: every request on it is declined (78)",
               _account_change(controls.freeze_account)),
    AdminRoute("POST", "/accounts/{number}/unfreeze", "operator", "unfreeze an account",
               _account_change(controls.unfreeze_account)),
    AdminRoute("GET", "/cards", "viewer", "list cards (PANs masked)", cards_list,
               query=CUSTOMER_FILTER),
    AdminRoute("POST", "/cards", "operator",
               "issue a card (its PIN is changed at first use; the answer has the PAN)",
               card_issue,
               body=(Field("customer_id", "integer"),
                     Field("accounts", "array", "the customer's account numbers"),
                     Field("pin", description="4 to 6 digits, told to the customer"))),
    AdminRoute("POST", "/cards/{card_id}/block", "operator", "block a card (declined 14)",
               _card_change(controls.block_card)),
    AdminRoute("POST", "/cards/{card_id}/report-lost", "operator",
               "report a card lost (captured at its next use, 41)",
               _card_change(controls.report_card_lost)),
    AdminRoute("POST", "/cards/{card_id}/report-stolen", "operator",
               "report a card stolen (captured at its next use, 43)",
               _card_change(controls.report_card_stolen)),
    AdminRoute("POST", "/cards/{card_id}/replace", "operator",
               "replace a card (new PAN, same accounts and PIN)", card_replace),
    AdminRoute("POST", "/cards/{card_id}/reset-pin", "operator",
               "set a PIN the customer must change at the next use (77)", card_reset_pin,
               body=(Field("pin", description="4 to 6 digits"),)),
    AdminRoute("GET", "/terminals", "viewer",
               "list terminals: service, key scheme, check values, last message",
               terminals_list),
    AdminRoute("POST", "/terminals/{terminal_id}/out-of-service", "operator",
               "put a terminal out of service (0800/901 if connected, else 89 on its next message)",
               _terminal_change(controls.terminal_out_of_service)),
    AdminRoute("POST", "/terminals/{terminal_id}/in-service", "operator",
               "put a terminal back in service",
               _terminal_change(controls.terminal_in_service)),
    AdminRoute("POST", "/terminals/{terminal_id}/key-change", "admin",
               "force a key change (88 on its next echo)",
               _terminal_change(controls.force_key_change)),
    AdminRoute("GET", "/maintenance", "viewer", "is the bank in maintenance mode",
               maintenance_view),
    AdminRoute("POST", "/maintenance", "admin",
               "maintenance mode on or off (every ATM out of service, requests declined 90)",
               maintenance_set,
               body=(Field("on", "boolean"),)),
    AdminRoute("GET", "/audit", "viewer", "the audit trail, filtered (oldest first)",
               audit_list, query=AUDIT_QUERY),
    AdminRoute("GET", "/audit.csv", "viewer", "the audit trail as CSV", audit_csv,
               query=AUDIT_QUERY, produces="text/csv"),
]  # fmt: skip
