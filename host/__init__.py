"""The authorization host: ISO-8583 link server, ledger, cards, PINs, limits and statements.

Imports ``protocol`` only, never ``device``, ``drivers`` or ``simulators``.
"""

from host.errors import (
    BadRequest,
    ConfigError,
    DatabaseUnavailable,
    HostError,
    NotFound,
    StatementError,
)

__all__ = [
    "BadRequest",
    "ConfigError",
    "DatabaseUnavailable",
    "HostError",
    "NotFound",
    "StatementError",
]
