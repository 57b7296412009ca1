"""Bank operations for operators: customers, accounts, cards, terminals and maintenance mode.

Every change takes a SQLAlchemy ``Session`` (the caller owns the transaction: commit it, or
roll it back on an error) and an ``Actor``, and writes one audit row with the state before
and after (``host.bank.audit``) in that same transaction. What it changes is read by the link
on the next message from an ATM (``host.bank.services``, ``host.link.server``):

* a deactivated customer's cards, and blocked or replaced cards, are declined 14;
* a card reported lost or stolen is captured at its next use (41 / 43);
* a frozen or closed account is declined 78, and nothing moves;
* a reset PIN is set by the operator once: the first request verified with it is answered 77
  and the ATM takes the customer to PIN change;
* a terminal out of service is sent an 0800/901 by the link server (polled), and gets 89 on
  its next echo, sign-on or card request; a forced key change gets 88 on its next echo (the
  ATM then changes keys, 0800/161);
* maintenance mode: the same with 90, for every terminal.

A refused operation raises ``ControlRefused`` (an unknown record ``NotFound``), both with a
message an operator can act on; nothing is changed then. The read functions return frozen
views. Never logs or stores a PIN; PANs in the audit trail are masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from host.bank.audit import Actor, card_subject, record
from host.bank.holds import held_cents
from host.bank.models import (
    Account,
    BankState,
    Card,
    CardAccount,
    CardSession,
    Customer,
    Hold,
    LinkRequest,
    Terminal,
    utcnow,
)
from host.bank.pins import PinRuleError, check_pin_rules, hash_pin
from host.errors import BadRequest, ControlRefused, NotFound
from protocol.masking import mask_pan

__all__ = [
    "ACCOUNT_KINDS",
    "AccountView",
    "Actor",
    "CardView",
    "CustomerView",
    "PinSetting",
    "TerminalView",
    "block_card",
    "close_account",
    "create_customer",
    "deactivate_customer",
    "force_key_change",
    "freeze_account",
    "issue_card",
    "list_accounts",
    "list_cards",
    "list_customers",
    "list_terminals",
    "maintenance_mode",
    "open_account",
    "reactivate_customer",
    "replace_card",
    "report_card_lost",
    "report_card_stolen",
    "reset_pin",
    "set_maintenance",
    "terminal_in_service",
    "terminal_out_of_service",
    "unfreeze_account",
    "update_customer",
]

log = logging.getLogger(__name__)

ACCOUNT_KINDS = ("checking", "savings")
_ACCOUNT_TYPE = {"checking": "20", "savings": "10"}
# Cards we issue: this range (inside the test ranges the host accepts by default), 16 digits.
ISSUER_PREFIX = "400000"
CARD_YEARS = 4


@dataclass(frozen=True)
class PinSetting:
    """How PINs are hashed: ``PIN_PEPPER`` and the bcrypt cost (``HostConfig``)."""

    pepper: str
    rounds: int

    def __repr__(self) -> str:  # the pepper is a secret
        return f"PinSetting(rounds={self.rounds})"


@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    active: bool
    accounts: tuple[str, ...]
    cards: tuple[str, ...]  # masked PANs


@dataclass(frozen=True)
class AccountView:
    number: str
    kind: str
    customer_id: int | None
    customer: str
    status: str
    balance_cents: int
    available_cents: int
    held_cents: int


@dataclass(frozen=True)
class CardView:
    pan: str
    masked_pan: str
    customer_id: int
    customer: str
    status: str
    expiry: str
    pin_change_required: bool
    locked_until: dt.datetime | None
    accounts: tuple[tuple[str, str], ...]  # (ISO account type, account number)


@dataclass(frozen=True)
class TerminalView:
    terminal_id: str
    in_service: bool
    key_change_due: bool
    last_sign_on_at: dt.datetime | None
    key_scheme: str
    tpk_kcv: str
    tak_kcv: str
    last_message_at: dt.datetime | None
    last_message: str  # e.g. "0800/301 echo", "0200 STAN 000042 -> 00"
    cash_account: str


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# -- finding records --------------------------------------------------------------------------
def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    return customer


def _account(session: Session, number: str) -> Account:
    account = session.scalar(select(Account).where(Account.number == number).with_for_update())
    if account is None or account.kind not in ACCOUNT_KINDS:
        raise NotFound(f"no customer account {number!r}")
    return account


def _card(session: Session, pan: str) -> Card:
    card = session.scalar(select(Card).where(Card.pan == pan).with_for_update())
    if card is None:
        raise NotFound(f"no card {mask_pan(pan)}")
    return card


def _terminal(session: Session, terminal_id: str) -> Terminal:
    terminal = session.scalar(
        select(Terminal).where(Terminal.terminal_id == terminal_id).with_for_update()
    )
    if terminal is None:
        raise NotFound(f"no terminal {terminal_id!r}")
    return terminal


def _customer_state(customer: Customer) -> dict[str, Any]:
    return {"name": customer.name, "active": customer.active}


def _account_state(account: Account) -> dict[str, Any]:
    return {"status": account.status, "balance_cents": account.balance_cents}


def _card_state(card: Card) -> dict[str, Any]:
    return {"status": card.status, "pin_change_required": card.pin_change_required}


def _terminal_state(terminal: Terminal) -> dict[str, Any]:
    return {"in_service": terminal.in_service, "key_change_due": terminal.key_change_due}


@contextlib.contextmanager
def _audited(
    session: Session, actor: Actor, action: str, subject: str, state: Callable[[], dict[str, Any]]
) -> Iterator[None]:
    """The change made in the ``with`` block, audited with ``state()`` before and after (in
    the caller's transaction; nothing is recorded when the block raises)."""
    before = state()
    yield
    record(session, actor, action, subject, before, state())


# -- customers --------------------------------------------------------------------------------
def _check_name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 120:
        raise BadRequest("a customer name has 1 to 120 characters")
    return name


def create_customer(session: Session, actor: Actor, name: str) -> CustomerView:
    customer = Customer(name=_check_name(name), active=True)
    session.add(customer)
    session.flush()
    record(
        session,
        actor,
        "customer.create",
        f"customer {customer.id}",
        None,
        _customer_state(customer),
    )
    return _customer_view(customer)


def update_customer(session: Session, actor: Actor, customer_id: int, *, name: str) -> CustomerView:
    customer = _customer(session, customer_id)
    new_name = _check_name(name)
    with _audited(session, actor, "customer.update", f"customer {customer.id}",
                  lambda: _customer_state(customer)):  # fmt: skip
        customer.name = new_name
    return _customer_view(customer)


def _set_customer_active(
    session: Session, actor: Actor, customer_id: int, active: bool
) -> CustomerView:
    customer = _customer(session, customer_id)
    if customer.active is active:
        raise ControlRefused(
            f"customer {customer_id} is already {'active' if active else 'deactivated'}"
        )
    action = "customer.reactivate" if active else "customer.deactivate"
    with _audited(session, actor, action, f"customer {customer.id}",
                  lambda: _customer_state(customer)):  # fmt: skip
        customer.active = active
    return _customer_view(customer)


def deactivate_customer(session: Session, actor: Actor, customer_id: int) -> CustomerView:
    """The customer's cards are declined (14) until reactivated; accounts keep their money."""
    return _set_customer_active(session, actor, customer_id, False)


def reactivate_customer(session: Session, actor: Actor, customer_id: int) -> CustomerView:
    return _set_customer_active(session, actor, customer_id, True)


# -- accounts ---------------------------------------------------------------------------------
def open_account(session: Session, actor: Actor, customer_id: int, kind: str) -> AccountView:
    """A new account with a zero balance, numbered after the customer's (1000-CCCC-NNNN)."""
    if kind not in ACCOUNT_KINDS:
        raise BadRequest(f"account kind {kind!r}: one of {', '.join(ACCOUNT_KINDS)}")
    customer = _customer(session, customer_id)
    if not customer.active:
        raise ControlRefused(f"customer {customer_id} is deactivated: reactivate first")
    prefix = f"1000-{customer.id:04d}-"
    taken = set(session.scalars(select(Account.number).where(Account.number.startswith(prefix))))
    serial = next(n for n in range(1, 10_000) if f"{prefix}{n:04d}" not in taken)
    account = Account(
        number=f"{prefix}{serial:04d}", kind=kind, customer=customer, balance_cents=0, status="open"
    )
    session.add(account)
    session.flush()
    record(
        session,
        actor,
        "account.open",
        f"account {account.number}",
        None,
        {"kind": kind, **_account_state(account)},
    )
    return _account_view(session, account)


def close_account(session: Session, actor: Actor, number: str) -> AccountView:
    """Only an account with a zero balance and no hold; its cards no longer reach it."""
    account = _account(session, number)
    if account.status == "closed":
        raise ControlRefused(f"account {number} is already closed")
    if account.balance_cents != 0:
        raise ControlRefused(
            f"account {number} has a balance of {account.balance_cents} cents: "
            "only an account with a zero balance can be closed"
        )
    if session.scalar(
        select(func.count())
        .select_from(Hold)
        .where(Hold.account_id == account.id, Hold.status == "held")
    ):
        raise ControlRefused(
            f"account {number} has deposits on hold: close it once they are released"
        )
    with _audited(session, actor, "account.close", f"account {number}",
                  lambda: _account_state(account)):  # fmt: skip
        account.status = "closed"
    return _account_view(session, account)


def _set_frozen(session: Session, actor: Actor, number: str, frozen: bool) -> AccountView:
    account = _account(session, number)
    if account.status == "closed":
        raise ControlRefused(f"account {number} is closed")
    wanted = "frozen" if frozen else "open"
    if account.status == wanted:
        raise ControlRefused(f"account {number} is already {wanted}")
    action = "account.freeze" if frozen else "account.unfreeze"
    with _audited(session, actor, action, f"account {number}", lambda: _account_state(account)):
        account.status = wanted
    return _account_view(session, account)


def freeze_account(session: Session, actor: Actor, number: str) -> AccountView:
    """Every card request on the account is declined 78 until it is unfrozen."""
    return _set_frozen(session, actor, number, True)


def unfreeze_account(session: Session, actor: Actor, number: str) -> AccountView:
    return _set_frozen(session, actor, number, False)


# -- cards ------------------------------------------------------------------------------------
def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _new_pan(session: Session) -> str:
    while True:
        body = ISSUER_PREFIX + f"{secrets.randbelow(10**9):09d}"
        pan = body + _luhn_digit(body)
        if session.scalar(select(Card.id).where(Card.pan == pan)) is None:
            return pan


def _hash_new_pin(pin: str, setting: PinSetting) -> str:
    try:
        check_pin_rules(pin)
    except PinRuleError as exc:
        raise BadRequest(f"PIN refused: {exc}") from exc
    return hash_pin(pin, setting.pepper, setting.rounds)


def issue_card(
    session: Session,
    actor: Actor,
    customer_id: int,
    accounts: list[str],
    pin: str,
    setting: PinSetting,
    *,
    now: dt.datetime | None = None,
) -> str:
    """A new card for the customer reaching ``accounts`` (their own, at most one checking and
    one savings); the PIN is set as given and must be changed at first use. Returns the PAN."""
    customer = _customer(session, customer_id)
    if not customer.active:
        raise ControlRefused(f"customer {customer_id} is deactivated: reactivate first")
    if not accounts:
        raise BadRequest("a card needs at least one account")
    links: dict[str, Account] = {}
    for number in accounts:
        account = _account(session, number)
        if account.customer_id != customer.id:
            raise ControlRefused(f"account {number} is not customer {customer_id}'s")
        if account.status == "closed":
            raise ControlRefused(f"account {number} is closed")
        account_type = _ACCOUNT_TYPE[account.kind]
        if account_type in links:
            raise ControlRefused(f"a card reaches one {account.kind} account only")
        links[account_type] = account
    pin_hash = _hash_new_pin(pin, setting)
    moment = now or utcnow()
    card = Card(
        pan=_new_pan(session),
        customer=customer,
        expiry=f"{(moment.year + CARD_YEARS) % 100:02d}{moment.month:02d}",
        status="active",
        pin_hash=pin_hash,
        pin_change_required=True,
    )
    session.add(card)
    session.flush()
    for account_type, account in links.items():
        session.add(CardAccount(card=card, account=account, account_type=account_type))
    record(
        session,
        actor,
        "card.issue",
        card_subject(card.pan),
        None,
        {**_card_state(card), "customer": customer.id, "accounts": sorted(accounts)},
    )
    return card.pan


_CARD_CHANGES = {
    "blocked": "card.block",
    "lost": "card.report_lost",
    "stolen": "card.report_stolen",
}


def _set_card_status(session: Session, actor: Actor, pan: str, status: str) -> CardView:
    card = _card(session, pan)
    if card.status == "replaced":
        raise ControlRefused(f"card {mask_pan(pan)} was replaced; act on its replacement")
    if card.status == status:
        raise ControlRefused(f"card {mask_pan(pan)} is already {status}")
    with _audited(session, actor, _CARD_CHANGES[status], card_subject(pan),
                  lambda: _card_state(card)):  # fmt: skip
        card.status = status
        # Whatever session the card had at a terminal is over.
        session.execute(delete(CardSession).where(CardSession.card_id == card.id))
    return _card_view(card)


def block_card(session: Session, actor: Actor, pan: str) -> CardView:
    """Declined (14) from its next use; not captured."""
    return _set_card_status(session, actor, pan, "blocked")


def report_card_lost(session: Session, actor: Actor, pan: str) -> CardView:
    """Captured at its next use (41)."""
    return _set_card_status(session, actor, pan, "lost")


def report_card_stolen(session: Session, actor: Actor, pan: str) -> CardView:
    """Captured at its next use (43)."""
    return _set_card_status(session, actor, pan, "stolen")


def replace_card(
    session: Session, actor: Actor, pan: str, *, now: dt.datetime | None = None
) -> str:
    """A new card (new PAN, same customer, accounts and PIN) for ``pan``; the old one is
    marked replaced and declined (14), unless it was reported lost or stolen (then it stays
    so, and is captured if it comes back). Returns the new PAN."""
    old = _card(session, pan)
    if old.status == "replaced":
        raise ControlRefused(f"card {mask_pan(pan)} was already replaced")
    customer = old.customer
    if not customer.active:
        raise ControlRefused(f"customer {customer.id} is deactivated: reactivate first")
    moment = now or utcnow()
    new = Card(
        pan=_new_pan(session),
        customer=customer,
        expiry=f"{(moment.year + CARD_YEARS) % 100:02d}{moment.month:02d}",
        status="active",
        pin_hash=old.pin_hash,
        pin_change_required=old.pin_change_required,
    )
    session.add(new)
    session.flush()
    for link in old.links:
        session.add(
            CardAccount(card=new, account_id=link.account_id, account_type=link.account_type)
        )
    before = _card_state(old)
    if old.status not in ("lost", "stolen"):
        old.status = "replaced"
    session.execute(delete(CardSession).where(CardSession.card_id == old.id))
    record(
        session,
        actor,
        "card.replace",
        card_subject(pan),
        before,
        {**_card_state(old), "replacement": mask_pan(new.pan)},
    )
    return new.pan


def reset_pin(session: Session, actor: Actor, pan: str, pin: str, setting: PinSetting) -> CardView:
    """Set the PIN to ``pin`` (chosen by the operator, told to the customer); the card's
    lockout ends and its sessions close; the first request verified with it is answered 77 so
    the customer changes it at the ATM."""
    card = _card(session, pan)
    if card.status != "active":
        raise ControlRefused(
            f"card {mask_pan(pan)} is {card.status}: only an active card's PIN is reset"
        )
    pin_hash = _hash_new_pin(pin, setting)
    with _audited(session, actor, "card.reset_pin", card_subject(pan), lambda: _card_state(card)):
        card.pin_hash = pin_hash
        card.pin_change_required = True
        card.failed_pin_attempts = 0
        card.locked_until = None
        session.execute(delete(CardSession).where(CardSession.card_id == card.id))
    return _card_view(card)


# -- terminals and the bank -------------------------------------------------------------------
def _set_in_service(
    session: Session, actor: Actor, terminal_id: str, in_service: bool
) -> TerminalView:
    terminal = _terminal(session, terminal_id)
    if terminal.in_service is in_service:
        raise ControlRefused(
            f"terminal {terminal_id} is already {'in' if in_service else 'out of'} service"
        )
    action = "terminal.in_service" if in_service else "terminal.out_of_service"
    with _audited(session, actor, action, f"terminal {terminal_id}",
                  lambda: _terminal_state(terminal)):  # fmt: skip
        terminal.in_service = in_service
    return _terminal_view(session, terminal)


def terminal_out_of_service(session: Session, actor: Actor, terminal_id: str) -> TerminalView:
    """The terminal's next echo, sign-on or card request is answered 89: it shows
    out-of-service (and keeps trying to sign on) until it is back in service."""
    return _set_in_service(session, actor, terminal_id, False)


def terminal_in_service(session: Session, actor: Actor, terminal_id: str) -> TerminalView:
    return _set_in_service(session, actor, terminal_id, True)


def force_key_change(session: Session, actor: Actor, terminal_id: str) -> TerminalView:
    """The terminal's next echo is answered 88: it asks for new working keys (0800/161)."""
    terminal = _terminal(session, terminal_id)
    with _audited(session, actor, "terminal.force_key_change", f"terminal {terminal_id}",
                  lambda: _terminal_state(terminal)):  # fmt: skip
        terminal.key_change_due = True
    return _terminal_view(session, terminal)


def _bank_state(session: Session, *, lock: bool = False) -> BankState:
    query = select(BankState).where(BankState.id == 1)
    state = session.scalar(query.with_for_update() if lock else query)
    if state is None:
        state = BankState(id=1, maintenance=False)
        session.add(state)
        session.flush()
    return state


def maintenance_mode(session: Session) -> bool:
    return bool(session.scalar(select(BankState.maintenance).where(BankState.id == 1)))


def set_maintenance(
    session: Session, actor: Actor, on: bool, *, now: dt.datetime | None = None
) -> bool:
    """Maintenance mode: every card request, sign-on and echo is answered 90 and every ATM
    shows out-of-service; reversal advices are still taken."""
    state = _bank_state(session, lock=True)
    if state.maintenance is on:
        raise ControlRefused(f"maintenance mode is already {'on' if on else 'off'}")
    state.maintenance = on
    state.changed_at = now or utcnow()
    record(session, actor, "bank.maintenance", "bank", {"maintenance": not on}, {"maintenance": on})
    return on


# -- reading ----------------------------------------------------------------------------------
def _customer_view(customer: Customer) -> CustomerView:
    return CustomerView(
        customer.id,
        customer.name,
        customer.active,
        tuple(sorted(a.number for a in customer.accounts)),
        tuple(sorted(mask_pan(c.pan) for c in customer.cards)),
    )


def _account_view(session: Session, account: Account) -> AccountView:
    held = held_cents(session, account.id)
    return AccountView(
        account.number,
        account.kind,
        account.customer_id,
        account.customer.name if account.customer else "",
        account.status,
        account.balance_cents,
        account.balance_cents - held,
        held,
    )


def _card_view(card: Card) -> CardView:
    return CardView(
        card.pan,
        mask_pan(card.pan),
        card.customer_id,
        card.customer.name,
        card.status,
        card.expiry,
        card.pin_change_required,
        _aware(card.locked_until),
        tuple(sorted((link.account_type, link.account.number) for link in card.links)),
    )


_NETWORK_NAMES = {"001": "sign-on", "002": "sign-off", "161": "key change", "301": "echo"}


def _terminal_view(session: Session, terminal: Terminal) -> TerminalView:
    last_request = session.execute(
        select(
            LinkRequest.created_at,
            LinkRequest.mti_class,
            LinkRequest.stan,
            LinkRequest.response_code,
        )
        .where(LinkRequest.terminal_id == terminal.terminal_id)
        .order_by(LinkRequest.id.desc())
        .limit(1)
    ).first()
    network_at = _aware(terminal.last_network_at)
    last_at, last = network_at, ""
    if network_at is not None:
        code = terminal.last_network_code
        last = f"0800/{code} {_NETWORK_NAMES.get(code, '')}".strip()
    if last_request is not None:
        at = _aware(last_request.created_at)
        if at is not None and (last_at is None or at > last_at):
            last_at = at
            last = (
                f"{last_request.mti_class} STAN {last_request.stan} -> {last_request.response_code}"
            )
    return TerminalView(
        terminal.terminal_id,
        terminal.in_service,
        terminal.key_change_due,
        _aware(terminal.last_sign_on_at),
        terminal.key_scheme,
        terminal.tpk_kcv,
        terminal.tak_kcv,
        last_at,
        last,
        terminal.cash_account.number,
    )


def list_customers(session: Session) -> list[CustomerView]:
    return [_customer_view(c) for c in session.scalars(select(Customer).order_by(Customer.id))]


def list_accounts(session: Session, *, customer_id: int | None = None) -> list[AccountView]:
    query = select(Account).where(Account.kind.in_(ACCOUNT_KINDS)).order_by(Account.number)
    if customer_id is not None:
        query = query.where(Account.customer_id == customer_id)
    return [_account_view(session, a) for a in session.scalars(query)]


def list_cards(session: Session, *, customer_id: int | None = None) -> list[CardView]:
    query = select(Card).order_by(Card.id)
    if customer_id is not None:
        query = query.where(Card.customer_id == customer_id)
    return [_card_view(c) for c in session.scalars(query)]


def list_terminals(session: Session) -> list[TerminalView]:
    return [
        _terminal_view(session, t)
        for t in session.scalars(select(Terminal).order_by(Terminal.terminal_id))
    ]
