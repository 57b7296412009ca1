"""The authorization host, in two halves wired together by ``host.app``:

* ``host.link``: the ISO-8583 side (TCP server, MACs, terminal keys, reversal advices);
* ``host.bank``: the banking side (ledger, cards, PINs, limits, statements, seed data).

Shared by both: ``config`` and ``environment`` (read once at the edge), ``db`` (engines,
migrations), ``metrics``, ``errors``; ``ops`` is the aiohttp operations API. Imports
``protocol`` only, never ``device``, ``drivers`` or ``simulators``.
"""

from host.errors import (
    BadRequest,
    ConfigError,
    DatabaseUnavailable,
    HostError,
    NotFound,
    StatementError,
)
from protocol.masking import install_log_redaction

__all__ = [
    "BadRequest",
    "ConfigError",
    "DatabaseUnavailable",
    "HostError",
    "NotFound",
    "StatementError",
]

# Every log line of this package is redacted (track data, PANs, PIN blocks, keys).
install_log_redaction()
