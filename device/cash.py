"""Cash management: the note mix, cassette levels and the per-cassette counters.

Note mixing: which notes from which cassettes make an amount.
Fewest notes first, but a mix that would empty the smallest denomination while another mix of
the same note count keeps it is preferred, so small notes stay available for odd amounts.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
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
    """Return cassette index -> note count for ``amount_cents``; ``CashError`` if impossible."""
    if amount_cents <= 0:
        raise CashError("amount must be positive")
    usable = [c for c in cassettes if c.state in _USABLE and c.count > 0]
    if not usable:
        raise CashError("no cash available")
    smallest = min(c.denomination_cents for c in usable)
    best: tuple[int, int, dict[int, int]] | None = None

    def search(i: int, remaining: int, mix: dict[int, int]) -> None:
        nonlocal best
        if remaining == 0:
            notes = sum(mix.values())
            small_left = sum(
                c.count - mix.get(c.index, 0) for c in usable if c.denomination_cents == smallest
            )
            key = (notes, -small_left)
            if best is None or key < best[:2]:
                best = (notes, -small_left, dict(mix))
            return
        if i == len(ordered):
            return
        cassette = ordered[i]
        most = min(cassette.count, remaining // cassette.denomination_cents)
        for n in range(most, -1, -1):
            if n:
                mix[cassette.index] = n
            else:
                mix.pop(cassette.index, None)
            search(i + 1, remaining - n * cassette.denomination_cents, mix)
        mix.pop(cassette.index, None)

    ordered = sorted(usable, key=lambda c: -c.denomination_cents)
    search(0, amount_cents, {})
    if best is None:
        raise CashError(f"cannot make {amount_cents} cents from the loaded notes")
    return best[2]


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
