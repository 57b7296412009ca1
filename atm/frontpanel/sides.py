"""The customer (and engineer) side of each device, in one vocabulary: the simulators' control
channel (``simulators.control``: ``insert``, ``press``, ``take cash``, ``inject``, ``clear``,
``state``, ``faults``).

* ``LocalSide``: the device lives in this process (an in-process simulated backend, or a
  simulator on a pseudo-terminal driven through the real serial driver). Commands go to
  ``ControlChannel.handle`` directly and the physical state is read from the object.
* ``RemoteSide``: the device is ``atm sim NAME`` in another process; commands go over its
  control channel (TCP, one line each way) and the physical state is parsed from ``state``.
* ``HardwareSide``: a real device: nobody here can press its keys or take its cash; every
  command answers so, and the console says it.

Whatever the side, a reply is a line starting ``ok`` or ``error:``; nothing here raises on a
device's refusal, so a console can show the reply as it is.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atm.steps import TRACKS
from simulators.control import ControlChannel, describe

__all__ = ["DeviceSide", "HardwareSide", "LocalSide", "RemoteSide", "SideState"]


@dataclass(frozen=True)
class SideState:
    """What is physically at a device, as far as this side can tell."""

    summary: str = ""  # one line (the control channel's ``state``)
    faults: tuple[str, ...] = ()
    card_position: str = ""  # card reader: none | inside | gate | captured ("" unknown)
    cards_captured: int = 0
    tray: Mapping[int, int] = field(default_factory=dict)  # dispenser: cassette -> notes
    cassettes: tuple[tuple[int, int], ...] = ()  # (denomination cents, notes)
    frames: str = ""  # frames in/out on the wire, for serial simulators
    # Bill acceptor: notes (cents) held in escrow, given back at the entrance, in the stacker.
    escrow: tuple[int, ...] = ()
    returned: tuple[int, ...] = ()
    stacker: Mapping[int, int] = field(default_factory=dict)  # cents -> notes
    envelopes: int = 0  # envelope depository: envelopes in the bin


class DeviceSide(abc.ABC):
    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.fault_names: tuple[str, ...] = ()

    #: Whether the customer can act on this device from here.
    acts: bool = True

    @property
    def where(self) -> str:
        return self.url

    @abc.abstractmethod
    async def command(self, line: str) -> str:
        """Send one control-channel command; the reply line (``ok ...`` or ``error: ...``)."""

    @abc.abstractmethod
    def state(self) -> SideState:
        """The last known physical state (cheap: no I/O)."""

    async def refresh(self) -> None:
        """Bring ``state()`` up to date where that needs I/O (remote sides)."""
        return None

    async def close(self) -> None:
        return None


class LocalSide(DeviceSide):
    def __init__(self, kind: str, url: str, device: Any) -> None:
        super().__init__(kind, url)
        self.device = device
        self._channel = ControlChannel(device, TRACKS)
        names = getattr(device, "fault_names", None) or sorted(device.FAULTS)
        self.fault_names = tuple(names)

    @property
    def where(self) -> str:
        return f"{self.url} (in this process)"

    async def command(self, line: str) -> str:
        return self._channel.handle(line)

    def state(self) -> SideState:
        d = self.device
        cassettes = tuple((c.denomination_cents, c.count) for c in getattr(d, "cassettes", ()))
        tray = getattr(d, "tray", None)
        if tray is None:
            tray = getattr(d, "presented", {})
        frames = ""
        if hasattr(d, "frames_in"):
            frames = (
                f"{d.frames_in} in / {d.frames_out} out; last in {wire_bytes(d.last_in)}, "
                f"last out {wire_bytes(d.last_out)}"
            )
        return SideState(
            summary=describe(d),
            faults=tuple(sorted(d.faults)),
            card_position=str(getattr(d, "position", "")),
            cards_captured=len(getattr(d, "captured", ())),
            tray={i: n for i, n in dict(tray).items() if n},
            cassettes=cassettes,
            frames=frames,
            escrow=tuple(getattr(d, "escrow", ())),
            returned=tuple(getattr(d, "at_entrance", ())),
            stacker={c: n for c, n in dict(getattr(d, "stacker", {})).items() if n},
            envelopes=len(getattr(d, "envelopes", ())),
        )


WIRE_BYTES_SHOWN = 8


def wire_bytes(data: bytes) -> str:
    """The first bytes of a frame in hex (command and status; never far enough to reach a
    card reader's track data), and its length."""
    if not data:
        return "-"
    more = "..." if len(data) > WIRE_BYTES_SHOWN else ""
    return f"{data[:WIRE_BYTES_SHOWN].hex(' ').upper()}{more} ({len(data)} B)"


_PAIR = re.compile(r"(\w+)=(\{[^}]*\}|\[[^\]]*\]|'[^']*'|\S+)")
_CASSETTE = re.compile(r"(\d+)c x (\d+)")
_TRAY_ITEM = re.compile(r"(\d+):\s*(\d+)")
_NOTE = re.compile(r"\d+")


def parse_state(summary: str) -> SideState:
    """A ``SideState`` from a control channel's ``state`` reply (``simulators.control``)."""
    pairs = dict(_PAIR.findall(summary))
    faults = pairs.get("faults", "-")
    return SideState(
        summary=summary,
        faults=() if faults == "-" else tuple(faults.split(",")),
        card_position=pairs.get("position", "").strip("'"),
        cards_captured=int(pairs.get("captured", "0") or 0),
        tray={int(i): int(n) for i, n in _TRAY_ITEM.findall(pairs.get("tray", "")) if int(n)},
        cassettes=tuple((int(d), int(n)) for d, n in _CASSETTE.findall(pairs.get("cassettes", ""))),
        escrow=tuple(int(c) for c in _NOTE.findall(pairs.get("escrow", ""))),
        returned=tuple(int(c) for c in _NOTE.findall(pairs.get("at_entrance", ""))),
        stacker={int(c): int(n) for c, n in _TRAY_ITEM.findall(pairs.get("stacker", ""))},
    )


class RemoteSide(DeviceSide):
    """``atm sim``'s control channel at ``host:port``; one connection, one command at a time."""

    def __init__(self, kind: str, url: str, host: str, port: int, timeout: float = 3.0) -> None:
        super().__init__(kind, url)
        self.address = (host, port)
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._state = SideState(summary="(not asked yet)")

    @property
    def where(self) -> str:
        return f"{self.url} (control channel {self.address[0]}:{self.address[1]})"

    async def connect(self) -> None:
        """Open the control channel and learn the device's faults; ``OSError`` when it is
        not there (with a message that says which device and where)."""
        reply = await self.command("faults")
        if not reply.startswith("ok"):
            raise OSError(f"{self.kind} control channel at {self._address()}: {reply}")
        self.fault_names = tuple(reply[2:].split())
        await self.refresh()

    def _address(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    async def command(self, line: str) -> str:
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    if self._streams is None:
                        self._streams = await asyncio.open_connection(*self.address)
                    reader, writer = self._streams
                    writer.write(line.strip().encode() + b"\n")
                    await writer.drain()
                    reply = await reader.readline()
            except (OSError, TimeoutError) as exc:
                await self._drop()
                why = str(exc) or type(exc).__name__
                return f"error: {self.kind} control channel at {self._address()}: {why}"
            if not reply:
                await self._drop()
                return f"error: {self.kind} control channel at {self._address()} closed"
            return reply.decode("utf-8", errors="replace").strip()

    async def _drop(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def state(self) -> SideState:
        return self._state

    async def refresh(self) -> None:
        reply = await self.command("state")
        if reply.startswith("ok"):
            self._state = parse_state(reply[2:].strip())
        else:
            self._state = SideState(summary=reply)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


class HardwareSide(DeviceSide):
    acts = False

    @property
    def where(self) -> str:
        return f"{self.url} (hardware)"

    async def command(self, line: str) -> str:
        return (
            f"error: the {self.kind} at {self.url} is a real device: act on the device itself "
            "(or give its simulator's control channel with --control)"
        )

    def state(self) -> SideState:
        return SideState(summary="real device: its physical state is not visible from here")
