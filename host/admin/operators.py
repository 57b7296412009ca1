"""Operator accounts, logins and web sessions, on a SQLAlchemy ``Session`` (no HTTP here).

- Passwords: bcrypt (the host's PIN library), 12 to 72 bytes, never stored or logged in clear.
- Login: a name and password; ``max_failed`` consecutive failures lock the operator for
  ``lockout_seconds`` (a right password during the lock is refused too); a success resets the
  count. An unknown name costs a bcrypt check as well, so timing does not tell names apart.
- Sessions: a random token in the cookie, its SHA-256 in ``operator_sessions``, a CSRF token
  beside it; a session unused for ``idle_seconds`` is gone. The clock is passed in.
- A password an admin chose (an operator created from the panel, a reset) must be changed:
  ``password_change_required`` stays set until the operator changes it, and their session
  opens nothing else meanwhile (the guard in ``host.admin.web``).
- An admin changes others' roles and states, never their own, so the bank always keeps an
  active admin once it has one.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bcrypt
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from host.admin.models import Operator, OperatorSession
from host.bank.audit import Actor, record
from host.errors import BadRequest, HostError, NotFound

__all__ = [
    "ROLES",
    "AuthError",
    "LoggedIn",
    "LoginLocked",
    "LoginRefused",
    "OperatorView",
    "SessionExpired",
    "WrongPassword",
    "audited_change",
    "change_password",
    "check_password_rules",
    "create_operator",
    "end_session",
    "find_operator",
    "list_operators",
    "log_in",
    "operator_state",
    "reset_password",
    "resume_session",
    "role_allows",
    "set_operator_active",
    "set_operator_role",
]

ROLES = ("viewer", "operator", "admin")
MIN_PASSWORD_BYTES = 12
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    """A hash to check against when the name is unknown, at the cost of a real one, so the
    answer's timing does not tell which names exist."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds))


class AuthError(HostError):
    """A login or session that cannot be used (the text is safe to show)."""


class LoginRefused(AuthError):
    """Wrong name or password, or an inactive operator (the same text for all three)."""


