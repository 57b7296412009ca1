"""Sans-IO framing for the host link: each message is prefixed by a 2-byte big-endian length.

This is the jPOS PostChannel/NACChannel convention. The framer never touches a socket: feed it
bytes as they arrive and it returns every whole frame found so far. A zero-length frame is a
keep-alive and is dropped. A length above ``max_frame`` raises ``FrameError``: after that the
stream cannot be trusted and the connection should be closed.
"""

from __future__ import annotations

from protocol.errors import FrameError, LocalProtocolError

HEADER_LEN = 2
ABSOLUTE_MAX_FRAME = 0xFFFF
DEFAULT_MAX_FRAME = 4096

__all__ = ["DEFAULT_MAX_FRAME", "HEADER_LEN", "Framer", "encode_frame"]


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 2-byte big-endian length."""
    n = len(payload)
    if not 0 < n <= ABSOLUTE_MAX_FRAME:  # one test on the way of every frame
        if not n:
            raise LocalProtocolError("refusing to frame an empty payload (that is a keep-alive)")
        raise LocalProtocolError(f"payload of {n} bytes does not fit a 2-byte length")
    return n.to_bytes(HEADER_LEN, "big") + payload


class Framer:
    """Accumulates bytes and splits them into frames."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 1 <= max_frame <= ABSOLUTE_MAX_FRAME:
            raise LocalProtocolError(f"max_frame must be 1..{ABSOLUTE_MAX_FRAME}, got {max_frame}")
        self.max_frame = max_frame
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the whole frames now available, oldest first."""
        if not self._buffer and len(data) >= HEADER_LEN:
            # The common case, one whole frame in one read: no copy through the buffer.
            length = data[0] << 8 | data[1]  # HEADER_LEN bytes, big-endian
            if length <= self.max_frame and len(data) == HEADER_LEN + length:
                if not length:
                    return []
                # A slice of bytes is bytes already; of anything else, copied into bytes.
                frame = data[HEADER_LEN:]
                return [frame if type(frame) is bytes else bytes(frame)]
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= HEADER_LEN:
            length = int.from_bytes(self._buffer[:HEADER_LEN], "big")
            if length > self.max_frame:
                raise FrameError(f"frame length {length} exceeds the maximum of {self.max_frame}")
            end = HEADER_LEN + length
            if len(self._buffer) < end:
                break
            frame = bytes(self._buffer[HEADER_LEN:end])
            del self._buffer[:end]
            if frame:
                frames.append(frame)
        return frames
