"""PIN handling on the host: verification (bcrypt in a pool sized to the cores), card-session
tokens, the rules a new PIN must follow, and the per-process cache of the PIN hash each card
had when last verified (``PinHashCache``: the hot path's head start on bcrypt).

The clear PIN exists only inside ``PinVerifier`` for the duration of one call. bcrypt is slow by
design; it runs in its own thread pool so at most one verification per core runs at a time, and
never on the event loop. The link server awaits ``verify_async`` before it opens the database
transaction, so bcrypt never holds a database thread, connection or row lock; ``verify`` (which
blocks its caller) is for callers without an event loop and for the rare request whose PIN hash
changed between the two.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import hmac
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import bcrypt

from protocol.errors import PinBlockError
from protocol.pinblock import decrypt_pin_block
from protocol.response_codes import ResponseCode

if TYPE_CHECKING:  # host.bank.services imports this module
    from host.bank.services import CardRequest

__all__ = [
    "TOKENS_KEPT",
    "PinHashCache",
    "PinRuleError",
    "PinVerifier",
    "check_pin_rules",
    "hash_pin",
]

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


# Session tokens kept by a PinVerifier (each about 300 bytes with its key).
TOKENS_KEPT = 4096


class PinVerifier:
    def __init__(self, *, pepper: str, secret_key: str, workers: int | None = None) -> None:
        self._pepper = pepper
        # One keyed HMAC-SHA256 state, copied for each digest: the key's padding and the inner
        # and outer hashes of it are done once, not per request (two per authorization).
        self._hmac = hmac.new(secret_key.encode(), digestmod=hashlib.sha256)
        # The tokens of the PIN blocks seen lately: a request on the hot path needs its
        # token three times (the PIN hash cache's look-up, the call, the cache's update).
        # Emptied whole when full (dict operations are atomic under the GIL: threads and the
        # event loop share it; a token lost is computed again).
        self._tokens: dict[tuple[str, str, bytes], str] = {}
        self.workers = workers or os.cpu_count() or 1
        self.verifications = 0  # bcrypt checks of a PIN block run so far
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
        key = (terminal_id, pan, pin_block)
        token = self._tokens.get(key)
        if token is None:
            digest = self._hmac.copy()
            digest.update(f"{terminal_id}|{pan}|".encode() + pin_block)
            token = digest.hexdigest()
            if len(self._tokens) >= TOKENS_KEPT:
                self._tokens.clear()
            self._tokens[key] = token
        return token

    def fingerprint(self, text: str) -> str:
        """A keyed digest of a request's content (it holds a PAN, so a bare hash would not do)."""
        digest = self._hmac.copy()
        digest.update(text.encode())
        return digest.hexdigest()

    def verify(self, pin_block: bytes, pan: str, key: bytes, fmt: int, pin_hash: str) -> bool:
        """True when the block decrypts to the PIN behind ``pin_hash``; an undecodable block is
        simply a wrong PIN."""
        candidate = self._candidate(pin_block, pan, key, fmt)
        if candidate is None:
            return False
        self.verifications += 1
        return self._pool.submit(bcrypt.checkpw, candidate, pin_hash.encode()).result()

    async def verify_async(
        self, pin_block: bytes, pan: str, key: bytes, fmt: int, pin_hash: str
    ) -> bool:
        """``verify`` awaited on the event loop: the caller's thread is not held meanwhile."""
        candidate = self._candidate(pin_block, pan, key, fmt)
        if candidate is None:
            return False
        self.verifications += 1
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


class PinHashCache:
    """The PIN hash each card had when its PIN was last verified here, so the next request of
    that card with a new PIN block (a new card session) can start bcrypt at once instead of
    asking the database for the hash first (one round trip less before bcrypt). Only a head
    start: the transaction that follows takes bcrypt's answer only when the card's hash is
    still the one verified, and answers with the current hash otherwise (then verified
    again), so a stale entry costs one bcrypt, never a wrong answer.

    Two cases would make that bcrypt a waste, so they go the database's way first:

    * the PIN block last verified for the card, from the same terminal (the same card
      session, which needs no bcrypt while it is open; or a repeated request);
    * a card the database declined before the PIN check (unknown, lost, stolen, expired,
      locked, ...): ``settled`` forgets it, so a locked card costs no bcrypt per try.

    Bounded (least recently used out first); one per host process; used on the event loop
    only. It holds bcrypt hashes, never a PIN."""

    def __init__(self, pins: PinVerifier, size: int = 10_000) -> None:
        self._pins = pins
        self._size = size
        # PAN -> (hash, session token of the PIN block last verified against it)
        self._cards: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._cards)

    def hash_for(self, request: CardRequest) -> str | None:
        """The hash to verify ``request``'s PIN block against now, or None (ask the
        database first): no block, a card not known here, or the block verified last."""
        token = self._token(request)
        known = self._cards.get(request.pan) if token is not None else None
        if known is None or token is None or hmac.compare_digest(known[1], token):
            return None
        self._cards.move_to_end(request.pan)
        return known[0]

    def settled(self, request: CardRequest, verified: str | None, code: ResponseCode) -> None:
        """``request`` was answered ``code`` after bcrypt checked its block against
        ``verified`` (None: no bcrypt ran)."""
        if code in _DECLINED_BEFORE_PIN:
            self._cards.pop(request.pan, None)
            return
        token = self._token(request)
        if verified is None or token is None:
            return
        self._cards[request.pan] = (verified, token)
        self._cards.move_to_end(request.pan)
        while len(self._cards) > self._size:
            self._cards.popitem(last=False)

    def _token(self, request: CardRequest) -> str | None:
        if request.pin_block is None or request.pin_key is None:
            return None
        return self._pins.session_token(request.pan, request.terminal_id, request.pin_block)


# Answers given before the PIN check (host.bank.services: the order of checks), or with
# nothing known of it: the card's next request asks the database first.
_DECLINED_BEFORE_PIN = frozenset(
    {
        ResponseCode.INVALID_CARD,
        ResponseCode.NO_SUCH_ISSUER,
        ResponseCode.LOST_CARD,
        ResponseCode.STOLEN_CARD,
        ResponseCode.EXPIRED_CARD,
        ResponseCode.PIN_TRIES_EXCEEDED,
        ResponseCode.TERMINAL_OUT_OF_SERVICE,
        ResponseCode.MAINTENANCE,
        ResponseCode.HOST_UNAVAILABLE,
        ResponseCode.DUPLICATE,
        ResponseCode.MALFUNCTION,
    }
)
