"""Operator accounts and their web sessions (migrations ``0010_operators``,
``0012_operator_password_reset``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from host.bank.models import Base, utcnow

__all__ = ["Operator", "OperatorSession"]


class Operator(Base):
    """A person who runs the bank: ``viewer`` reads, ``operator`` changes customers, accounts,
    cards and terminals, ``admin`` also runs maintenance, key changes and snapshot imports."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | admin
    password_hash: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when an admin chose the password (a new operator from the panel, a reset): until
    # the operator changes it, their session opens nothing but the password change.
    password_change_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consecutive failed logins; at the configured maximum the account is locked until
    # ``locked_until`` (a success resets the count).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OperatorSession(Base):
    """A logged-in browser. The cookie carries a random token; only its SHA-256 is stored, so
    a copy of the database opens no session. ``csrf_token`` must come back in the
    ``X-CSRF-Token`` header of every change."""

    __tablename__ = "operator_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