class LoginLocked(AuthError):
    """Too many failed logins: refused until ``until``."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"too many failed logins: locked until {until.isoformat()}")
        self.until = until


class WrongPassword(AuthError):
    """The current password given with a change is wrong (counted as a failed login)."""


class SessionExpired(AuthError):
    """No session, an unknown one, or one idle for too long."""


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (viewer < operator < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class OperatorView:
    id: int
    name: str
    role: str
    active: bool
    password_change_required: bool = False
    locked_until: dt.datetime | None = None
    last_login_at: dt.datetime | None = None

    @classmethod
    def of(cls, operator: Operator) -> OperatorView:
        return cls(
            operator.id,
            operator.name,
            operator.role,
            operator.active,
            operator.password_change_required,
            _aware(operator.locked_until) if operator.locked_until else None,
            _aware(operator.last_login_at) if operator.last_login_at else None,
        )


@dataclass(frozen=True)
class LoggedIn:
    """A session just opened or resumed. ``token`` is only set when opened (for the cookie)."""

    operator: OperatorView
    csrf_token: str
    token: str = ""


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone-aware columns: they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_rules(password: str) -> None:
    size = len(password.encode())
    if size < MIN_PASSWORD_BYTES:
        raise BadRequest(f"a password has at least {MIN_PASSWORD_BYTES} characters")
    if size > MAX_PASSWORD_BYTES:
        raise BadRequest(f"a password has at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")


def _hash_password(password: str, rounds: int) -> str:
    check_password_rules(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise BadRequest(f"unknown role {role!r} (one of {', '.join(ROLES)})")


def create_operator(
    session: Session,
    name: str,
    role: str,
    password: str,
    *,
    rounds: int,
    now: dt.datetime,
    change_required: bool = False,
) -> OperatorView:
    """A new operator; ``BadRequest`` for a taken or malformed name, an unknown role or a
    password that breaks the rules. ``change_required``: an admin chose the password, so the
    operator must change it at their first login."""
    if not 1 <= len(name) <= 64 or not set(name) <= NAME_CHARS:
        raise BadRequest("an operator name has 1 to 64 letters, digits or . _ - @")
    _check_role(role)
    password_hash = _hash_password(password, rounds)
    if session.scalar(select(Operator.id).where(Operator.name == name)) is not None:
        raise BadRequest(f"an operator named {name!r} exists already")
    operator = Operator(
        name=name,
        role=role,
        password_hash=password_hash,
        active=True,
        password_change_required=change_required,
        failed_logins=0,
        created_at=now,
    )
    session.add(operator)
    session.flush()
    return OperatorView.of(operator)


def list_operators(session: Session) -> list[OperatorView]:
    return [OperatorView.of(o) for o in session.scalars(select(Operator).order_by(Operator.name))]


def find_operator(session: Session, name: str) -> Operator:
    """The operator named ``name``, locked for this transaction (``NotFound``)."""
    operator = session.scalar(select(Operator).where(Operator.name == name).with_for_update())
    if operator is None:
        raise NotFound(f"no operator {name!r}")
    return operator


def _end_sessions(session: Session, operator: Operator) -> None:
    session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))


def set_operator_active(session: Session, name: str, active: bool) -> OperatorView:
    """Deactivate (their sessions end at once) or reactivate an operator."""
    operator = find_operator(session, name)
    if operator.active is active:
        raise BadRequest(f"operator {name} is already {'active' if active else 'deactivated'}")
    operator.active = active
    if not active:
        _end_sessions(session, operator)
    return OperatorView.of(operator)


def set_operator_role(session: Session, name: str, role: str) -> OperatorView:
    """Give an operator another role; it applies to their open sessions at their next
    request (every request reads the operator's role)."""
    _check_role(role)
    operator = find_operator(session, name)
    if operator.role == role:
        raise BadRequest(f"operator {name} is already {role}")
    operator.role = role
    return OperatorView.of(operator)


def reset_password(session: Session, name: str, password: str, *, rounds: int) -> OperatorView:
    """Set a password an admin chose: the operator's sessions end, a lockout ends, and they
    must change it at their next login."""
    operator = find_operator(session, name)
    operator.password_hash = _hash_password(password, rounds)
    operator.password_change_required = True
    operator.failed_logins = 0
    operator.locked_until = None
    _end_sessions(session, operator)
    return OperatorView.of(operator)


def operator_state(view: OperatorView) -> dict[str, Any]:
    """What the audit trail keeps of an operator, before and after a change (no password)."""
    return {
        "role": view.role,
        "active": view.active,
        "password_change_required": view.password_change_required,
    }


def audited_change(
    session: Session,
    actor: Actor,
    action: str,
    name: str,
    change: Callable[[Session, str], OperatorView],
) -> OperatorView:
    """``change(session, name)`` on the operator ``name``, with one audit row ``action``
    (its state before and after) in the same transaction; the panel and ``atm admin`` both
    change operators through here."""
    before = operator_state(OperatorView.of(find_operator(session, name)))
    view = change(session, name)
    record(session, actor, action, f"operator {name}"[:64], before, operator_state(view))
    return view


def change_password(
    session: Session,
    operator_id: int,
    current: str,
    new: str,
    *,
    keep_token: str,
    now: dt.datetime,
    max_failed: int,
    lockout_seconds: int,
    rounds: int,
) -> OperatorView:
    """The operator's own change. ``new`` must differ from ``current`` and keep the rules
    (``BadRequest``). A wrong ``current`` counts as a failed login (``WrongPassword``; at
    ``max_failed`` the operator is locked and every session of theirs ends:
    ``LoginLocked``), so a stolen session cannot be used to guess the password; the caller
    commits in that case too. On success ``password_change_required`` is cleared and the
    operator's other sessions (other than ``keep_token``'s) end."""
    operator = session.get(Operator, operator_id, with_for_update=True)
    if operator is None or not operator.active:
        raise SessionExpired("log in first")
    if not bcrypt.checkpw(current.encode()[:MAX_PASSWORD_BYTES], operator.password_hash.encode()):
        until = _count_failure(operator, now, max_failed, lockout_seconds)
        if until is not None:
            _end_sessions(session, operator)
            raise LoginLocked(until)
        raise WrongPassword("the current password is wrong")
    if new == current:
        raise BadRequest("the new password must differ from the current one")
    operator.password_hash = _hash_password(new, rounds)
    operator.password_change_required = False
    operator.failed_logins = 0
    session.execute(
        delete(OperatorSession).where(
            OperatorSession.operator_id == operator.id,
            OperatorSession.token_hash != _token_hash(keep_token),
        )
    )
    return OperatorView.of(operator)


def _count_failure(
    operator: Operator, now: dt.datetime, max_failed: int, lockout_seconds: int
) -> dt.datetime | None:
    """One more failed password: at ``max_failed`` in a row, locked for ``lockout_seconds``
    (returns the end of that lock; None while under the limit)."""
    operator.failed_logins += 1
    if operator.failed_logins < max_failed:
        return None
    operator.failed_logins = 0
    operator.locked_until = now + dt.timedelta(seconds=lockout_seconds)
    return operator.locked_until


def log_in(
    session: Session,
    name: str,
    password: str,
    *,
    source: str,
    now: dt.datetime,
    max_failed: int,
    lockout_seconds: int,
    idle_seconds: int,
    rounds: int,
) -> LoggedIn:
    """Open a session, or raise ``LoginRefused`` / ``LoginLocked``. The caller commits in
    both cases (a failure is counted). Sessions idle too long, anyone's, are cleared here."""
    stale = now - dt.timedelta(seconds=idle_seconds)
    session.execute(delete(OperatorSession).where(OperatorSession.last_seen_at < stale))
    operator = session.scalar(select(Operator).where(Operator.name == name).with_for_update())
    if operator is None:
        bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], _dummy_hash(rounds))
        raise LoginRefused("wrong operator name or password")
    if operator.locked_until is not None and _aware(operator.locked_until) > now:
        raise LoginLocked(_aware(operator.locked_until))
    good = bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], operator.password_hash.encode())
    if not good or not operator.active:
        if good:
            raise LoginRefused("wrong operator name or password")
        until = _count_failure(operator, now, max_failed, lockout_seconds)
        if until is not None:
            raise LoginLocked(until)
        raise LoginRefused("wrong operator name or password")
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = now
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        OperatorSession(
            token_hash=_token_hash(token),
            csrf_token=csrf,
            operator_id=operator.id,
            source=source[:64],
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return LoggedIn(OperatorView.of(operator), csrf, token)


def resume_session(
    session: Session, token: str, *, now: dt.datetime, idle_seconds: int
) -> LoggedIn:
    """The session behind a cookie's token, its last use moved to ``now``; ``SessionExpired``
    when there is none, it was idle too long (it is deleted then) or its operator is no
    longer active."""
    if not token:
        raise SessionExpired("log in first")
    row = session.scalar(
        select(OperatorSession).where(OperatorSession.token_hash == _token_hash(token))
    )
    if row is None:
        raise SessionExpired("log in first")
    operator = session.get(Operator, row.operator_id)
    idle = now - _aware(row.last_seen_at)
    if operator is None or not operator.active or idle > dt.timedelta(seconds=idle_seconds):
        session.delete(row)
        raise SessionExpired("the session has expired: log in again")
    row.last_seen_at = now
    return LoggedIn(OperatorView.of(operator), row.csrf_token)


def csrf_matches(expected: str, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), presented.encode())


def end_session(session: Session, token: str) -> None:
    session.execute(delete(OperatorSession).where(OperatorSession.token_hash == _token_hash(token)))
