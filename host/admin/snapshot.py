"""Bank snapshots: the customers, their accounts (with balances) and cards as one JSON
document, and its import with a conflict policy.

- Export never holds a PIN hash unless asked (``with_pin_hashes``); the document says which.
- Import runs in the caller's transaction (all or nothing). Records are matched by their
  natural keys: customer by name, account by number, card by PAN. ``skip`` leaves an existing
  record alone; ``replace`` makes it say what the snapshot says. Balances move only through
  the ledger: a new account's balance, or the difference to an existing one, is posted
  against the bank's equity account (kind ``snapshot-import``), so the ledger still sums to
  zero and every balance is the sum of its entries afterwards.
- A new card without a PIN hash in the snapshot is created ``blocked`` with a hash nothing
  matches: an operator resets its PIN before it works.
- Storage: a local file, or ``s3://bucket/key`` (boto3, the ``s3`` extra).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from sqlalchemy import select
from sqlalchemy.orm import Session

from host.bank.ledger import post
from host.bank.models import Account, Card, CardAccount, Customer
from host.bank.seed import EQUITY_ACCOUNT
from host.errors import BadRequest, HostError
from protocol.masking import mask_pan

__all__ = [
    "FORMAT",
    "POLICIES",
    "ImportReport",
    "SnapshotError",
    "export_bank",
    "import_bank",
    "read_snapshot",
    "write_snapshot",
]

FORMAT = "atm-simulator bank snapshot"
VERSION = 1
POLICIES = ("skip", "replace")
ACCOUNT_KINDS = ("checking", "savings")
CARD_STATUSES = ("active", "lost", "stolen", "blocked", "replaced")
ACCOUNT_STATUSES = ("open", "frozen", "closed")
ACCOUNT_TYPES = ("10", "20")
IMPORT_POSTING = "snapshot-import"


class SnapshotError(HostError):
    """A snapshot that cannot be read or written (where, and why)."""


def export_bank(
    session: Session, *, now: dt.datetime, with_pin_hashes: bool = False
) -> dict[str, Any]:
    customers = []
    for customer in session.scalars(select(Customer).order_by(Customer.name, Customer.id)):
        accounts = session.scalars(
            select(Account).where(Account.customer_id == customer.id).order_by(Account.number)
        ).all()
        cards = []
        for card in session.scalars(
            select(Card).where(Card.customer_id == customer.id).order_by(Card.pan)
        ):
            links = session.execute(
                select(CardAccount.account_type, Account.number)
                .join(Account, Account.id == CardAccount.account_id)
                .where(CardAccount.card_id == card.id)
                .order_by(CardAccount.account_type)
            ).all()
            item: dict[str, Any] = {
                "pan": card.pan,
                "expiry": card.expiry,
                "status": card.status,
                "pin_change_required": card.pin_change_required,
                "accounts": {kind: number for kind, number in links},
            }
            if with_pin_hashes:
                item["pin_hash"] = card.pin_hash
            cards.append(item)
        customers.append(
            {
                "name": customer.name,
                "active": customer.active,
                "accounts": [
                    {
                        "number": a.number,
                        "kind": a.kind,
                        "currency": a.currency,
                        "status": a.status,
                        "balance_cents": a.balance_cents,
                    }
                    for a in accounts
                ],
                "cards": cards,
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now.isoformat(),
        "pin_hashes": with_pin_hashes,
        "customers": customers,
    }


@dataclass
class ImportReport:
    policy: str
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    moved_cents: int = 0  # the sum of the balance changes posted (signed)

    def summary(self, source: str) -> dict[str, Any]:
        """What the audit row keeps: counts, not the records."""
        return {
            "from": source[:200],
            "policy": self.policy,
            "created": len(self.created),
            "replaced": len(self.replaced),
            "skipped": len(self.skipped),
            "moved_cents": self.moved_cents,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "created": self.created,
            "replaced": self.replaced,
            "skipped": self.skipped,
            "moved_cents": self.moved_cents,
        }


def _text(item: dict[str, Any], key: str, where: str, *, size: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value or len(value) > size:
        raise BadRequest(f"{where}: '{key}' must be a text of 1 to {size} characters")
    return value


def _check(document: Any) -> list[dict[str, Any]]:
    """The customers of a well-formed snapshot; ``BadRequest`` naming the first problem."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadRequest(f"not a bank snapshot (expected format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise BadRequest(f"snapshot version {document.get('version')!r}: this host reads {VERSION}")
    customers = document.get("customers")
    if not isinstance(customers, list):
        raise BadRequest("'customers' must be a list")
    numbers: set[str] = set()
    pans: set[str] = set()
    for i, customer in enumerate(customers):
        where = f"customers[{i}]"
        if not isinstance(customer, dict):
            raise BadRequest(f"{where}: must be an object")
        _text(customer, "name", where, size=120)
        if not isinstance(customer.get("active", True), bool):
            raise BadRequest(f"{where}: 'active' must be true or false")
        for j, account in enumerate(customer.get("accounts", [])):
            spot = f"{where}.accounts[{j}]"
            if not isinstance(account, dict):
                raise BadRequest(f"{spot}: must be an object")
            number = _text(account, "number", spot, size=34)
            if number in numbers:
                raise BadRequest(f"{spot}: account {number} appears twice")
            numbers.add(number)
            if account.get("kind") not in ACCOUNT_KINDS:
                raise BadRequest(f"{spot}: 'kind' must be one of {', '.join(ACCOUNT_KINDS)}")
            cents = account.get("balance_cents")
            if not isinstance(cents, int) or isinstance(cents, bool) or cents < 0:
                raise BadRequest(f"{spot}: 'balance_cents' must be a whole number of cents >= 0")
            if account.get("status", "open") not in ACCOUNT_STATUSES:
                raise BadRequest(f"{spot}: 'status' must be one of {', '.join(ACCOUNT_STATUSES)}")
            currency = account.get("currency", "840")
            if not isinstance(currency, str) or not (len(currency) == 3 and currency.isdigit()):
                raise BadRequest(f"{spot}: 'currency' must be 3 digits (ISO 4217)")
        for j, card in enumerate(customer.get("cards", [])):
            spot = f"{where}.cards[{j}]"
            if not isinstance(card, dict):
                raise BadRequest(f"{spot}: must be an object")
            pan = _text(card, "pan", spot, size=19)
            if not pan.isdigit() or len(pan) < 12:
                raise BadRequest(f"{spot}: 'pan' must be 12 to 19 digits")
            if pan in pans:
                raise BadRequest(f"{spot}: card {mask_pan(pan)} appears twice")
            pans.add(pan)
            expiry = _text(card, "expiry", spot, size=4)
            if not (len(expiry) == 4 and expiry.isdigit()):
                raise BadRequest(f"{spot}: 'expiry' must be YYMM")
            if card.get("status", "active") not in CARD_STATUSES:
                raise BadRequest(f"{spot}: 'status' must be one of {', '.join(CARD_STATUSES)}")
            links = card.get("accounts", {})
            if not isinstance(links, dict) or not all(
                k in ACCOUNT_TYPES and isinstance(v, str) for k, v in links.items()
            ):
                raise BadRequest(
                    f"{spot}: 'accounts' maps 10 (savings) or 20 (checking) to numbers"
                )
            if not isinstance(card.get("pin_change_required", False), bool):
                raise BadRequest(f"{spot}: 'pin_change_required' must be true or false")
            pin_hash = card.get("pin_hash")
            if pin_hash is not None and (not isinstance(pin_hash, str) or len(pin_hash) > 128):
                raise BadRequest(f"{spot}: 'pin_hash' must be a bcrypt hash")
    return customers


def _equity(session: Session) -> Account:
    equity = session.scalar(select(Account).where(Account.number == EQUITY_ACCOUNT))
    if equity is None:
        equity = Account(number=EQUITY_ACCOUNT, kind="equity", customer_id=None, balance_cents=0)
        session.add(equity)
        session.flush()
    return equity


def _set_balance(session: Session, account: Account, cents: int, report: ImportReport) -> None:
    difference = cents - account.balance_cents
    if difference:
        post(
            session,
            IMPORT_POSTING,
            [(account, difference), (_equity(session), -difference)],
            description=f"snapshot import ({report.policy})",
        )
        report.moved_cents += difference


def import_bank(session: Session, document: Any, *, policy: str) -> ImportReport:
    """Apply a snapshot; ``BadRequest`` (nothing changed) for a malformed one or an account a
    card names that neither the snapshot nor the bank has."""
    if policy not in POLICIES:
        raise BadRequest(f"unknown conflict policy {policy!r} (one of {', '.join(POLICIES)})")
    customers = _check(document)
    report = ImportReport(policy)
    replace = policy == "replace"
    for item in customers:
        name = item["name"]
        customer = session.scalar(select(Customer).where(Customer.name == name))
        if customer is None:
            customer = Customer(name=name, active=item.get("active", True))
            session.add(customer)
            session.flush()
            report.created.append(f"customer {name}")
        elif replace and customer.active != item.get("active", True):
            customer.active = item.get("active", True)
            report.replaced.append(f"customer {name}")
        for spec in item.get("accounts", []):
            number = spec["number"]
            account = session.scalar(select(Account).where(Account.number == number))
            if account is None:
                account = Account(
                    number=number,
                    kind=spec["kind"],
                    customer_id=customer.id,
                    currency=spec.get("currency", "840"),
                    status=spec.get("status", "open"),
                    balance_cents=0,
                )
                session.add(account)
                session.flush()
                _set_balance(session, account, spec["balance_cents"], report)
                report.created.append(f"account {number}")
            elif account.kind not in ACCOUNT_KINDS:
                raise BadRequest(f"account {number} is an internal {account.kind} account")
            elif replace:
                account.kind = spec["kind"]
                account.customer_id = customer.id
                account.currency = spec.get("currency", account.currency)
                account.status = spec.get("status", "open")
                _set_balance(session, account, spec["balance_cents"], report)
                report.replaced.append(f"account {number}")
            else:
                report.skipped.append(f"account {number}")
        for spec in item.get("cards", []):
            pan = spec["pan"]
            card = session.scalar(select(Card).where(Card.pan == pan))
            pin_hash = spec.get("pin_hash")
            if card is not None and not replace:
                report.skipped.append(f"card {mask_pan(pan)}")
                continue
            if card is None:
                card = Card(
                    pan=pan,
                    customer_id=customer.id,
                    expiry=spec["expiry"],
                    status=_new_card_status(spec.get("status", "active"), pin_hash),
                    pin_hash=pin_hash or _unguessable_pin_hash(),
                    pin_change_required=spec.get("pin_change_required", False),
                    failed_pin_attempts=0,
                )
                session.add(card)
                session.flush()
                report.created.append(f"card {mask_pan(pan)}")
            else:
                card.customer_id = customer.id
                card.expiry = spec["expiry"]
                card.status = spec.get("status", card.status)
                card.pin_change_required = spec.get("pin_change_required", card.pin_change_required)
                if pin_hash:
                    card.pin_hash = pin_hash
                for link in session.scalars(
                    select(CardAccount).where(CardAccount.card_id == card.id)
                ):
                    session.delete(link)
                session.flush()
                report.replaced.append(f"card {mask_pan(pan)}")
            for account_type, number in sorted(spec.get("accounts", {}).items()):
                account = session.scalar(select(Account).where(Account.number == number))
                if account is None:
                    raise BadRequest(
                        f"card {mask_pan(pan)} names account {number}, which is nowhere"
                    )
                session.add(
                    CardAccount(card_id=card.id, account_id=account.id, account_type=account_type)
                )
            session.flush()
    return report


def _new_card_status(status: str, pin_hash: str | None) -> str:
    # Without its PIN hash a card cannot work until an operator resets the PIN.
    return status if pin_hash or status != "active" else "blocked"


def _unguessable_pin_hash() -> str:
    # A real bcrypt hash (the PIN check must be able to read it) of a secret nobody knows.
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(4)).decode()


