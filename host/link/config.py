"""Configuration of the host link's key management, read once from the environment.

* ``TERMINAL_MASTER_KEYS``: ``ATM00001=<32 hex>,ATM00002=<32 hex>``: terminal master keys
  (TMK, 16 bytes: double-length TDES or AES-128 by the terminal's scheme). Required in
  production; elsewhere a terminal not listed uses the development TMK
  ``00112233445566778899AABBCCDDEEFF`` (the device's ``DeviceConfig`` default).
* ``TERMINAL_KEY_SCHEMES``: ``ATM00003=A,...``: ``T`` (TDES, PIN block format 0, retail MAC;
  the default) or ``A`` (AES, PIN block format 4, AES-CMAC) per terminal.
* ``SECRET_KEY``: the storage key that wraps working keys in the database is derived from it
  (HKDF-SHA256); ``ENVIRONMENT``: ``production`` refuses the development TMK.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from host.environment import DEFAULT_SECRET_KEY, Environment, parse_environment
from host.errors import ConfigError
from protocol.security import KeyScheme

__all__ = ["DEVELOPMENT_TMK", "LinkConfig"]

DEVELOPMENT_TMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def _storage_key(secret: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"atm-link working-key storage").derive(
        secret.encode()
    )


@dataclass(frozen=True)
class LinkConfig:
    production: bool = False
    master_keys: Mapping[str, bytes] = field(default_factory=dict)
    schemes: Mapping[str, KeyScheme] = field(default_factory=dict)
    storage_key: bytes = field(default_factory=lambda: _storage_key(DEFAULT_SECRET_KEY))

    def __repr__(self) -> str:  # never print keys
        return f"LinkConfig(production={self.production}, terminals={sorted(self.master_keys)})"

    def master_key(self, terminal_id: str) -> bytes | None:
        """The terminal's TMK, or None when the host has none for it."""
        key = self.master_keys.get(terminal_id)
        if key is None and not self.production:
            return DEVELOPMENT_TMK
        return key

    def scheme(self, terminal_id: str) -> KeyScheme:
        return self.schemes.get(terminal_id, KeyScheme.TDES)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, environment: Environment | None = None
    ) -> LinkConfig:
        """``environment``: already parsed by the caller (``HostConfig``); read from ``environ``
        when not given."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        if environment is None:
            environment = parse_environment(env)
        production = environment is Environment.PRODUCTION
        master_keys: dict[str, bytes] = {}
        for item in _items(env.get("TERMINAL_MASTER_KEYS", "")):
            terminal, _, value = item.partition("=")
            try:
                key = bytes.fromhex(value)
            except ValueError:
                key = b""
            if len(terminal) != 8 or len(key) != 16:
                problems.append(
                    f"TERMINAL_MASTER_KEYS: {terminal or '?'}: want TERMINALID=<32 hex digits>"
                )
                continue
            if production and key == DEVELOPMENT_TMK:
                problems.append(f"TERMINAL_MASTER_KEYS: {terminal}: the development TMK is refused")
            master_keys[terminal] = key
        schemes: dict[str, KeyScheme] = {}
        for item in _items(env.get("TERMINAL_KEY_SCHEMES", "")):
            terminal, _, value = item.partition("=")
            try:
                schemes[terminal] = KeyScheme(value.strip().upper()[:1])
            except ValueError:
                problems.append(f"TERMINAL_KEY_SCHEMES: {terminal}: scheme must be T or A")
        if production and not master_keys:
            problems.append("TERMINAL_MASTER_KEYS: required in production")
        if problems:
            raise ConfigError(problems)
        return cls(
            production=production,
            master_keys=master_keys,
            schemes=schemes,
            storage_key=_storage_key(env.get("SECRET_KEY", DEFAULT_SECRET_KEY)),
        )


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]
