"""Note mixing: which notes from which cassettes make an amount.

Fewest notes first, but a mix that would empty the smallest denomination while another mix of
the same note count keeps it is preferred, so small notes stay available for odd amounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from device.errors import CashError
from drivers.interfaces import CassetteState, CassetteStatus

__all__ = ["mix_notes"]

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