def _split_s3(location: str) -> tuple[str, str]:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise SnapshotError(f"{location}: an S3 location is s3://BUCKET/KEY")
    return bucket, key


def _s3_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        import boto3
    except ImportError as exc:
        raise SnapshotError("S3 needs boto3: pip install 'atm-simulator[s3]'") from exc
    return boto3.client("s3")


def write_snapshot(document: dict[str, Any], location: str, *, s3: Any = None) -> str:
    """Store the document at a file path or ``s3://bucket/key``; returns where."""
    body = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
    if location.startswith("s3://"):
        bucket, key = _split_s3(location)
        try:
            _s3_client(s3).put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json"
            )
        except Exception as exc:  # botocore's errors have no common root we can import lazily
            raise SnapshotError(f"{location}: cannot write: {exc}") from exc
        return location
    path = Path(location)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        path.chmod(0o600)  # it may hold PIN hashes, and always holds PANs
    except OSError as exc:
        raise SnapshotError(f"{location}: cannot write: {exc.strerror}") from exc
    return str(path)


def read_snapshot(location: str, *, s3: Any = None) -> Any:
    """The parsed JSON at a file path or ``s3://bucket/key``."""
    if location.startswith("s3://"):
        bucket, key = _split_s3(location)
        try:
            body = _s3_client(s3).get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # botocore's errors have no common root we can import lazily
            raise SnapshotError(f"{location}: cannot read: {exc}") from exc
    else:
        try:
            body = Path(location).read_bytes()
        except OSError as exc:
            raise SnapshotError(f"{location}: cannot read: {exc.strerror}") from exc
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{location}: not JSON ({exc})") from exc
