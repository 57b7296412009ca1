"""Configuration of the host link's key management, read once from the environment.

* ``TERMINAL_MASTER_KEYS``: ``ATM00001=<32 hex>,ATM00002=<32 hex>``: terminal master keys
  (TMK, 16 bytes: double-length TDES or AES-128 by the terminal's scheme). Required in
  production; elsewhere a terminal not listed uses the development TMK
  ``00112233445566778899AABBCCDDEEFF`` (the device's ``DeviceConfig`` default).
* ``TERMINAL_KEY_SCHEMES``: ``ATM00003=A,...``: ``T`` (TDES, PIN block format 0, retail MAC;
  the default) or ``A`` (AES, PIN block format 4, AES-CMAC) per terminal.
* ``TERMINAL_KEY_BLOCKS``: ``ATM00005=legacy,...``: the layout of the working keys at sign-on,
  ``tr31`` (ANSI X9.143 / TR-31 key blocks, ``protocol.keyblock``; the default) or ``legacy``
  (our original layout) per terminal.
* ``LINK_TLS_CERT`` / ``LINK_TLS_KEY``: the host's TLS certificate and private key (a file path
  or the PEM text itself). Set: the link speaks TLS only (1.2 minimum).
* ``LINK_TLS_CLIENT_CA``: with it, mutual TLS: every terminal presents a certificate from this
  CA whose common name is its terminal ID, which must equal DE 41 of its messages.
* ``LINK_ALLOW_PLAINTEXT``: ``true`` lets a production host serve the link without TLS (for a
  load balancer that terminates TLS in front of it); otherwise production refuses to start
  without ``LINK_TLS_CERT``.
* ``SECRET_KEY``: the storage key that wraps working keys in the database is derived from it
  (HKDF-SHA256); ``ENVIRONMENT``: ``production`` refuses the development TMK.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from host.environment import DEFAULT_SECRET_KEY, Environment, parse_environment
from host.errors import ConfigError
from protocol.keyblock import DEFAULT_KEY_BLOCK, KeyBlockFormat
from protocol.security import KeyScheme
from protocol.tls import TlsError, server_context

__all__ = ["DEVELOPMENT_TMK", "LinkConfig", "LinkTls"]

DEVELOPMENT_TMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def _storage_key(secret: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"atm-link working-key storage").derive(
        secret.encode()
    )


@dataclass(frozen=True)
class LinkTls:
    """The host's TLS material (paths or PEM text, see ``protocol.tls``)."""

    cert: str = field(repr=False)
    key: str = field(repr=False)
    client_ca: str | None = field(default=None, repr=False)

    def context(self) -> ssl.SSLContext:
        """The server context (``protocol.tls.TlsError`` when the files do not load)."""
        return server_context(self.cert, self.key, self.client_ca)


def _tls(
    cert: str, key: str, client_ca: str, allow_plaintext: str, production: bool, problems: list[str]
) -> LinkTls | None:
    cert, key, client_ca = cert.strip(), key.strip(), client_ca.strip()
    allow_plaintext = allow_plaintext.strip().lower()
    if allow_plaintext not in ("true", "false"):
        problems.append("LINK_ALLOW_PLAINTEXT: true or false")
    if not cert:
        if key or client_ca:
            problems.append("LINK_TLS_CERT: required with LINK_TLS_KEY / LINK_TLS_CLIENT_CA")
        elif production and allow_plaintext != "true":
            problems.append(
                "LINK_TLS_CERT: production refuses a plaintext link "
                "(set LINK_TLS_CERT and LINK_TLS_KEY, or LINK_ALLOW_PLAINTEXT=true)"
            )
        return None
    if not key:
        problems.append("LINK_TLS_KEY: required with LINK_TLS_CERT")
        return None
    tls = LinkTls(cert, key, client_ca or None)
    try:
        tls.context()
    except TlsError as exc:
        problems.append(f"LINK_TLS_CERT: {exc}")
        return None
    return tls


@dataclass(frozen=True)
class LinkConfig:
    production: bool = False
    master_keys: Mapping[str, bytes] = field(default_factory=dict)
    schemes: Mapping[str, KeyScheme] = field(default_factory=dict)
    storage_key: bytes = field(default_factory=lambda: _storage_key(DEFAULT_SECRET_KEY))
    tls: LinkTls | None = None
    key_blocks: Mapping[str, KeyBlockFormat] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print keys
        return (
            f"LinkConfig(production={self.production}, terminals={sorted(self.master_keys)}, "
            f"tls={'mutual' if self.tls and self.tls.client_ca else 'on' if self.tls else 'off'})"
        )

    def master_key(self, terminal_id: str) -> bytes | None:
        """The terminal's TMK, or None when the host has none for it."""
        key = self.master_keys.get(terminal_id)
        if key is None and not self.production:
            return DEVELOPMENT_TMK
        return key

    def scheme(self, terminal_id: str) -> KeyScheme:
        return self.schemes.get(terminal_id, KeyScheme.TDES)

    def key_block(self, terminal_id: str) -> KeyBlockFormat:
        return self.key_blocks.get(terminal_id, DEFAULT_KEY_BLOCK)

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
        key_blocks: dict[str, KeyBlockFormat] = {}
        for item in _items(env.get("TERMINAL_KEY_BLOCKS", "")):
            terminal, _, value = item.partition("=")
            try:
                key_blocks[terminal] = KeyBlockFormat(value.strip().lower())
            except ValueError:
                problems.append(f"TERMINAL_KEY_BLOCKS: {terminal}: layout must be legacy or tr31")
        if production and not master_keys:
            problems.append("TERMINAL_MASTER_KEYS: required in production")
        tls = _tls(
            env.get("LINK_TLS_CERT", ""),
            env.get("LINK_TLS_KEY", ""),
            env.get("LINK_TLS_CLIENT_CA", ""),
            env.get("LINK_ALLOW_PLAINTEXT", "false"),
            production,
            problems,
        )
        if problems:
            raise ConfigError(problems)
        return cls(
            production=production,
            master_keys=master_keys,
            schemes=schemes,
            storage_key=_storage_key(env.get("SECRET_KEY", DEFAULT_SECRET_KEY)),
            tls=tls,
            key_blocks=key_blocks,
        )


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]
