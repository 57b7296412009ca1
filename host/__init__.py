"""The authorization host: ISO-8583 link server, ledger, cards, PINs, limits and statements.

Imports ``protocol`` only, never ``device``, ``drivers`` or ``simulators``.
"""

from host.errors import ConfigError, DatabaseUnavailable, HostError, NotFound

__all__ = ["ConfigError", "DatabaseUnavailable", "HostError", "NotFound"]
