"""The ATM-to-host link: message spec, framing, PIN blocks, STAN, response codes, link client.

Sans-IO except ``protocol.link``. No database, device or host code is imported here.
"""

from protocol.errors import (
    FrameError,
    LinkError,
    LinkTimeout,
    LocalProtocolError,
    MessageError,
    PinBlockError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.response_codes import ResponseCode

__all__ = [
    "FrameError",
    "LinkError",
    "LinkTimeout",
    "LocalProtocolError",
    "MessageError",
    "PinBlockError",
    "ProtocolError",
    "RemoteProtocolError",
    "ResponseCode",
]
