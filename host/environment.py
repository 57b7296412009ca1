"""What every host configuration loader shares: the deployment environment (``ENVIRONMENT``),
its one parser, and the development defaults of the secrets that production refuses."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from host.errors import ConfigError

__all__ = ["DEFAULT_PIN_PEPPER", "DEFAULT_SECRET_KEY", "Environment", "parse_environment"]

# Development values only: HostConfig refuses both in production.
# (refused in production; ruff S105 and bandit B105 flag the literal)
DEFAULT_SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105  # nosec B105
DEFAULT_PIN_PEPPER = "dev-pin-pepper-change-me"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    PRODUCTION = "production"


def parse_environment(env: Mapping[str, str]) -> Environment:
    """``ENVIRONMENT`` from ``env`` (``development`` when unset); ``ConfigError`` naming the
    allowed values when it is anything else."""
    raw = env.get("ENVIRONMENT", "development")
    try:
        return Environment(raw)
    except ValueError:
        allowed = ", ".join(e.value for e in Environment)
        raise ConfigError([f"ENVIRONMENT: unknown value {raw!r} ({allowed})"]) from None
