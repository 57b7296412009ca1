"""Working-key management on the host: issue TPK and TAK at sign-on or key change, keep them
wrapped in the database, hand out the clear keys the link server needs (MAC check, PIN key).

Runs in the host's worker threads (database access). The clear keys are cached in memory per
terminal; a MAC failure with a cached key reloads from the database once (another host process
may have issued newer keys).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from host.bank.models import Terminal
from host.link.config import LinkConfig
from host.link.models import TerminalKeys
from protocol.security import KeyScheme, WorkingKeys, generate_key

__all__ = ["KeyStore"]

log = logging.getLogger(__name__)


class KeyStore:
    def __init__(self, sessions: sessionmaker[Session], config: LinkConfig) -> None:
        self._sessions = sessions
        self._config = config
        self._cache: dict[str, WorkingKeys] = {}
        self._lock = threading.Lock()

    @property
    def config(self) -> LinkConfig:
        return self._config

    def cached(self, terminal_id: str) -> WorkingKeys | None:
        with self._lock:
            return self._cache.get(terminal_id)

    def load(self, terminal_id: str) -> WorkingKeys | None:
        """The terminal's current keys from the database (and into the cache)."""
        with self._sessions() as session:
            row = session.scalar(
                select(TerminalKeys).where(TerminalKeys.terminal_id == terminal_id)
            )
            keys = self._unwrap(row) if row is not None else None
        with self._lock:
            if keys is None:
                self._cache.pop(terminal_id, None)
            else:
                self._cache[terminal_id] = keys
        return keys

    def issue(self, terminal_id: str, scheme: KeyScheme, now: dt.datetime) -> WorkingKeys | None:
        """New working keys for a known terminal; None when the terminal is not on file."""
        keys = WorkingKeys(scheme, generate_key(scheme), generate_key(scheme))
        with self._sessions.begin() as session:
            if session.scalar(select(Terminal).where(Terminal.terminal_id == terminal_id)) is None:
                return None
            row = session.scalar(
                select(TerminalKeys)
                .where(TerminalKeys.terminal_id == terminal_id)
                .with_for_update()
            )
            if row is None:
                row = TerminalKeys(terminal_id=terminal_id, key_version=0)
                session.add(row)
            row.scheme = scheme.value
            row.tpk_wrapped = aes_key_wrap(self._config.storage_key, keys.tpk).hex()
            row.tak_wrapped = aes_key_wrap(self._config.storage_key, keys.tak).hex()
            row.key_version = (row.key_version or 0) + 1
            row.issued_at = now
        with self._lock:
            self._cache[terminal_id] = keys
        log.info("issued working keys to terminal %s (%s)", terminal_id, keys)
        return keys

    def revoke(self, terminal_id: str) -> None:
        """Sign-off: the terminal's working keys stop working."""
        with self._sessions.begin() as session:
            session.execute(delete(TerminalKeys).where(TerminalKeys.terminal_id == terminal_id))
        with self._lock:
            self._cache.pop(terminal_id, None)

    def _unwrap(self, row: TerminalKeys) -> WorkingKeys | None:
        try:
            return WorkingKeys(
                KeyScheme(row.scheme),
                aes_key_unwrap(self._config.storage_key, bytes.fromhex(row.tpk_wrapped)),
                aes_key_unwrap(self._config.storage_key, bytes.fromhex(row.tak_wrapped)),
            )
        except (InvalidUnwrap, ValueError):
            log.error(
                "stored keys of terminal %s cannot be unwrapped (SECRET_KEY changed?)",
                row.terminal_id,
            )
            return None
