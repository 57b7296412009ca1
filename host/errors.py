"""The host package's exception tree (one root: ``HostError``)."""

from __future__ import annotations


class HostError(Exception):
    """Root of every error raised by the ``host`` package."""


class ConfigError(HostError):
    """Configuration values that cannot be used; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = list(problems)


class NotFound(HostError):
    """An account, card or other record does not exist."""


class DatabaseUnavailable(HostError):
    """The database cannot be reached."""


class BadRequest(HostError):
    """A request (ops API, command line) with a value that cannot be used; says which."""


class StatementError(HostError):
    """A statement could not be produced or stored."""


class ControlRefused(HostError):
    """A bank operation (host.bank.controls) that cannot be done as asked; the text says why
    (closing an account with money in it, reporting a card that is already replaced, ...)."""
