"""The physical state file of a simulated device: what a real device keeps when the ATM
process dies (notes in the cassettes, the exit tray and the reject bin; paper; a card inside).

A real dispenser's notes do not vanish when the controller crashes, so the simulated devices
write their physical state here after every physical change and read it back when built again.
Written atomically and durably: the new state goes to a temporary file in the same directory,
is fsync'd, replaces the old file (``os.replace``) and the directory is fsync'd, all before the
device reports the step done. A reader therefore sees the old state or the new one, never a
mixture. Holds no track data, PIN or key: a card inside is recorded by its masked PAN only.

One codec per device class (``DispenserState``, ``CardReaderState``, ``BillAcceptorState``,
``DepositoryState``, ``PrinterState``): the in-process simulated devices
(``drivers.simulated``) and the peripheral simulators (``simulators``) hold the same
physical model of the device (``drivers.physical``), which writes and reads its file
through it, so the two can never drift apart. ``load_device`` raises ``StateFileError``
naming the file when a field is missing or of the wrong kind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from drivers.codecs.escpos import LINE_DOTS
from drivers.errors import DriverError

__all__ = [
    "BillAcceptorState",
    "CardReaderState",
    "CassetteLoad",
    "DepositoryState",
    "DeviceCodec",
    "DispenserState",
    "PrinterState",
    "StateFileError",
    "load_device",
    "load_state",
    "save_device",
    "save_state",
]


class StateFileError(DriverError):
    """A device state file cannot be written, or is not readable JSON."""


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state`` (JSON), atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(state, indent=1, sort_keys=True).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StateFileError(f"cannot write device state file {path}: {exc}") from exc


def load_state(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``; None when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read device state file {path}: {exc}") from exc
    try:
        state = json.loads(raw)
    except ValueError as exc:
        raise StateFileError(f"device state file {path} is damaged: {exc}") from exc
    if not isinstance(state, dict):
        raise StateFileError(f"device state file {path} is damaged: not a JSON object")
    return state


# -- one codec per device class ------------------------------------------------------------


class DeviceCodec(Protocol):
    """A device's state as its file holds it (``DEVICE`` names the device in the file)."""

    DEVICE: str

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self: ...


C = TypeVar("C", bound=DeviceCodec)


def save_device(path: Path, state: DeviceCodec) -> None:
    save_state(path, {"device": state.DEVICE, **state.to_json()})


def load_device(path: Path, codec: type[C]) -> C | None:
    """The device state saved at ``path`` (None when there is none yet)."""
    raw = load_state(path)
    if raw is None:
        return None
    try:
        return codec.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFileError(f"device state file {path} is damaged: {exc!r}") from exc


def _keyed(notes: Mapping[int, int]) -> dict[str, int]:
    return {str(i): n for i, n in sorted(notes.items()) if n}


def _unkeyed(raw: Mapping[str, Any]) -> dict[int, int]:
    return {int(i): int(n) for i, n in raw.items() if int(n)}


def _ints(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list):
        raise TypeError(f"expected a list, got {type(raw).__name__}")
    return tuple(int(x) for x in raw)


def _texts(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise TypeError("expected a list of text")
    return tuple(raw)


@dataclass(frozen=True)
class CassetteLoad:
    denomination_cents: int
    count: int
    present: bool = True


@dataclass(frozen=True)
class DispenserState:
    """Notes per cassette, in the exit tray and the reject bin (per cassette), retracted over
    its life, taken by customers; ``counted``: notes counted out by a dispense whose answer
    was lost (the in-process ``hang`` fault), None otherwise."""

    DEVICE = "dispenser"
    cassettes: tuple[CassetteLoad, ...]
    tray: dict[int, int] = field(default_factory=dict)
    reject_bin: dict[int, int] = field(default_factory=dict)
    retracted: int = 0
    taken: dict[int, int] = field(default_factory=dict)
    counted: dict[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cassettes": [
                {"denomination": c.denomination_cents, "count": c.count, "present": c.present}
                for c in self.cassettes
            ],
            "tray": _keyed(self.tray),
            "reject_bin": _keyed(self.reject_bin),
            "retracted": self.retracted,
            "taken": _keyed(self.taken),
        }
        if self.counted is not None:
            out["counted"] = _keyed(self.counted)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DispenserState:
        counted = raw.get("counted")
        return cls(
            cassettes=tuple(
                CassetteLoad(int(c["denomination"]), int(c["count"]), bool(c.get("present", True)))
                for c in raw["cassettes"]
            ),
            tray=_unkeyed(raw.get("tray", {})),
            reject_bin=_unkeyed(raw.get("reject_bin", {})),
            retracted=int(raw.get("retracted", 0)),
            taken=_unkeyed(raw.get("taken", {})),
            counted=None if counted is None else _unkeyed(counted),
        )


