"""Sans-IO wire codecs, one module per device family: bytes in, events out; command in, bytes
out. They never touch a port or a socket. The drivers use them from the host side and the
simulators from the device side, so both speak exactly the same bytes."""

from drivers.codecs.events import Ack, BadFrame, Junk, Nak

__all__ = ["Ack", "BadFrame", "Junk", "Nak"]
