"""Human-readable rendering of a message for logs, the demo and ``atm link decode``.

PAN and track 2 are masked; PIN block, MAC and key material are never printed.
"""

from __future__ import annotations

from protocol.masking import mask_pan, mask_track2
from protocol.messages import Message
from protocol.response_codes import ResponseCode
from protocol.spec import SPEC

__all__ = ["describe", "response_meaning", "safe_fields"]

_HIDDEN = {"52", "64", "128", "48"}


def safe_fields(message: Message) -> dict[str, str]:
    """The message's fields with every sensitive value masked or replaced."""
    out: dict[str, str] = {}
    for field, value in message.items():
        if field == "2":
            out[field] = mask_pan(value)
        elif field == "35":
            out[field] = mask_track2(value)
        elif field in _HIDDEN:
            out[field] = f"[{len(value) // 2} bytes hidden]" if field != "48" else "[private]"
        else:
            out[field] = value
    return out


def response_meaning(code: str) -> str:
    """``(Approved)``, ``(Insufficient funds)``...: the meaning of a DE 39 value, in brackets."""
    known = ResponseCode.parse(code)
    return f"({known.text})" if known is not None else "(not a code of this link)"


def _order(field: str) -> tuple[int, str]:
    return (0, field) if field == "t" else (1, field.zfill(3))


def describe(message: Message) -> str:
    lines = [f"MTI {message.get('t', '????')}"]
    for field, value in sorted(safe_fields(message).items(), key=lambda kv: _order(kv[0])):
        if field == "t":
            continue
        desc = SPEC.get(field, {}).get("desc", "")
        if field == "39":
            value = f"{value} {response_meaning(value)}"
        lines.append(f"  DE{field:>3} {desc[:28]:<28} {value}")
    return "\n".join(lines)