CARD_POSITIONS = frozenset({"none", "inside", "gate", "captured"})


@dataclass(frozen=True)
class CardReaderState:
    """Where the card is (``none``, ``inside``, ``gate``), known by its masked number only,
    and the masked numbers of the cards in the capture bin."""

    DEVICE = "card_reader"
    position: str = "none"
    card: str = ""
    captured: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.position not in CARD_POSITIONS:
            raise ValueError(f"bad card position {self.position!r}")

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "card": self.card, "captured": list(self.captured)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CardReaderState:
        return cls(str(raw["position"]), str(raw.get("card", "")), _texts(raw.get("captured", [])))


@dataclass(frozen=True)
class BillAcceptorState:
    """Where every note is (cents per note): held in escrow, in the stacker (cents ->
    count), jammed in the transport, at the entrance (returned, not taken), taken back."""

    DEVICE = "bill-acceptor"
    escrow: tuple[int, ...] = ()
    stacker: dict[int, int] = field(default_factory=dict)
    jammed: tuple[int, ...] = ()
    at_entrance: tuple[int, ...] = ()
    taken_back: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "escrow": list(self.escrow),
            "stacker": _keyed(self.stacker),
            "jammed": list(self.jammed),
            "at_entrance": list(self.at_entrance),
            "taken_back": list(self.taken_back),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BillAcceptorState:
        return cls(
            _ints(raw.get("escrow", [])),
            _unkeyed(raw.get("stacker", {})),
            _ints(raw.get("jammed", [])),
            _ints(raw.get("at_entrance", [])),
            _ints(raw.get("taken_back", [])),
        )


@dataclass(frozen=True)
class DepositoryState:
    """The envelopes in the bin, by the imprint printed on each."""

    DEVICE = "depository"
    envelopes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"envelopes": list(self.envelopes)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DepositoryState:
        return cls(_texts(raw.get("envelopes", [])))


PAPER_LAYOUTS = frozenset({"lines", "dots"})


@dataclass(frozen=True)
class PrinterState:
    """The paper left on the roll, in dots fed (None: a roll that never runs out), and the
    receipts cut from it. Two layouts, both read by every printer: ``lines``, the in-process
    printer's (``paper_left`` in default-spaced lines, ``printed``), and ``dots``, the ESC/POS
    simulator's (``paper_dots``); a printer writes its own."""

    DEVICE = "printer"
    paper_dots: int | None
    printed: int = 0
    layout: str = "dots"

    def __post_init__(self) -> None:
        if self.layout not in PAPER_LAYOUTS:
            raise ValueError(f"bad paper layout {self.layout!r}")

    def to_json(self) -> dict[str, Any]:
        if self.layout == "dots":
            return {"paper_dots": self.paper_dots}
        left = None if self.paper_dots is None else self.paper_dots // LINE_DOTS
        return {"paper_left": left, "printed": self.printed}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PrinterState:
        printed = int(raw.get("printed", 0))
        if "paper_dots" in raw:
            return cls(int(raw["paper_dots"]), printed, "dots")
        left = raw.get("paper_left")
        return cls(None if left is None else int(left) * LINE_DOTS, printed, "lines")
