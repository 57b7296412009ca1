"""Masking helpers: a full PAN, track data, PIN block or key never reaches a log or receipt."""

from __future__ import annotations

import re

__all__ = ["mask_pan", "mask_track2", "redact_text"]

_PAN_RE = re.compile(r"\b\d{13,19}\b")


def mask_pan(pan: str) -> str:
    """Keep the first 6 and last 4 digits (PCI DSS display rule), mask the rest with ``*``."""
    digits = pan.strip()
    if len(digits) < 11:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_track2(track2: str) -> str:
    """Show only the masked PAN of a track 2; expiry, service code and discretionary data go."""
    pan = re.split(r"[=D]", track2, maxsplit=1)[0]
    return mask_pan(pan) + "=****"


def redact_text(text: str) -> str:
    """Mask anything in free text that looks like a PAN."""
    return _PAN_RE.sub(lambda m: mask_pan(m.group(0)), text)
