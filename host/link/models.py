"""Tables of the host link (LINK owns them): terminals' working keys and reversal advices.

Working keys are stored wrapped (AES key wrap, RFC 3394) under a storage key derived from
``SECRET_KEY``; a clear key never reaches the database.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from host.bank.models import Base, utcnow

__all__ = ["ReversalAdvice", "TerminalKeys"]


class TerminalKeys(Base):
    """A terminal's current working keys (TPK, TAK), issued at its last sign-on or key change."""

    __tablename__ = "link_terminal_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(8), unique=True)
    scheme: Mapped[str] = mapped_column(String(1))  # T (TDES, PIN format 0) | A (AES, format 4)
    tpk_wrapped: Mapped[str] = mapped_column(String(64))  # hex, under the storage key
    tak_wrapped: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReversalAdvice(Base):
    """Every reversal advice (0420/0421) the host answered, and what it did about it.

    ``status``: applied, original-unknown (kept: applied if the original arrives later),
    original-declined, already-reversed, fully-dispensed, invalid-amount, amount-mismatch,
    processing-code-mismatch."""

    __tablename__ = "link_reversal_advices"
    __table_args__ = (UniqueConstraint("terminal_id", "stan", "transmission_time"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(8))
    stan: Mapped[str] = mapped_column(String(6))
    transmission_time: Mapped[str] = mapped_column(String(10))
    original_mti: Mapped[str] = mapped_column(String(4))
    original_stan: Mapped[str] = mapped_column(String(6), index=True)
    original_time: Mapped[str] = mapped_column(String(10))
    # DE 3 of the advice, checked against the original's (empty on rows older than 0005).
    processing_code: Mapped[str] = mapped_column(String(6), default="", server_default="")
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    dispensed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(4), default="")
    status: Mapped[str] = mapped_column(String(24))
    reversed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
