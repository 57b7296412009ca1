"""System trace audit numbers (DE 11): 000001..999999, then wrap to 000001."""

from __future__ import annotations

__all__ = ["StanGenerator"]


class StanGenerator:
    def __init__(self, last: int = 0) -> None:
        if not 0 <= last <= 999_999:
            raise ValueError(f"last STAN must be 0..999999, got {last}")
        self.last = last

    def next(self) -> str:
        self.last = self.last % 999_999 + 1
        return f"{self.last:06d}"
