"""Host configuration: read once from the environment at the edge, validated, passed in.

Every problem is reported on its own line (``ConfigError.problems``). Names and defaults follow
DESIGN section 4; ``.env.example`` lists them all.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from host.environment import (
    DEFAULT_PIN_PEPPER,
    DEFAULT_SECRET_KEY,
    Environment,
    parse_environment,
)
from host.errors import ConfigError
from host.forwarded import Network, parse_networks
from host.link.config import LinkConfig
from host.link.guard import LinkLimits
from protocol.tls import TlsError, server_context

__all__ = [
    "DEFAULT_PIN_PEPPER",
    "DEFAULT_SECRET_KEY",
    "MIN_SECRET_BYTES",
    "TEST_CARD_RANGES",
    "Environment",
    "HostConfig",
    "OpsTls",
    "weak_secret",
]

# The seeded test cards' range (host/bank/seed.py): the default of ACCEPTED_CARD_RANGES.
TEST_CARD_RANGES = ("400000",)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


# A production secret: at least this many bytes, drawn from at least this many different
# characters (a random hex string of 32 has about 15; "aaaa..." or "abab..." has 1 or 2).
MIN_SECRET_BYTES = 32
MIN_SECRET_VARIETY = 10


def weak_secret(value: str, default: str) -> str:
    """Why ``value`` cannot protect anything in production, or "" when it can. Never quotes
    the value itself."""
    if value == default:
        return "the default value is refused in production"
    size = len(value.encode())
    if size == 0:
        return f"empty; production needs at least {MIN_SECRET_BYTES} random bytes"
    if size < MIN_SECRET_BYTES:
        return f"{size} bytes is too short for production (at least {MIN_SECRET_BYTES})"
    variety = len(set(value))
    if variety < MIN_SECRET_VARIETY:
        return (
            f"too little variety for production ({variety} different characters, "
            f"at least {MIN_SECRET_VARIETY}: use a random value)"
        )
    return ""


def default_data_dir(data_dir: str, environ: Mapping[str, str]) -> Path:
    """Where the embedded database lives when ``DATABASE_URL`` is not set: ``ATM_DATA_DIR``
    (``data_dir``), or the per-user data directory (``$XDG_DATA_HOME/atm-simulator``, else
    ``~/.local/share/atm-simulator``). Never relative to the working directory, so `atm host`
    started from another folder finds the same database rather than a new empty one."""
    if data_dir:
        return Path(data_dir).expanduser().absolute()
    xdg = environ.get("XDG_DATA_HOME", "")
    home = environ.get("HOME", "") or str(Path.home())
    base = Path(xdg) if xdg else Path(home) / ".local" / "share"
    return (base / "atm-simulator").absolute()


def default_database_url(data_dir: str = "", environ: Mapping[str, str] | None = None) -> str:
    directory = default_data_dir(data_dir, os.environ if environ is None else environ)
    return f"sqlite:///{directory / 'atm-host.db'}"


@dataclass(frozen=True)
class OpsTls:
    """The ops API's HTTPS certificate and key (a path or the PEM text, as ``protocol.tls``
    reads them). The ops API authenticates by bearer token, so no client certificates."""

    cert: str = field(repr=False)
    key: str = field(repr=False)

    def context(self) -> ssl.SSLContext:
        """The server context (``protocol.tls.TlsError`` when the files do not load)."""
        return server_context(self.cert, self.key)


def _ops_tls(
    cert: str, key: str, allow_plaintext: str, production: bool, problems: list[str]
) -> OpsTls | None:
    """``OPS_TLS_CERT``/``OPS_TLS_KEY``: the ops API serves HTTPS only. Production refuses
    plain HTTP (the bearer token and account data would cross the network in clear) unless
    ``OPS_ALLOW_PLAINTEXT=true`` says something in front of it encrypts the traffic."""
    cert, key, allow_plaintext = cert.strip(), key.strip(), allow_plaintext.strip().lower()
    if allow_plaintext not in ("true", "false"):
        problems.append("OPS_ALLOW_PLAINTEXT: true or false")
    if not cert:
        if key:
            problems.append("OPS_TLS_CERT: required with OPS_TLS_KEY")
        elif production and allow_plaintext != "true":
            problems.append(
                "OPS_TLS_CERT: production refuses a plain-HTTP ops API "
                "(set OPS_TLS_CERT and OPS_TLS_KEY, or OPS_ALLOW_PLAINTEXT=true)"
            )
        return None
    if not key:
        problems.append("OPS_TLS_KEY: required with OPS_TLS_CERT")
        return None
    tls = OpsTls(cert, key)
    try:
        tls.context()
    except TlsError as exc:
        problems.append(f"OPS_TLS_CERT: {exc}")
        return None
    return tls


@dataclass(frozen=True)
class HostConfig:
    database_url: str
    # DATABASE_PREPARED_STATEMENTS: false behind a pooler in transaction mode that does not
    # carry prepared statements from one server connection to the next (PgBouncer before
    # 1.21, or with max_prepared_statements = 0): the host then prepares nothing on the
    # server (every statement unnamed). Also keeps RDS Proxy from pinning its connections.
    database_prepared_statements: bool = True
    # Secrets stay out of repr() so a logged config never shows them.
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    pin_pepper: str = field(default=DEFAULT_PIN_PEPPER, repr=False)
    session_timeout_seconds: int = 120
    max_failed_pin_attempts: int = 3
    lockout_duration_seconds: int = 1800
    daily_withdrawal_limit: int = 50_000
    daily_transfer_limit: int = 250_000
    bcrypt_rounds: int = 12
    statement_output_dir: str = "statements"
    statement_s3_bucket: str = ""
    ops_api_token: str = field(default="", repr=False)
    log_level: str = "INFO"
    environment: Environment = Environment.DEVELOPMENT
    link_host: str = "127.0.0.1"
    link_port: int = 8583
    ops_host: str = "127.0.0.1"
    ops_port: int = 8080
    # HTTPS for the ops API (OPS_TLS_CERT/OPS_TLS_KEY); None: plain HTTP (not in production
    # unless OPS_ALLOW_PLAINTEXT=true).
    ops_tls: OpsTls | None = None
    max_frame: int = 4096
    # The production-safety guard: PAN prefixes this host serves; any other card is declined
    # with 15 before it is looked up. Widening it is warned about at start-up.
    accepted_card_ranges: tuple[str, ...] = TEST_CARD_RANGES
    # Terminal master keys and key schemes of the host link (host/link/config.py).
    link: LinkConfig = field(default_factory=LinkConfig)
    # Timeouts and connection bounds of the link server (host/link/guard.py).
    link_limits: LinkLimits = field(default_factory=LinkLimits)
    # Bank operators on the web (host/admin): idle expiry of a session, and the lockout after
    # consecutive failed logins.
    admin_session_idle_seconds: int = 900
    admin_max_failed_logins: int = 5
    admin_lockout_seconds: int = 900
    # OPS_TRUSTED_PROXIES: the load balancer's (or proxy's) networks. Only a request whose TCP
    # peer is in one of them has its client address read from X-Forwarded-For (host/forwarded.py).
    ops_trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostConfig:
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name}: not an integer: {raw!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name}: {value} is out of range {low}..{high}")
            return value

        try:
            environment = parse_environment(env)
        except ConfigError as exc:
            problems.extend(exc.problems)
            environment = Environment.DEVELOPMENT
        log_level = env.get("LOG_LEVEL", "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            problems.append(f"LOG_LEVEL: unknown level {log_level!r}")
        database_url = env.get("DATABASE_URL") or default_database_url(
            env.get("ATM_DATA_DIR", ""), env
        )
        try:
            backend = make_url(database_url).get_backend_name()
        except ArgumentError:
            problems.append("DATABASE_URL: not a database URL")
        else:
            if backend not in ("sqlite", "postgresql"):
                problems.append(
                    f"DATABASE_URL: unsupported database {backend!r} "
                    "(sqlite:///FILE or postgresql+psycopg://...)"
                )
        prepared = env.get("DATABASE_PREPARED_STATEMENTS", "true").strip().lower()
        if prepared not in ("true", "false"):
            problems.append(f"DATABASE_PREPARED_STATEMENTS: true or false, not {prepared!r}")
        if len(env.get("PIN_PEPPER", DEFAULT_PIN_PEPPER).encode()) > 60:
            problems.append("PIN_PEPPER: at most 60 bytes (bcrypt reads 72 bytes of PIN + pepper)")
        token = env.get("OPS_API_TOKEN", "")
        if token and len(token) < 16:
            problems.append("OPS_API_TOKEN: must be at least 16 characters")
        bucket = env.get("STATEMENT_S3_BUCKET", "")
        if bucket and not _BUCKET.fullmatch(bucket):
            problems.append(f"STATEMENT_S3_BUCKET: not a valid S3 bucket name: {bucket!r}")
        if not env.get("STATEMENT_OUTPUT_DIR", "statements").strip():
            problems.append("STATEMENT_OUTPUT_DIR: must not be empty")
        ranges = tuple(
            r.strip() for r in env.get("ACCEPTED_CARD_RANGES", "400000").split(",") if r.strip()
        )
        if not ranges or not all(r.isdigit() and len(r) <= 19 for r in ranges):
            problems.append("ACCEPTED_CARD_RANGES: comma-separated PAN prefixes (digits)")
            ranges = TEST_CARD_RANGES
        try:
            link = LinkConfig.from_env(env, environment=environment)
        except ConfigError as exc:
            problems.extend(exc.problems)
            link = LinkConfig()
        ops_tls = _ops_tls(
            env.get("OPS_TLS_CERT", ""),
            env.get("OPS_TLS_KEY", ""),
            env.get("OPS_ALLOW_PLAINTEXT", "false"),
            environment is Environment.PRODUCTION,
            problems,
        )
        try:
            trusted_proxies = parse_networks(env.get("OPS_TRUSTED_PROXIES", ""))
        except ValueError as exc:
            problems.append(f"OPS_TRUSTED_PROXIES: {exc}")
            trusted_proxies = ()
        config = cls(
            database_url=database_url,
            database_prepared_statements=prepared != "false",
            secret_key=env.get("SECRET_KEY", DEFAULT_SECRET_KEY),
            pin_pepper=env.get("PIN_PEPPER", DEFAULT_PIN_PEPPER),
            session_timeout_seconds=integer("SESSION_TIMEOUT_SECONDS", 120, 1, 86_400),
            max_failed_pin_attempts=integer("MAX_FAILED_PIN_ATTEMPTS", 3, 1, 99),
            lockout_duration_seconds=integer("LOCKOUT_DURATION_SECONDS", 1800, 1, 30 * 86_400),
            daily_withdrawal_limit=integer("DAILY_WITHDRAWAL_LIMIT", 50_000, 0, 10**11),
            daily_transfer_limit=integer("DAILY_TRANSFER_LIMIT", 250_000, 0, 10**11),
            bcrypt_rounds=integer("BCRYPT_ROUNDS", 12, 4, 31),
            statement_output_dir=env.get("STATEMENT_OUTPUT_DIR", "statements"),
            statement_s3_bucket=bucket,
            ops_api_token=token,
            log_level=log_level,
            environment=environment,
            link_host=env.get("LINK_HOST", "127.0.0.1"),
            link_port=integer("LINK_PORT", 8583, 0, 65535),
            ops_host=env.get("OPS_HOST", "127.0.0.1"),
            ops_port=integer("OPS_PORT", 8080, 0, 65535),
            ops_tls=ops_tls,
            max_frame=integer("MAX_FRAME_BYTES", 4096, 64, 65535),
            accepted_card_ranges=ranges,
            link=link,
            link_limits=LinkLimits(
                frame_timeout=integer("LINK_FRAME_TIMEOUT_SECONDS", 10, 1, 3600),
                idle_timeout=integer("LINK_IDLE_TIMEOUT_SECONDS", 150, 1, 86_400),
                max_unauthenticated=integer("LINK_MAX_UNAUTHENTICATED", 64, 1, 100_000),
                max_connections=integer("LINK_MAX_CONNECTIONS", 0, 0, 1_000_000),
                reserved_for_known=integer("LINK_RESERVED_FOR_KNOWN", 16, 0, 100_000),
            ),
            admin_session_idle_seconds=integer("ADMIN_SESSION_IDLE_SECONDS", 900, 30, 86_400),
            admin_max_failed_logins=integer("ADMIN_MAX_FAILED_LOGINS", 5, 1, 100),
            admin_lockout_seconds=integer("ADMIN_LOCKOUT_SECONDS", 900, 1, 86_400),
            ops_trusted_proxies=trusted_proxies,
        )
        if environment is Environment.PRODUCTION:
            for name, value, default in (
                ("SECRET_KEY", config.secret_key, DEFAULT_SECRET_KEY),
                ("PIN_PEPPER", config.pin_pepper, DEFAULT_PIN_PEPPER),
            ):
                problem = weak_secret(value, default)
                if problem:
                    problems.append(f"{name}: {problem}")
            if not config.ops_api_token:
                problems.append("OPS_API_TOKEN: required in production")
        if problems:
            raise ConfigError(problems)
        return config

    @property
    def widened(self) -> list[str]:
        """What the production-safety guard allows beyond its default (start-up warnings)."""
        extra = [r for r in self.accepted_card_ranges if r not in TEST_CARD_RANGES]
        warnings = (
            [f"card ranges widened beyond the test cards: {', '.join(extra)}"] if extra else []
        )
        if any(net.prefixlen == 0 for net in self.ops_trusted_proxies):
            warnings.append(
                "OPS_TRUSTED_PROXIES trusts every address: any client can choose the address "
                "the audit log shows (X-Forwarded-For)"
            )
        return warnings
