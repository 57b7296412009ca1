"""One physical model per simulated device: where every note, envelope and card is.

A real dispenser's notes do not vanish when the ATM process dies, and a bill acceptor keeps
the notes in its escrow through a power cut. The in-process simulated devices
(``drivers.simulated``) and the peripheral simulators on a pseudo-terminal (``simulators``)
hold the same model for the same device, so the notes move by the same rules on either side
of the wire, and the state file is written by one piece of code.

Each model owns its state file (the formats are the codecs of ``drivers.statefile``): it
reads the file when built (a missing file is created), and writes it atomically after every
change, before the call that made the change returns. A step made of several moves (a
dispense from two cassettes, a stack of a bunch of notes) is one ``with model.change():``
block and one write, made even when the step fails half-way. A write that would not change
the file is skipped.

No faults, no wire bytes, no timing here: those belong to the device that holds the model.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Self, TypeVar, cast, overload

from drivers.codecs.escpos import LINE_DOTS
from drivers.interfaces import CassetteState
from drivers.statefile import (
    BillAcceptorState,
    CardReaderState,
    CassetteLoad,
    DepositoryState,
    DeviceCodec,
    DispenserState,
    PrinterState,
    load_device,
    save_device,
)

__all__ = [
    "AcceptorNotes",
    "CardSlot",
    "Cassette",
    "DispenserNotes",
    "EnvelopeBin",
    "HoldsAcceptorNotes",
    "HoldsDispenserNotes",
    "ModelField",
    "PaperRoll",
    "PhysicalModel",
]

S = TypeVar("S", bound=DeviceCodec)
T = TypeVar("T")


class ModelField(Generic[T]):
    """An attribute of a device that lives on its physical model: in a device class,
    ``tray = ModelField[dict[int, int]]("notes", "tray")`` reads and writes
    ``device.notes.tray`` (the device's users keep their names; the model keeps the state)."""

    def __init__(self, model: str, name: str) -> None:
        self.model, self.name = model, name

    @overload
    def __get__(self, device: None, owner: type) -> Self: ...
    @overload
    def __get__(self, device: object, owner: type) -> T: ...
    def __get__(self, device: object | None, owner: type) -> Self | T:
        if device is None:
            return self
        return cast(T, getattr(getattr(device, self.model), self.name))

    def __set__(self, device: object, value: T) -> None:
        setattr(getattr(device, self.model), self.name, value)


class PhysicalModel(abc.ABC, Generic[S]):
    """A device's physical state, kept in ``state_path`` (None: in memory only)."""

    CODEC: type[S]

    def __init__(self, state_path: Path | None) -> None:
        self.state_path = state_path
        self._saved: S | None = None
        self._batch = 0

    def _open(self) -> None:
        """Read the state file (the subclass has set its empty state); create it if missing."""
        if self.state_path is None:
            return
        state = load_device(self.state_path, self.CODEC)
        if state is None:
            self.save()
        else:
            self._restore(state)
            self._saved = state

    @abc.abstractmethod
    def snapshot(self) -> S:
        """The state as the file holds it (a copy: later moves do not change it)."""

    @abc.abstractmethod
    def _restore(self, state: S) -> None: ...

    def save(self) -> None:
        """Write the state file now if the state differs from what it holds."""
        if self.state_path is None:
            return
        state = self.snapshot()
        if state != self._saved:
            save_device(self.state_path, state)
            self._saved = state

    @contextmanager
    def change(self) -> Iterator[None]:
        """Several moves, one write at the end (also when the block raises)."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if not self._batch:
                self.save()

    def _changed(self) -> None:
        if not self._batch:
            self.save()


def _add(counts: dict[int, int], key: int, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


# -- cash dispenser --------------------------------------------------------------------------


@dataclass
class Cassette:
    """A cassette's load: ``low_threshold`` is where the dispenser reports near end."""

    denomination_cents: int
    count: int
    low_threshold: int = 20
    present: bool = True

    @property
    def state(self) -> CassetteState:
        if not self.present:
            return CassetteState.MISSING
        if self.count == 0:
            return CassetteState.EMPTY
        if self.count <= self.low_threshold:
            return CassetteState.LOW
        return CassetteState.OK


class DispenserNotes(PhysicalModel[DispenserState]):
    """Notes per cassette, in the exit tray and in the reject bin (per cassette of origin),
    taken by customers; ``retracted``: notes pulled back from the tray over the dispenser's
    life; ``counted``: what a dispense whose answer was lost counted out (None otherwise).

    Conserved: for each cassette, its notes plus ``accounted(index)`` stay what was loaded."""

    CODEC = DispenserState

    def __init__(self, cassettes: list[Cassette], state_path: Path | None = None) -> None:
        super().__init__(state_path)
        self.cassettes = cassettes
        self.tray: dict[int, int] = {}
        self.reject_bin: dict[int, int] = {}
        self.retracted = 0
        self.taken: dict[int, int] = {}
        self.counted: dict[int, int] | None = None
        self._open()

    def snapshot(self) -> DispenserState:
        return DispenserState(
            cassettes=tuple(
                CassetteLoad(c.denomination_cents, c.count, c.present) for c in self.cassettes
            ),
            tray=dict(self.tray),
            reject_bin=dict(self.reject_bin),
            retracted=self.retracted,
            taken=dict(self.taken),
            counted=None if self.counted is None else dict(self.counted),
        )

    def _restore(self, state: DispenserState) -> None:
        # The file says what is in each cassette; the configuration its near-end level.
        self.cassettes = [
            Cassette(
                c.denomination_cents,
                c.count,
                self.cassettes[i].low_threshold if i < len(self.cassettes) else 20,
                c.present,
            )
            for i, c in enumerate(state.cassettes)
        ]
        self.tray = dict(state.tray)
        self.reject_bin = dict(state.reject_bin)
        self.retracted = state.retracted
        self.taken = dict(state.taken)
        self.counted = None if state.counted is None else dict(state.counted)

    def pick(self, index: int, count: int, *, rejected: int = 0) -> None:
        """``count`` notes leave cassette ``index``: ``rejected`` of them (double notes) are
        diverted to the reject bin, the rest reach the exit tray."""
        if not 0 <= rejected <= count:
            raise ValueError(f"cannot reject {rejected} of {count} picked notes")
        self.cassettes[index].count -= count
        _add(self.tray, index, count - rejected)
        _add(self.reject_bin, index, rejected)
        self._changed()

    def take(self) -> dict[int, int]:
        """The customer takes the notes in the exit tray; what was taken, per cassette."""
        taken, self.tray = self.tray, {}
        for index, count in taken.items():
            _add(self.taken, index, count)
        self._changed()
        return taken

    def retract(self) -> dict[int, int]:
        """Pull the exit tray's notes into the reject bin; what moved, per cassette."""
        moved, self.tray = self.tray, {}
        for index, count in moved.items():
            _add(self.reject_bin, index, count)
        self.retracted += sum(moved.values())
        self._changed()
        return moved

    def in_tray(self) -> bool:
        return any(self.tray.values())

    def accounted(self, index: int) -> int:
        """Every note that left cassette ``index`` and is still somewhere (tray, reject bin,
        taken)."""
        return self.tray.get(index, 0) + self.reject_bin.get(index, 0) + self.taken.get(index, 0)


class HoldsDispenserNotes:
    """The names a dispenser's users read its notes by (``cassettes``, ``reject_bin``,
    ``retracted``, ``taken_total``), all on the one model ``notes``."""

    notes: DispenserNotes
    cassettes = ModelField[list[Cassette]]("notes", "cassettes")
    reject_bin = ModelField[dict[int, int]]("notes", "reject_bin")
    retracted = ModelField[int]("notes", "retracted")
    taken_total = ModelField[dict[int, int]]("notes", "taken")

    def notes_accounted(self, index: int) -> int:
        """Everything that came out of cassette ``index`` (tray, reject, taken)."""
        return self.notes.accounted(index)


# -- bill acceptor ---------------------------------------------------------------------------


class AcceptorNotes(PhysicalModel[BillAcceptorState]):
    """Where every note a customer inserted is (cents per note): held in ``escrow``, in the
    ``stacker`` (cents -> count), ``jammed`` in the transport, ``at_entrance`` (refused or
    returned, not yet taken), or ``taken_back`` by the customer. Each move takes a note from
    one of these places to another, so none is created or lost."""

    CODEC = BillAcceptorState

    def __init__(self, stacker_capacity: int = 500, state_path: Path | None = None) -> None:
        super().__init__(state_path)
        self.stacker_capacity = stacker_capacity
        self.escrow: list[int] = []
        self.stacker: dict[int, int] = {}
        self.jammed: list[int] = []
        self.at_entrance: list[int] = []
        self.taken_back: list[int] = []
        self._open()

    def snapshot(self) -> BillAcceptorState:
        return BillAcceptorState(
            tuple(self.escrow),
            dict(self.stacker),
            tuple(self.jammed),
            tuple(self.at_entrance),
            tuple(self.taken_back),
        )

    def _restore(self, state: BillAcceptorState) -> None:
        self.escrow, self.stacker = list(state.escrow), dict(state.stacker)
        self.jammed, self.at_entrance = list(state.jammed), list(state.at_entrance)
        self.taken_back = list(state.taken_back)

    # a note comes in
    def jam(self, cents: int) -> None:
        """An inserted note jams in the acceptor."""
        self.jammed.append(cents)
        self._changed()

    def refuse(self, cents: int) -> None:
        """An inserted note is pushed back out to the entrance."""
        self.at_entrance.append(cents)
        self._changed()

    def hold(self, cents: int) -> None:
        """An inserted note is recognised and held in escrow."""
        self.escrow.append(cents)
        self._changed()

    # the escrow empties
    def stack_next(self) -> int:
        """The first note in escrow goes into the stacker; its value."""
        cents = self.escrow.pop(0)
        _add(self.stacker, cents, 1)
        self._changed()
        return cents

    def jam_escrow(self) -> None:
        """A note jams on its way to the stacker; the notes behind it stay in the transport
        with it (suspect, like it)."""
        self.jammed += self.escrow
        self.escrow = []
        self._changed()

    def return_escrow(self) -> list[int]:
        """The escrowed notes go back to the entrance; the notes moved."""
        returned, self.escrow = self.escrow, []
        self.at_entrance += returned
        self._changed()
        return returned

    # people
    def take_returned(self) -> list[int]:
        """The customer takes the notes at the entrance."""
        taken, self.at_entrance = self.at_entrance, []
        self.taken_back += taken
        self._changed()
        return taken

    def clear_jam(self) -> list[int]:
        """An engineer opens the acceptor and removes the jammed notes."""
        notes, self.jammed = self.jammed, []
        self._changed()
        return notes

    def stacked_cents(self) -> int:
        return sum(c * n for c, n in self.stacker.items())

    def stacker_full(self) -> bool:
        return sum(self.stacker.values()) >= self.stacker_capacity

    def inserted(self) -> list[int]:
        """Every note ever inserted, wherever it is now (sorted)."""
        stacked = [c for c, n in self.stacker.items() for _ in range(n)]
        return sorted(self.escrow + stacked + self.jammed + self.at_entrance + self.taken_back)


class HoldsAcceptorNotes:
    """What a bill acceptor (in-process or on the wire) does with its notes, on the one model
    ``notes``: the names its users read, and the decision where an inserted note goes.
    ``ACCEPTED``: the notes the unit recognises; ``MAX_ESCROW``: notes the escrow holds."""

    ACCEPTED: frozenset[int]
    MAX_ESCROW: int
    notes: AcceptorNotes
    faults: set[str]
    inhibited: bool
    escrow = ModelField[list[int]]("notes", "escrow")
    stacker = ModelField[dict[int, int]]("notes", "stacker")
    jammed = ModelField[list[int]]("notes", "jammed")
    at_entrance = ModelField[list[int]]("notes", "at_entrance")
    taken_back = ModelField[list[int]]("notes", "taken_back")
    stacker_capacity = ModelField[int]("notes", "stacker_capacity")

    def stacked_cents(self) -> int:
        return self.notes.stacked_cents()

    def clear_jam(self) -> list[int]:
        """An engineer opens the acceptor and removes the jammed notes."""
        notes = self.notes.clear_jam()
        self.faults.discard("jam")
        self.faults.discard("stack_jam")
        return notes

    def _stacker_full(self) -> bool:
        return "stacker_full" in self.faults or self.notes.stacker_full()

    def _insert(self, cents: int) -> str:
        """The customer pushes a note in: ``jam`` (it jammed), ``escrow`` (held), or why it
        was pushed back to the entrance (``inhibited``, ``denomination``, ``operation``)."""
        if "jam" in self.faults:
            self.notes.jam(cents)
            return "jam"
        reason = ""
        if self.inhibited:
            reason = "inhibited"
        elif "reject" in self.faults or cents not in self.ACCEPTED:
            reason = "denomination"
        elif len(self.notes.escrow) >= self.MAX_ESCROW or self._stacker_full():
            reason = "operation"
        if reason:
            self.notes.refuse(cents)
            return reason
        self.notes.hold(cents)
        return "escrow"


# -- receipt printer -------------------------------------------------------------------------


class PaperRoll(PhysicalModel[PrinterState]):
    """The paper left on a receipt printer's roll, in dots fed (None: it never runs out),
    and the receipts cut from it. Feeding paper is not written down by itself: the roll is
    written when a receipt is cut (``cut``) or on ``save``. ``layout``: the file layout the
    holder writes (``drivers.statefile.PrinterState``)."""

    CODEC = PrinterState

    def __init__(
        self, dots: int | None, state_path: Path | None = None, *, layout: str = "dots"
    ) -> None:
        super().__init__(state_path)
        self.dots = dots
        self.printed = 0
        self.layout = layout
        self._open()

    def snapshot(self) -> PrinterState:
        return PrinterState(self.dots, self.printed, self.layout)

    def _restore(self, state: PrinterState) -> None:
        self.dots, self.printed = state.paper_dots, state.printed

    def feed(self, dots: int) -> None:
        """``dots`` of paper leave the printer (down to none left)."""
        if self.dots is not None:
            self.dots = max(0, self.dots - dots)

    def cut(self) -> None:
        """A receipt is cut off the roll: counted, and the roll written."""
        self.printed += 1
        self._changed()

    def lines_left(self) -> int | None:
        """Paper left, in default-spaced lines (None: it never runs out)."""
        return None if self.dots is None else self.dots // LINE_DOTS

    def at_most(self, dots: int) -> bool:
        """Is there ``dots`` of paper left or less?"""
        return self.dots is not None and self.dots <= dots


# -- card reader and envelope depository ----------------------------------------------------


class CardSlot(PhysicalModel[CardReaderState]):
    """Where the card is (``none``, ``inside``, ``gate``), known by its masked number only,
    and the masked numbers of the cards in the capture bin."""

    CODEC = CardReaderState

    def __init__(self, state_path: Path | None = None) -> None:
        super().__init__(state_path)
        self.position = "none"
        self.card = ""
        self.captured: list[str] = []
        self._open()

    def snapshot(self) -> CardReaderState:
        card = "" if self.position == "none" else self.card
        return CardReaderState(self.position, card, tuple(self.captured))

    def _restore(self, state: CardReaderState) -> None:
        self.position, self.card = state.position, state.card
        self.captured = list(state.captured)

    def move(self, position: str, card: str | None = None) -> None:
        """The card goes to ``position`` (``none``: it left the reader); ``card``: the masked
        number of a card drawn in."""
        self.position = position
        if card is not None:
            self.card = card
        if position == "none":
            self.card = ""
        self._changed()

    def capture(self, record: str) -> None:
        """The card goes into the capture bin, recorded as ``record``."""
        self.captured.append(record)
        self.move("none")


class EnvelopeBin(PhysicalModel[DepositoryState]):
    """The envelopes in a depository's bin, by the imprint printed on each."""

    CODEC = DepositoryState

    def __init__(self, state_path: Path | None = None) -> None:
        super().__init__(state_path)
        self.envelopes: list[str] = []
        self._open()

    def snapshot(self) -> DepositoryState:
        return DepositoryState(tuple(self.envelopes))

    def _restore(self, state: DepositoryState) -> None:
        self.envelopes = list(state.envelopes)

    def drop(self, imprint: str) -> None:
        self.envelopes.append(imprint)
        self._changed()
