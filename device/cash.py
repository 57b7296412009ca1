"""Cash management: the note mix, cassette levels and the per-cassette counters.

Note mixing: which notes from which cassettes make an amount (``mix_notes``, a bounded dynamic
programme). Fewest notes first, but a mix that would empty the smallest denomination while
another mix of the same note count keeps it is preferred, so small notes stay available for
odd amounts.
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path

from device.errors import CashError
from drivers.interfaces import CassetteState, CassetteStatus

__all__ = [
    "BalancingLine",
    "CashCounters",
    "CassetteCounters",
    "Level",
    "cassette_level",
    "mix_notes",
    "usable_cassettes",
    "value_of",
]

_USABLE = (CassetteState.OK, CassetteState.LOW)


def mix_notes(amount_cents: int, cassettes: Sequence[CassetteStatus]) -> dict[int, int]:
    """Return cassette index -> note count for ``amount_cents``; ``CashError`` if impossible.

    Preferences, in order: fewest notes; then fewest notes of the smallest denomination (so
    small notes stay available for odd amounts); then, among equal mixes, the most notes from
    the largest cassettes first (cassettes ordered by denomination, largest first, and by
    position for equal denominations).

    Bounded dynamic programming over note counts, cheap enough for the event loop (well under
    a millisecond for five cassettes and $2,000; ``bench/bench_note_mix.py``). Level ``i`` of
    the table holds, for every amount still to make once the larger cassettes ``0..i-1`` have
    given their notes, the best (notes, small notes) key the cassettes ``i..`` can reach.
    Only amounts the larger cassettes can leave are kept: ``amount - k * G_i`` with ``G_i``
    the gcd of their denominations, so the tables stay small. The mix is then read from the
    top: each cassette gives the most notes that still reach the best key.
    """
    if amount_cents <= 0:
        raise CashError("amount must be positive")
    usable = [c for c in cassettes if c.state in _USABLE and c.count > 0]
    if not usable:
        raise CashError("no cash available")
    ordered = sorted(usable, key=lambda c: -c.denomination_cents)
    smallest = ordered[-1].denomination_cents
    # key = notes * scale + small notes: one integer, compared like the (notes, small) pair.
    scale = sum(c.count for c in ordered) + 1
    weights = [scale + (c.denomination_cents == smallest) for c in ordered]
    last = len(ordered) - 1
    # steps[i]: the spacing of the amounts level i must know, the gcd of the larger
    # denominations (0 for the top level, which knows only the whole amount).
    steps = [0]
    for cassette in ordered[:-1]:
        steps.append(math.gcd(steps[-1], cassette.denomination_cents))
    tables: list[list[int]] = [[] for _ in ordered]
    tables[last] = _last_level(amount_cents, steps[last], ordered[last], weights[last])
    for i in range(last - 1, -1, -1):
        tables[i] = _level(
            amount_cents, steps[i], steps[i + 1], ordered[i], weights[i], tables[i + 1]
        )
    if tables[0][0] >= _INFEASIBLE:
        raise CashError(f"cannot make {amount_cents} cents from the loaded notes")
    mix: dict[int, int] = {}
    remaining = amount_cents
    for i, cassette in enumerate(ordered):
        denomination = cassette.denomination_cents
        target = tables[i][(amount_cents - remaining) // steps[i] if steps[i] else 0]
        if i == last:
            notes = remaining // denomination
        else:
            nxt, step = tables[i + 1], steps[i + 1]
            most = min(cassette.count, remaining // denomination)
            notes = next(
                n
                for n in range(most, -1, -1)
                if nxt[(amount_cents - remaining + n * denomination) // step] + n * weights[i]
                == target
            )
        if notes:
            mix[cassette.index] = notes
        remaining -= notes * denomination
    return mix


_INFEASIBLE = 1 << 62


def _last_level(amount: int, step: int, cassette: CassetteStatus, weight: int) -> list[int]:
    """The smallest cassette alone: amount ``amount - k * step`` is makeable iff it is a
    multiple of its denomination within its count."""
    denomination, count = cassette.denomination_cents, cassette.count
    table = []
    for remaining in range(amount, -1, -step) if step else (amount,):
        notes, rest = divmod(remaining, denomination)
        table.append(notes * weight if not rest and notes <= count else _INFEASIBLE)
    return table


def _level(
    amount: int,
    step: int,
    next_step: int,
    cassette: CassetteStatus,
    weight: int,
    following: list[int],
) -> list[int]:
    """best[k] = min over n of following[k*a + n*b] + n*weight, for the amounts
    ``amount - k * step`` (only k = 0 when step is 0), with a = step / next_step and
    b = denomination / next_step.

    Scaled by b, the term for n is ``h[m] - k*a*weight`` with ``h[m] = following[m]*b +
    m*weight`` and m = k*a + n*b, so each entry is one C-level ``min`` over a slice of h."""
    a = step // next_step
    b = cassette.denomination_cents // next_step
    h = [value * b + m * weight for m, value in enumerate(following)]
    top = len(following) - 1
    # Where the count does not bind, the window runs to the end of its progression: the
    # minimum of each progression's tail, computed once (C-level accumulate per residue).
    tail = [0] * len(h)
    for residue in range(min(b, len(h))):
        ends = list(accumulate(reversed(h[residue::b]), min))
        tail[residue::b] = ends[::-1]
    table = []
    for k in range(amount // step + 1 if step else 1):
        start = k * a
        reach = (top - start) // b
        if cassette.count >= reach:
            best = tail[start]
        else:
            best = min(h[start : start + cassette.count * b + 1 : b])
        table.append(_INFEASIBLE if best >= _INFEASIBLE else (best - start * weight) // b)
    return table


# -- cassette levels ------------------------------------------------------------------------


class Level(enum.StrEnum):
    OK = "ok"
    NEAR_EMPTY = "near_empty"
    EMPTY = "empty"
    OUT_OF_ORDER = "out_of_order"


def cassette_level(cassette: CassetteStatus, near_empty_notes: int, empty_notes: int) -> Level:
    if cassette.state not in _USABLE:
        return Level.EMPTY if cassette.state is CassetteState.EMPTY else Level.OUT_OF_ORDER
    if cassette.count <= empty_notes:
        return Level.EMPTY
    if cassette.count <= near_empty_notes:
        return Level.NEAR_EMPTY
    return Level.OK


def usable_cassettes(cassettes: Sequence[CassetteStatus], empty_notes: int) -> list[CassetteStatus]:
    """The cassettes the note mix may use, each with its reserve (``empty_notes``) held back."""
    out = []
    for c in cassettes:
        if c.state in _USABLE and c.count > empty_notes:
            out.append(
                CassetteStatus(c.index, c.denomination_cents, c.count - empty_notes, c.state)
            )
    return out


# -- counters per cassette ------------------------------------------------------------------


@dataclass
class CassetteCounters:
    """Notes loaded into one cassette and where they went since (supervisor balancing)."""

    denomination_cents: int
    loaded: int = 0
    dispensed: int = 0  # presented and taken (or counted out when the outcome is unknown)
    rejected: int = 0  # diverted to the reject bin while counting
    retracted: int = 0  # presented, not taken, pulled back

    @property
    def remaining(self) -> int:
        return self.loaded - self.dispensed - self.rejected - self.retracted


@dataclass(frozen=True)
class BalancingLine:
    index: int
    counters: CassetteCounters
    reported: int  # what the dispenser says is in the cassette

    @property
    def difference(self) -> int:
        return self.reported - self.counters.remaining


# How many step keys the counters file remembers: far more than the steps of the one
# transaction that can be in progress when the process dies.
KEYS_KEPT = 200


class CashCounters:
    """Per-cassette counters, persisted (atomic replace + fsync) in the device state directory.

    Every booking of a transaction step carries a key (``"<stan>:<kind>"``) saved in the same
    file, in the same atomic write, as the counts it changed. Booking a key again changes
    nothing: restart recovery replays the journal's steps of the interrupted transaction and
    can never count notes twice, whether the process died before or after the counters were
    saved (issue 12 item 5)."""

    def __init__(self, path: Path, *, load: bool = True) -> None:
        self.path = path
        self.cassettes: dict[int, CassetteCounters] = {}
        self.applied: list[str] = []
        if load:
            self.load()

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            raw = json.loads(self.path.read_text())
            keys = raw.pop("_applied", []) if isinstance(raw, dict) else []
            self.cassettes = {int(k): CassetteCounters(**v) for k, v in raw.items()}
            self.applied = [str(k) for k in keys]
        except (ValueError, TypeError, AttributeError) as exc:
            raise CashError(f"cash counters file {self.path} is damaged: {exc}") from exc

    def _first_time(self, key: str | None) -> bool:
        if key is None:
            return True
        if key in self.applied:
            return False
        self.applied = [*self.applied, key][-KEYS_KEPT:]
        return True

    def ensure_loaded(self, cassettes: Sequence[CassetteStatus]) -> bool:
        """First start (or a new cassette): take what the dispenser reports as loaded."""
        changed = False
        for c in cassettes:
            known = self.cassettes.get(c.index)
            if known is None or known.denomination_cents != c.denomination_cents:
                self.cassettes[c.index] = CassetteCounters(c.denomination_cents, loaded=c.count)
                changed = True
        if changed:
            self.save()
        return changed

    def replenish(self, cassettes: Sequence[CassetteStatus]) -> None:
        """New notes were loaded: what the dispenser reports now is the new load."""
        self.cassettes = {
            c.index: CassetteCounters(c.denomination_cents, loaded=c.count) for c in cassettes
        }
        self.save()

    def reset(self) -> None:
        """Start a new balancing period: the remaining notes become the loaded figure."""
        self.cassettes = {
            i: CassetteCounters(c.denomination_cents, loaded=c.remaining)
            for i, c in self.cassettes.items()
        }
        self.save()

    def add(self, kind: str, notes: Mapping[int, int], key: str | None = None) -> bool:
        """Book ``notes`` as ``kind``; with ``key``, only the first time (False after).
        Nothing to book (no note): nothing is written."""
        if not any(notes.values()) or not self._first_time(key):
            return False
        for index, count in notes.items():
            counters = self.cassettes.get(index)
            if counters is None or not count:
                continue
            setattr(counters, kind, getattr(counters, kind) + count)
        self.save()
        return True

    def move(
        self, notes: Mapping[int, int], source: str, dest: str, key: str | None = None
    ) -> bool:
        """Re-book notes (for example presented ones that were retracted after all); with
        ``key``, only the first time (False after)."""
        if not self._first_time(key):
            return False
        for index, count in notes.items():
            counters = self.cassettes.get(index)
            if counters is None:
                continue
            setattr(counters, source, getattr(counters, source) - count)
            setattr(counters, dest, getattr(counters, dest) + count)
        self.save()
        return True

    def balancing(self, reported: Sequence[CassetteStatus]) -> list[BalancingLine]:
        counts = {c.index: c.count for c in reported}
        return [BalancingLine(i, c, counts.get(i, 0)) for i, c in sorted(self.cassettes.items())]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, object] = {str(i): asdict(c) for i, c in self.cassettes.items()}
        data["_applied"] = self.applied
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def value_of(notes: Mapping[int, int], cassettes: Sequence[CassetteStatus]) -> int:
    denominations = {c.index: c.denomination_cents for c in cassettes}
    return sum(denominations.get(i, 0) * n for i, n in notes.items())
