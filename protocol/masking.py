"""Masking helpers: a full PAN, track data, PIN block or key never reaches a log or receipt.

``install_log_redaction`` makes every log record of this process pass through ``redact_text``
(message, arguments and exception text), whatever handler writes it: the ``drivers``,
``device`` and ``host`` packages install it when imported, so no log call of theirs can
write track data, a full PAN, a PIN block or a key, even by ``repr`` of a device reply.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["install_log_redaction", "mask_pan", "mask_track2", "redact_text"]

# Digits not inside a longer run of digits (a PAN may follow ``\x02`` in a bytes repr, so no
# word boundary is required before it).
_PAN_RE = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
# Track 2: PAN, separator (= or D), then expiry, service code and discretionary data.
_TRACK2_RE = re.compile(r"(?<!\d)(\d{13,19})[=D]\d{4,}")
# PIN blocks and keys travel as hex: 16 hex characters or more, at least one of them a letter
# (an all-digit run is left to the PAN rule).
_HEX_SECRET_RE = re.compile(r"(?<![0-9A-Fa-f])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Fa-f])")
# The same in a bytes repr of binary data: eight or more \xNN escapes in a row.
_BINARY_RE = re.compile(r"(?:\\x[0-9a-f]{2}){8,}")


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
    """Mask what in free text looks like track 2 data, a PAN, a PIN block or a key."""
    text = _TRACK2_RE.sub(lambda m: mask_track2(m.group(0)), text)
    text = _PAN_RE.sub(lambda m: mask_pan(m.group(0)), text)
    text = _HEX_SECRET_RE.sub("[hex redacted]", text)
    return _BINARY_RE.sub("[binary redacted]", text)


_installed = False


def install_log_redaction() -> None:
    """Make every log record created from now on carry its message already redacted
    (idempotent). Runs only for records that pass the logger's level."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it later; redact the parts
        message = f"{record.msg} {record.args}"
    record.msg, record.args = redact_text(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        # The text above is what handlers print; keep the traceback object out of their way.
        record.exc_info = None
