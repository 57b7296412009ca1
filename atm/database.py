"""How the composition roots show a database: ``display_url``, the only form in which a
command or the demo prints or logs a database URL, and ``database_error``."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

__all__ = ["database_error", "display_url"]


def display_url(url: str) -> str:
    """``url`` with its password masked (``***``), for output and logs: the database password
    must not reach a terminal, a CI log or CloudWatch."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def database_error(exc: SQLAlchemyError, url: str) -> str:
    """One line for a failed database operation: the driver's own message (it names the
    server, not the password; scrubbed all the same) after the masked URL."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
    line = f"database at {display_url(url)}: {reason[0]}"
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        line = line.replace(str(password), "***")
    return line
