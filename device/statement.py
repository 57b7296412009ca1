"""The mini-statement of a balance inquiry (DE 62 of the 0110): parsing and display lines.

DE 62 holds up to five 40-character entries, newest first: date ``YYYYMMDD``, sign ``C``/``D``,
12-digit amount in cents, 19-character description (space padded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from device.errors import DeviceError
from device.screens import money

__all__ = ["StatementEntry", "StatementError", "parse_mini_statement"]

ENTRY = 40


class StatementError(DeviceError):
    """DE 62 that does not follow the mini-statement layout."""


@dataclass(frozen=True)
class StatementEntry:
    date: dt.date
    cents: int  # negative for debits
    description: str

    def line(self, width: int = 32) -> str:
        amount = money(self.cents)
        left = f"{self.date:%m/%d} {self.description}"
        return f"{left[: width - len(amount) - 1]:<{width - len(amount) - 1}} {amount}"


def parse_mini_statement(value: str) -> list[StatementEntry]:
    if len(value) % ENTRY or len(value) > 5 * ENTRY:
        raise StatementError(f"DE 62 length {len(value)} is not up to five {ENTRY}-char entries")
    out = []
    for i in range(0, len(value), ENTRY):
        chunk = value[i : i + ENTRY]
        date, sign, digits, text = chunk[:8], chunk[8], chunk[9:21], chunk[21:]
        if sign not in "CD" or not digits.isdigit() or not date.isdigit():
            raise StatementError(f"bad mini-statement entry {chunk!r}")
        try:
            day = dt.datetime.strptime(date, "%Y%m%d").date()
        except ValueError as exc:
            raise StatementError(f"bad date in mini-statement entry {chunk!r}") from exc
        cents = int(digits) * (1 if sign == "C" else -1)
        out.append(StatementEntry(day, cents, text.rstrip()))
    return out
