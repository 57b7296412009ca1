"""PIN handling on the host: verification (bcrypt in a pool sized to the cores), card-session
tokens, and the rules a new PIN must follow.

The clear PIN exists only inside ``PinVerifier`` for the duration of one call. bcrypt is slow by
design; it runs in its own thread pool so at most one verification per core runs at a time, and
never on the event loop. The link server awaits ``verify_async`` before it opens the database
transaction, so bcrypt never holds a database thread, connection or row lock; ``verify`` (which
blocks its caller) is for callers without an event loop and for the rare request whose PIN hash
changed between the two.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import bcrypt

from protocol.errors import PinBlockError
from protocol.pinblock import decrypt_pin_block

__all__ = ["PinRuleError", "PinVerifier", "check_pin_rules", "hash_pin"]

T = TypeVar("T")


class PinRuleError(ValueError):
    """A new PIN that breaks the rules (the text says which)."""


def hash_pin(pin: str, pepper: str, rounds: int) -> str:
    return bcrypt.hashpw((pin + pepper).encode(), bcrypt.gensalt(rounds)).decode()


def check_pin_rules(pin: str) -> None:
    """The original system's rules: 4 to 6 digits, not all the same digit, not a straight
    ascending or descending sequence (1234, 98765). That the customer typed it twice the same
    is checked on the device, where both entries exist."""
    if not pin.isdigit() or not 4 <= len(pin) <= 6:
        raise PinRuleError("a PIN has 4 to 6 digits")
    if len(set(pin)) == 1:
        raise PinRuleError("a PIN may not repeat one digit")
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {-1}):
        raise PinRuleError("a PIN may not be a straight sequence")


BCRYPT_NICENESS = 10
THREAD_NAME = "bcrypt"


def _yield_to_other_work() -> None:
    """Lower the priority of this bcrypt thread (Linux: the niceness of one thread), so the
    event loop, the database workers and the database itself take a core from bcrypt when they
    need it, while bcrypt still gets every core nobody else wants. Elsewhere: unchanged.

    Niceness, not SCHED_IDLE: a pool thread holds the GIL for a moment around each bcrypt call
    (to hand over the result and wake the event loop, which may then preempt it), and while a
    preempted pool thread holds it the event loop waits for it. Under SCHED_IDLE that wait
    lasts until the machine has nothing else to run: on a loaded box (bench/run.py's PIN
    rounds, load 6 to 9) inquiries' p99 reached 4.9 s in one of two runs (0.5 to 1.7 s with
    niceness), and bcrypt got about half the verifications niceness got."""
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + BCRYPT_NICENESS))
    # The kernel's name of the thread: `top -H`, py-spy and the bench tell the pool apart.
    with contextlib.suppress(OSError):
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(THREAD_NAME)


class PinVerifier:
    def __init__(self, *, pepper: str, secret_key: str, workers: int | None = None) -> None:
        self._pepper = pepper
        self._secret = secret_key.encode()
        self.workers = workers or os.cpu_count() or 1
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.workers, thread_name_prefix=THREAD_NAME, initializer=_yield_to_other_work
        )

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the PIN pool (bcrypt's threads and nothing else's)."""
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def session_token(self, pan: str, terminal_id: str, pin_block: bytes) -> str:
        """HMAC-SHA256 under SECRET_KEY of the encrypted PIN block, bound to card and terminal:
        the same block in the same card session proves the same PIN without bcrypt."""
        message = f"{terminal_id}|{pan}|".encode() + pin_block
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def fingerprint(self, text: str) -> str:
        """A keyed digest of a request's content (it holds a PAN, so a bare hash would not do)."""
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def verify(self, pin_block: bytes, pan: str, key: bytes, fmt: int, pin_hash: str) -> bool:
        """True when the block decrypts to the PIN behind ``pin_hash``; an undecodable block is
        simply a wrong PIN."""
        candidate = self._candidate(pin_block, pan, key, fmt)
        if candidate is None:
            return False
        return self._pool.submit(bcrypt.checkpw, candidate, pin_hash.encode()).result()

    async def verify_async(
        self, pin_block: bytes, pan: str, key: bytes, fmt: int, pin_hash: str
    ) -> bool:
        """``verify`` awaited on the event loop: the caller's thread is not held meanwhile."""
        candidate = self._candidate(pin_block, pan, key, fmt)
        if candidate is None:
            return False
        future = self._pool.submit(bcrypt.checkpw, candidate, pin_hash.encode())
        return await asyncio.wrap_future(future)

    def _candidate(self, pin_block: bytes, pan: str, key: bytes, fmt: int) -> bytes | None:
        try:
            return (decrypt_pin_block(pin_block, pan, key, fmt) + self._pepper).encode()
        except PinBlockError:
            return None

    def new_pin_hash(self, pin_block: bytes, pan: str, key: bytes, fmt: int, rounds: int) -> str:
        """Decrypt a new PIN's block, check the rules and return its bcrypt hash.
        Raises ``PinRuleError`` (also for a block that does not decode)."""
        try:
            pin = decrypt_pin_block(pin_block, pan, key, fmt)
        except PinBlockError as exc:
            raise PinRuleError("the new PIN block does not decode") from exc
        check_pin_rules(pin)
        return self._pool.submit(hash_pin, pin, self._pepper, rounds).result()

    async def new_pin_hash_async(
        self, pin_block: bytes, pan: str, key: bytes, fmt: int, rounds: int
    ) -> str:
        """``new_pin_hash`` awaited on the event loop."""
        try:
            pin = decrypt_pin_block(pin_block, pan, key, fmt)
        except PinBlockError as exc:
            raise PinRuleError("the new PIN block does not decode") from exc
        check_pin_rules(pin)
        return await asyncio.wrap_future(self._pool.submit(hash_pin, pin, self._pepper, rounds))
