"""The ``atm`` package's exception root and the exit codes of every ``atm`` command.

Exit codes: 0 success; 1 a check failed (``check-ledger`` found a problem, a MAC did not
verify, a script did not end as expected); 2 bad usage or configuration (an unknown option or
script, a bad address, key or URL); 3 something unreachable or unavailable (a port in use, a
database or host that does not answer, a database that does not exist or is not migrated);
130 interrupted (Ctrl-C). Host-free on purpose: device and simulator commands import it.
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_UNAVAILABLE", "EXIT_USAGE", "AtmError", "CommandFailed"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class AtmError(Exception):
    """Root of the errors raised by the ``atm`` package."""


class CommandFailed(AtmError):
    """One line for the user and the exit code. ``line`` starts with the command's name
    (``device: ...``); ``atm.cli.main`` prints ``atm LINE`` and exits with ``code``."""

    def __init__(self, line: str, code: int) -> None:
        super().__init__(line)
        self.line = line
        self.code = code
