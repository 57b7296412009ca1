"""The protocol package's exception tree.

Two kinds, as in h11: the peer sent something we cannot accept (``RemoteProtocolError`` and its
children), or the caller misused our API (``LocalProtocolError``). Link-level failures (timeouts,
closed connections) are ``LinkError``.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error raised by the ``protocol`` package."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not make a valid frame or message."""


class FrameError(RemoteProtocolError):
    """A length prefix that is out of range: the stream cannot be resynchronised."""


class MessageError(RemoteProtocolError):
    """A frame whose payload is not a valid message of our spec."""

    def __init__(self, message: str, *, field: str | None = None, mti: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.mti = mti


class MacError(RemoteProtocolError):
    """A message whose MAC is missing, misplaced or wrong: it must never be processed."""


class LocalProtocolError(ProtocolError):
    """Our own code asked for something the protocol cannot express."""


class PinBlockError(ProtocolError):
    """A PIN block that cannot be built or does not decode to a valid PIN."""


class LinkError(ProtocolError):
    """The link to the peer failed: closed, refused, or not answering."""


class LinkTimeout(LinkError):
    """No response arrived within the response timeout."""


class KeyMaterialError(ProtocolError):
    """Key material that cannot be used: wrong length, failed unwrap, check value mismatch.

    ``reason`` names which, for callers that report it on their own terms (a PIN pad's error
    codes): ``key_length``, ``unwrap``, ``kcv``, or empty."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class LinkUnavailable(LinkError):
    """The link is down: the request was not sent."""
