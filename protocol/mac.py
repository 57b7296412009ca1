"""MAC'd messages, sans-IO: encode with a MAC, decode and verify.

The MAC is the last field of every message: DE 64 when the message has only a primary bitmap,
DE 128 when it has a secondary one (the MAC always takes the last bit of the last bitmap). The
MAC input is the encoded message (MTI, bitmaps, every field) up to, not including, the 16 MAC
characters; the 2-byte length prefix is not part of it. To build a message: encode it with the
MAC field set to 16 zeros, compute the MAC over every byte but the last 16, put the MAC's hex
in their place.
"""

from __future__ import annotations

from hmac import compare_digest as _compare_digest
from typing import Protocol

from protocol.errors import LocalProtocolError, MacError
from protocol.messages import Message, NetworkCode, decode, encode, encode_owned, mti_class
from protocol.security import (
    MAC_HEX_LEN,
    KeyScheme,
    compute_mac_ascii,
    signon_mac_key,
)

__all__ = [
    "SIGNON_CODES",
    "MessageCodec",
    "PlainCodec",
    "TerminalCodec",
    "encode_signed",
    "mac_field",
    "uses_signon_key",
    "verify_signed",
]

SIGNON_CODES = frozenset({NetworkCode.SIGN_ON.value, NetworkCode.KEY_CHANGE.value})
_PLACEHOLDER = "0" * MAC_HEX_LEN
_SECONDARY_FIELDS = frozenset(str(n) for n in range(65, 128))  # 128 itself is the MAC
_no_secondary_field = _SECONDARY_FIELDS.isdisjoint


def uses_signon_key(message: Message) -> bool:
    """Sign-on and key change (0800/0810 with DE 70 = 001 or 161) are MAC'd under the sign-on
    key derived from the TMK; everything else under the TAK."""
    mti = message.get("t", "")
    return len(mti) == 4 and mti_class(mti) == "0800" and message.get("70") in SIGNON_CODES


def mac_field(message: Message) -> str:
    """``"128"`` when the message needs a secondary bitmap, else ``"64"``."""
    return "64" if _no_secondary_field(message) else "128"


def encode_signed(message: Message, scheme: KeyScheme, key: bytes) -> bytes:
    """Encode ``message`` (not modified) with its MAC as the last field: one encoding, whose
    MAC placeholder is cut off for the MAC input and the MAC put in its place."""
    fields = dict(message)  # the one copy: encode_owned may add to it
    fields.pop("64", None)
    fields.pop("128", None)
    fields["64" if _no_secondary_field(fields) else "128"] = _PLACEHOLDER  # mac_field
    data = encode_owned(fields)
    del data[-MAC_HEX_LEN:]  # the placeholder, in place
    body = bytes(data)
    return body + compute_mac_ascii(scheme, key, body)


# Where the primary bitmap starts in a payload of our spec (no header, then a 4-digit MTI), and
# the ASCII hex digits whose first bit is set: a secondary bitmap follows.
_BITMAP_AT = 4
_SECONDARY_BIT = frozenset(b"89ABCDEFabcdef")


def verify_signed(payload: bytes, message: Message, scheme: KeyScheme, key: bytes) -> None:
    """Raise ``MacError`` unless ``payload`` (whose decoding is ``message``) carries a correct
    MAC in the right place."""
    value = message.get("64")
    if (
        value is None
        or "128" in message
        # A secondary field can be there only if the primary bitmap says a secondary one is.
        or (payload[_BITMAP_AT] in _SECONDARY_BIT and mac_field(message) == "128")
    ):
        value = _mac_in_128(message)
    received = payload[-MAC_HEX_LEN:]
    if len(value) != MAC_HEX_LEN or received != value.encode("ascii"):
        raise MacError("MAC is not the last 16 characters of the message")
    # compute_mac_ascii gives upper case; the received MAC may be in either.
    expected = compute_mac_ascii(scheme, key, payload, len(payload) - MAC_HEX_LEN)
    if not _compare_digest(expected, received.upper()):
        raise MacError("MAC does not verify")


def _mac_in_128(message: Message) -> str:
    """The MAC of a message whose MAC is not plainly in DE 64 of a primary-bitmap-only
    message: DE 128, or ``MacError`` saying what is wrong."""
    has64, has128 = "64" in message, "128" in message
    if not has64 and not has128:
        raise MacError("no MAC (DE 64/128 absent)")
    if has64:
        raise MacError("MAC in DE 64 of a message with a secondary bitmap")
    return message["128"]


class MessageCodec(Protocol):
    """What a link endpoint uses to turn messages into payloads and back."""

    def encode(self, message: Message) -> bytes: ...

    def decode(self, payload: bytes) -> Message: ...


class PlainCodec:
    """No MAC: for tools and tests that look at bare messages."""

    def encode(self, message: Message) -> bytes:
        return encode(message)

    def decode(self, payload: bytes) -> Message:
        return decode(payload)


class TerminalCodec:
    """The terminal's side: MACs what it sends and verifies what it receives, with the sign-on
    key (from the TMK) or the TAK it received at sign-on."""

    def __init__(self, scheme: KeyScheme, tmk: bytes) -> None:
        self.scheme = scheme
        self._signon_key = signon_mac_key(scheme, tmk)
        self._tak: bytes | None = None

    @property
    def has_working_key(self) -> bool:
        return self._tak is not None

    def set_mac_key(self, tak: bytes | None) -> None:
        self._tak = tak

    def _key(self, message: Message) -> bytes | None:
        return self._signon_key if uses_signon_key(message) else self._tak

    def encode(self, message: Message) -> bytes:
        key = self._key(message)
        if key is None:
            raise LocalProtocolError("no MAC key yet: sign on first")
        return encode_signed(message, self.scheme, key)

    def decode(self, payload: bytes) -> Message:
        message = decode(payload)
        key = self._key(message)
        if key is None:
            raise MacError("no MAC key to verify with (not signed on)")
        verify_signed(payload, message, self.scheme, key)
        return message
