"""The host's retrieval reference numbers (DE 37, ``YYDDD`` + 7 digits) and approval codes
(DE 38, 6 digits), drawn for every authorization, cheaply.

- An RRN is a reference, not a secret: the ``YYDDD`` prefix is formatted once a UTC day and
  the 7 digits count up from a random start drawn for the process and the day, modulo 10**7.
  So a process's RRNs of a day are all different (its first 10 million; then the count wraps
  around) and two host processes sharing a database start at different places.
- An approval code may be taken as proof that the host approved: it is a uniform draw
  (rejection sampling) from random bytes fetched 4 KB at a time.

No system call per request on either. Safe from several threads (the ORM path runs on worker
threads, the hot path on the event loop): each draw takes its own index from an
``itertools.count`` (atomic under the GIL), and a new day or a spent batch of bytes is
replaced whole.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from host.bank.services import CardRequest

__all__ = ["RRN_SPACE", "RandomCodes"]

RRN_SPACE = 10**7  # the 7 digits after YYDDD
_BATCH_BYTES = 4096


@dataclass(frozen=True)
class _Day:
    ordinal: int  # the UTC day's proleptic ordinal (datetime.toordinal)
    prefix: str  # YYDDD
    start: int  # where the day's count starts
    counter: Iterator[int] = field(default_factory=itertools.count)


@dataclass(frozen=True)
class _Bytes:
    words: memoryview  # 32-bit unsigned draws
    counter: Iterator[int] = field(default_factory=itertools.count)


def _new_bytes() -> _Bytes:
    return _Bytes(memoryview(os.urandom(_BATCH_BYTES)).cast("I"))


class RandomCodes:
    """RRNs unique per process and UTC day, approval codes at random (module docstring).
    ``space``: how many 7-digit RRN suffixes the count goes through before it wraps around
    (tests make it small)."""

    def __init__(self, space: int = RRN_SPACE) -> None:
        if not 1 <= space <= RRN_SPACE:
            raise ValueError(f"an RRN space is 1..{RRN_SPACE} suffixes, not {space}")
        self._space = space
        self._lock = threading.Lock()
        self._day: _Day | None = None
        self._bytes = _new_bytes()

    def rrn(self, request: CardRequest, now: dt.datetime) -> str:
        day = self._day
        if day is None or now.toordinal() != day.ordinal:
            day = self._new_day(day, now)
        return f"{day.prefix}{(day.start + next(day.counter)) % self._space:07d}"

    def auth_code(self, request: CardRequest) -> str:
        return f"{self._below(10**6):06d}"

    def _new_day(self, seen: _Day | None, now: dt.datetime) -> _Day:
        """``now``'s day, unless another thread made it since ``seen``."""
        with self._lock:
            day = self._day
            if day is None or day is seen:
                start = secrets.randbelow(self._space)
                day = self._day = _Day(now.toordinal(), f"{now:%y%j}", start)
            return day

    def _below(self, bound: int) -> int:
        """A uniform draw from 0..bound-1 (bound < 2**32)."""
        limit = (1 << 32) - (1 << 32) % bound
        while True:
            batch = self._bytes
            index = next(batch.counter)
            if index >= len(batch.words):
                if self._bytes is batch:
                    self._bytes = _new_bytes()
                continue
            value: int = batch.words[index]
            if value < limit:
                return value % bound
