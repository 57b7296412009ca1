"""The host's retrieval reference numbers (DE 37, ``YYDDD`` + 7 digits) and approval codes
(DE 38, 6 digits), drawn for every authorization: cheap, unique and not guessable.

An RRN was ``f"{now:%y%j}"`` plus ``secrets.randbelow(10**7)``: about 30 µs a request on the
hot path (a strftime and a system call each time), and two requests of a day shared their RRN
by chance (a birthday collision is likely after a few thousand). Now:

- the ``YYDDD`` prefix is formatted once a UTC day;
- the 7 digits are a keyed permutation of a counter: a Feistel network on two halves
  modulo 3,163 whose round functions are random tables drawn from ``os.urandom`` (a fresh
  key per process and per day). So the RRNs a process gives out in a day are all different
  (the first 10 million; then a new key), and one RRN says nothing useful about the next:
  learning the key means learning 6 tables of 3,163 random values;
- the approval codes are uniform draws (rejection sampling) from random bytes fetched 4 KB
  at a time.

Safe from several threads (the ORM path runs on worker threads, the hot path on the event
loop): each draw takes its own index from ``itertools.count`` (atomic under the GIL), and a
day's key or a spent batch of bytes is replaced whole. Several host processes have keys of
their own, so two of them can give the same RRN on a day (as with random draws).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from host.bank.services import CardRequest

__all__ = ["RRN_SPACE", "FeistelPermutation", "RandomCodes"]

RRN_SPACE = 10**7  # the 7 digits after YYDDD
_ROUNDS = 6
_BATCH_BYTES = 4096


class FeistelPermutation:
    """A random permutation of ``0..domain-1``: a Feistel network on two halves modulo
    ``radix`` (the smallest with ``radix**2 >= domain``; for 10**7 it is 3,163, whose square
    overshoots by 0.05%) with a random table per round, ``(left, right) -> (right, (left +
    table[right]) % radix)``, each round a permutation of the pairs; a result outside the
    domain is put through again until it is inside (the walk from a value in the domain ends
    at a distinct value in the domain)."""

    def __init__(self, domain: int, key: bytes | None = None) -> None:
        if domain < 1:
            raise ValueError(f"a domain has at least one value, not {domain}")
        radix = max(1, math.isqrt(domain - 1) + 1)
        size = _ROUNDS * radix * 4  # a 32-bit draw per table entry
        key = key if key is not None else os.urandom(size)
        if len(key) != size:
            raise ValueError(f"a key for {domain} values is {size} bytes, not {len(key)}")
        words = memoryview(key).cast("I")
        self.domain = domain
        self._radix = radix
        # (A draw modulo the radix is off uniform by radix / 2**32, about one in a million.)
        self._tables = tuple(
            tuple(w % radix for w in words[i * radix : (i + 1) * radix]) for i in range(_ROUNDS)
        )

    def __call__(self, value: int) -> int:
        if not 0 <= value < self.domain:
            raise ValueError(f"{value} is outside 0..{self.domain - 1}")
        return self._walk(value)

    def _walk(self, value: int) -> int:
        """The rounds, again while the result is outside the domain."""
        radix = self._radix
        while True:
            left, right = divmod(value, radix)
            for table in self._tables:
                left, right = right, (left + table[right]) % radix
            value = left * radix + right
            if value < self.domain:
                return value


@dataclass(frozen=True)
class _Day:
    ordinal: int  # the UTC day's proleptic ordinal (datetime.toordinal)
    prefix: str  # YYDDD
    permutation: FeistelPermutation
    counter: Iterator[int] = field(default_factory=itertools.count)


@dataclass(frozen=True)
class _Bytes:
    words: memoryview  # 32-bit unsigned draws
    counter: Iterator[int] = field(default_factory=itertools.count)


def _new_bytes() -> _Bytes:
    return _Bytes(memoryview(os.urandom(_BATCH_BYTES)).cast("I"))


class RandomCodes:
    """RRNs unique per process and UTC day, approval codes at random (module docstring).
    ``space``: how many 7-digit RRN suffixes a key gives out (tests make it small)."""

    def __init__(self, space: int = RRN_SPACE) -> None:
        self._space = space
        self._lock = threading.Lock()
        self._day: _Day | None = None
        self._bytes = _new_bytes()

    def rrn(self, request: CardRequest, now: dt.datetime) -> str:
        day = self._day
        if day is None or now.toordinal() != day.ordinal:
            day = self._renew(day, now)
        index = next(day.counter)
        while index >= self._space:  # this key's suffixes are spent: a new key
            day = self._renew(day, now)
            index = next(day.counter)
        return f"{day.prefix}{day.permutation(index):07d}"

    def auth_code(self, request: CardRequest) -> str:
        return f"{self._below(10**6):06d}"

    def _renew(self, seen: _Day | None, now: dt.datetime) -> _Day:
        """A new key for ``now``'s day, unless another thread made one since ``seen``."""
        with self._lock:
            day = self._day
            if day is None or day is seen:
                day = self._day = _Day(
                    now.toordinal(), f"{now:%y%j}", FeistelPermutation(self._space)
                )
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
