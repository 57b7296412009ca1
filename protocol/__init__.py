"""The ATM-to-host link: message spec, framing, MAC and keys, PIN blocks, STAN, response codes,
link client.

Sans-IO except ``protocol.link``. No database, device or host code is imported here.
"""

from protocol.errors import (
    FrameError,
    KeyMaterialError,
    LinkError,
    LinkTimeout,
    LinkUnavailable,
    LocalProtocolError,
    MacError,
    MessageError,
    PinBlockError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.response_codes import ResponseCode

__all__ = [
    "FrameError",
    "KeyMaterialError",
    "LinkError",
    "LinkTimeout",
    "LinkUnavailable",
    "LocalProtocolError",
    "MacError",
    "MessageError",
    "PinBlockError",
    "ProtocolError",
    "RemoteProtocolError",
    "ResponseCode",
]
