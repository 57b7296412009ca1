"""Seed data (DESIGN section 4): the user's three customers and five accounts, their cards, two
test cards, terminals with their cash accounts. Idempotent: running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from host.bank.ledger import post
from host.bank.models import Account, Card, CardAccount, Customer, Terminal
from host.bank.pins import hash_pin

__all__ = ["SEED_CARDS", "SEED_TERMINALS", "hash_pin", "seed"]

EQUITY_ACCOUNT = "EQUITY-OPENING"
SEED_TERMINALS = [f"ATM{n:05d}" for n in range(1, 11)]


@dataclass(frozen=True)
class SeedAccount:
    number: str
    kind: str
    cents: int


@dataclass(frozen=True)
class SeedCard:
    pan: str
    pin: str
    owner: str
    accounts: dict[str, str]  # ISO account type -> account number
    expiry: str = "3012"
    status: str = "active"


SEED_CUSTOMERS: dict[str, list[SeedAccount]] = {
    "Alice Johnson": [
        SeedAccount("1000-0001-0001", "checking", 525_000),
        SeedAccount("1000-0001-0002", "savings", 1_250_000),
    ],
    "Bob Williams": [SeedAccount("1000-0002-0001", "checking", 85_075)],
    "Charlie Davis": [
        SeedAccount("1000-0003-0001", "checking", 0),
        SeedAccount("1000-0003-0002", "savings", 10_000),
    ],
}

SEED_CARDS = [
    SeedCard(
        "4000001234567899",
        "1234",
        "Alice Johnson",
        {"20": "1000-0001-0001", "10": "1000-0001-0002"},
    ),
    SeedCard("4000009876543219", "5678", "Bob Williams", {"20": "1000-0002-0001"}),
    SeedCard(
        "4000005555555557",
        "9012",
        "Charlie Davis",
        {"20": "1000-0003-0001", "10": "1000-0003-0002"},
    ),
    SeedCard("4000001111222238", "9012", "Charlie Davis", {"20": "1000-0003-0001"}, expiry="2401"),
    SeedCard(
        "4000009999999991", "9012", "Charlie Davis", {"20": "1000-0003-0001"}, status="stolen"
    ),
]


def _account(session: Session, number: str, kind: str, customer: Customer | None) -> Account:
    account = session.scalar(select(Account).where(Account.number == number))
    if account is None:
        account = Account(number=number, kind=kind, customer=customer, balance_cents=0)
        session.add(account)
        session.flush()
    return account


def seed(
    session: Session, *, pin_pepper: str, bcrypt_rounds: int, terminals: int = len(SEED_TERMINALS)
) -> list[str]:
    """Create what is missing; return a line for each thing created."""
    created: list[str] = []
    equity = _account(session, EQUITY_ACCOUNT, "equity", None)
    for name, accounts in SEED_CUSTOMERS.items():
        customer = session.scalar(select(Customer).where(Customer.name == name))
        if customer is None:
            customer = Customer(name=name)
            session.add(customer)
            session.flush()
            created.append(f"customer {name}")
        for spec in accounts:
            if session.scalar(select(Account).where(Account.number == spec.number)) is not None:
                continue
            account = _account(session, spec.number, spec.kind, customer)
            if spec.cents:
                post(
                    session,
                    "opening",
                    [(account, spec.cents), (equity, -spec.cents)],
                    description="opening balance",
                )
            created.append(f"account {spec.number} ({spec.kind}) {spec.cents} cents")
    for card_spec in SEED_CARDS:
        if session.scalar(select(Card).where(Card.pan == card_spec.pan)) is not None:
            continue
        owner = session.scalars(select(Customer).where(Customer.name == card_spec.owner)).one()
        card = Card(
            pan=card_spec.pan,
            customer=owner,
            expiry=card_spec.expiry,
            status=card_spec.status,
            pin_hash=hash_pin(card_spec.pin, pin_pepper, bcrypt_rounds),
        )
        session.add(card)
        session.flush()
        for account_type, number in card_spec.accounts.items():
            account = session.scalars(select(Account).where(Account.number == number)).one()
            session.add(CardAccount(card=card, account=account, account_type=account_type))
        created.append(f"card {card_spec.pan[:6]}******{card_spec.pan[-4:]}")
    # ``terminals`` beyond the ten seed terminals: ATM00011.. (for ``atm fleet``).
    extra = [f"ATM{n:05d}" for n in range(len(SEED_TERMINALS) + 1, terminals + 1)]
    for terminal_id in [*SEED_TERMINALS, *extra]:
        if session.scalar(select(Terminal).where(Terminal.terminal_id == terminal_id)):
            continue
        cash = _account(session, f"CASH-{terminal_id}", "cash", None)
        session.add(Terminal(terminal_id=terminal_id, cash_account=cash))
        created.append(f"terminal {terminal_id}")
    session.flush()
    return created
