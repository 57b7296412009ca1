"""The audit trail: one append-only row per operator action, PIN verification, transaction
and reversal (``AuditEntry``). Rows are only ever added here, in the caller's transaction, so
an audit row exists exactly when what it describes was committed. Nothing updates or deletes
them (on PostgreSQL a trigger refuses both, migration 0009). PANs are masked before they are
written; a PIN, PIN block or key never is.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from host.bank.models import AuditEntry, utcnow
from host.errors import BadRequest
from protocol.masking import mask_pan

__all__ = [
    "ROLES",
    "Actor",
    "AuditRow",
    "card_subject",
    "list_audit",
    "record",
    "terminal_actor",
    "write_csv",
]

ROLES = ("viewer", "operator", "admin", "terminal", "system")


@dataclass(frozen=True)
class Actor:
    """Who does something: an operator (``role`` viewer/operator/admin) from the panel, the
    API or the command line (``source``: "cli", "web 10.0.0.5", ...), or a terminal."""

    name: str
    role: str
    source: str

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise BadRequest("an actor needs a name of 1 to 64 characters")
        if self.role not in ROLES:
            raise BadRequest(f"unknown role {self.role!r}: one of {', '.join(ROLES)}")
        if len(self.source) > 64:
            raise BadRequest("an actor's source is at most 64 characters")


def terminal_actor(terminal_id: str) -> Actor:
    return Actor(terminal_id or "?", "terminal", "link")


def card_subject(pan: str) -> str:
    return f"card {mask_pan(pan)}"


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Add one audit row in ``session``'s transaction."""
    entry = AuditEntry(
        at=at or utcnow(),
        actor=actor.name,
        role=actor.role,
        source=actor.source[:64],
        action=action,
        subject=subject[:64],
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: dt.datetime
    actor: str
    role: str
    source: str
    action: str
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def list_audit(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    limit: int = 1000,
) -> list[AuditRow]:
    """Audit rows, oldest first, filtered. ``action`` matches a prefix ("pin." finds every
    PIN row); ``subject`` a substring."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if subject:
        query = query.where(AuditEntry.subject.contains(subject, autoescape=True))
    rows = session.scalars(query.limit(max(1, min(limit, 100_000))))
    return [
        AuditRow(
            r.id,
            r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC),
            r.actor,
            r.role,
            r.source,
            r.action,
            r.subject,
            r.before,
            r.after,
        )
        for r in rows
    ]


CSV_COLUMNS: Sequence[str] = (
    "id",
    "at",
    "actor",
    "role",
    "source",
    "action",
    "subject",
    "before",
    "after",
)


def write_csv(rows: Iterable[AuditRow], out: IO[str]) -> int:
    """Write ``rows`` as CSV (before/after as JSON text); returns how many."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(
            [
                row.id,
                row.at.isoformat(),
                row.actor,
                row.role,
                row.source,
                row.action,
                row.subject,
                "" if row.before is None else json.dumps(row.before, sort_keys=True),
                "" if row.after is None else json.dumps(row.after, sort_keys=True),
            ]
        )
        count += 1
    return count
