"""In-process simulated backends: the first-class virtual devices used by the demo and tests.

Each has a *device side* (the driver interface the controller uses) and a *customer side*
(``insert``, ``press``, ``take_cash``, ``take_card``) used by scripts, the console and tests.
Faults are named flags (``inject("jam")``) so scenarios can describe them as data; each
device's ``FAULTS`` lists what it understands.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from drivers.codecs.escpos import LINE_DOTS
from drivers.deadline import listen
from drivers.errors import (
    BillAcceptorFault,
    CancelledByCustomer,
    CardReaderFault,
    DepositoryFault,
    DeviceTimeout,
    DispenserFault,
    PinPadFault,
    PrinterFault,
)
from drivers.interfaces import (
    DIGIT_KEYS,
    AcceptorState,
    AcceptorStatus,
    BillAcceptor,
    CardData,
    CardReader,
    CashDispenser,
    CassetteState,
    CassetteStatus,
    DispenseResult,
    EnvelopeDepository,
    NoteEscrowed,
    NoteRejected,
    PaperState,
    PinBlock,
    PinPad,
    PrinterStatus,
    ReceiptPrinter,
)
from drivers.physical import (
    AcceptorNotes,
    CardSlot,
    Cassette,
    DispenserNotes,
    EnvelopeBin,
    HoldsAcceptorNotes,
    HoldsDispenserNotes,
    ModelField,
    PaperRoll,
)
from protocol.errors import KeyMaterialError, PinBlockError
from protocol.masking import mask_pan
from protocol.pinblock import decrypt_format4, encrypt_format0, encrypt_format4
from protocol.security import KeyScheme, unwrap_working_key

__all__ = [
    "ACCEPTED_NOTES",
    "Cassette",
    "SimulatedBillAcceptor",
    "SimulatedCardReader",
    "SimulatedDepository",
    "SimulatedDispenser",
    "SimulatedPinPad",
    "SimulatedPrinter",
]


class _Faults:
    FAULTS: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.faults: set[str] = set()

    def inject(self, fault: str) -> None:
        if fault not in self.FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(self.FAULTS))}")
        self.faults.add(fault)

    def clear(self, fault: str | None = None) -> None:
        if fault is None:
            self.faults.clear()
        else:
            self.faults.discard(fault)

    def _answer(self) -> None:
        """A device with the ``silent`` fault answers nothing: the call times out."""
        if "silent" in self.faults:
            raise DeviceTimeout(f"{type(self).__name__}: the device does not answer (silent)")


class SimulatedCardReader(_Faults, CardReader):
    """With ``state_path`` the reader's physical state (a card inside or at the gate, by
    masked PAN; cards in the capture bin) is kept in that file across an ATM crash
    (``drivers.statefile``), as a motorised reader keeps a card it holds."""

    FAULTS = frozenset({"unreadable", "card_jam", "capture_bin_full", "silent"})

    def __init__(self, capture_bin_capacity: int = 50, *, state_path: Path | None = None) -> None:
        super().__init__()
        self._inserted: asyncio.Queue[str] = asyncio.Queue()
        self._taken = asyncio.Event()
        self._track2 = ""
        self.capture_bin_capacity = capture_bin_capacity
        self.state_path = state_path
        self.slot = CardSlot(state_path)

    position = ModelField[str]("slot", "position")  # none | inside | gate
    # The masked PAN of the card in the reader (the state file keeps only this).
    card = ModelField[str]("slot", "card")
    captured = ModelField[list[str]]("slot", "captured")

    def _moved(self, position: str, card: str | None = None) -> None:
        if position == "none":
            self._track2 = ""
        self.slot.move(position, card)

    # customer side
    def insert(self, track2: str) -> None:
        self._inserted.put_nowait(track2)

    def take_card(self) -> None:
        if self.position == "gate":
            self._moved("none")
        self._taken.set()

    # device side
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def card_inside(self) -> bool:
        self._answer()
        return self.position in ("inside", "gate")

    async def accept_card(self) -> None:
        self._answer()
        self._track2 = await self._inserted.get()
        self._taken.clear()
        self._moved("inside", mask_pan(self._track2.replace("D", "=").partition("=")[0]))

    async def read_card(self) -> CardData:
        self._answer()
        track2 = self._track2
        if "card_jam" in self.faults:
            raise CardReaderFault("card jammed in the reader", code="jam")
        if "unreadable" in self.faults:
            raise CardReaderFault("no readable data on track 2", code="read_error")
        try:
            return CardData(track2)
        except ValueError as exc:
            raise CardReaderFault(f"track 2 unreadable: {exc}", code="read_error") from exc

    async def eject(self, timeout: float) -> bool:
        self._answer()
        if "card_jam" in self.faults:
            raise CardReaderFault("card jammed, cannot eject", code="jam")
        self._moved("gate")
        try:
            await listen(timeout, self._taken.wait)
        except TimeoutError:
            return False
        self._taken.clear()
        if self.position != "none":
            self._moved("none")
        return True

    async def capture(self) -> None:
        self._answer()
        if "capture_bin_full" in self.faults or len(self.captured) >= self.capture_bin_capacity:
            raise CardReaderFault("capture bin full", code="bin_full")
        self._track2 = ""
        self.slot.capture("card")


class SimulatedPinPad(_Faults, PinPad):
    """Holds the terminal PIN key; the controller only ever receives the encrypted block.

    ``scheme`` is the type of the master key loaded into the pad (as an EPP stores a key's
    algorithm with it): ``T`` (TDES) unwraps working keys with TDES-ECB and makes ISO 9564
    format 0 blocks; ``A`` (AES) unwraps with AES key wrap (RFC 3394), checks the AES-CMAC
    check value, and makes format 4 blocks (docs/protocol.md 7.1, 7.4)."""

    FAULTS = frozenset({"key_timeout", "silent"})

    def __init__(self, master_key: bytes, scheme: KeyScheme = KeyScheme.TDES) -> None:
        super().__init__()
        self._master_key = master_key
        self.scheme = KeyScheme(scheme)
        # No working PIN key until the host delivers one at sign-on (load_working_key): a PIN
        # entry before that fails with PinPadFault(code="no_key"), as the ZT588's E2 does.
        self._pin_key: bytes | None = None
        self._keys: asyncio.Queue[str] = asyncio.Queue()

    # customer side
    def press(self, *keys: str) -> None:
        for key in keys:
            self._keys.put_nowait(key)

    def type_digits(self, digits: str) -> None:
        self.press(*digits)

    # device side
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load_working_key(self, encrypted_key: bytes, check_value: str) -> None:
        self._answer()
        try:
            self._pin_key = unwrap_working_key(
                self.scheme, self._master_key, encrypted_key, check_value
            )
        except KeyMaterialError as exc:
            raise PinPadFault(str(exc), code=exc.reason or "unwrap") from exc

    def _working_key(self) -> bytes:
        if self._pin_key is None:
            raise PinPadFault("working PIN key not loaded (no sign-on yet)", code="no_key")
        return self._pin_key

    async def read_key(self, timeout: float) -> str:
        self._answer()
        if "key_timeout" in self.faults:
            raise DeviceTimeout("no key pressed (injected key timeout)")
        try:
            return await listen(timeout, self._keys.get)
        except TimeoutError as exc:
            raise DeviceTimeout(f"no key pressed within {timeout:g}s") from exc

    async def read_pin(
        self,
        pan: str,
        timeout: float,
        *,
        min_length: int = 4,
        max_length: int = 6,
        on_key: Callable[[int], None] | None = None,
    ) -> PinBlock:
        self._answer()
        pin_key = self._working_key()
        digits = ""
        while True:
            key = await self.read_key(timeout)
            if key == "CANCEL":
                raise CancelledByCustomer("PIN entry cancelled")
            if key == "CLEAR":
                digits = ""
            elif key == "ENTER":
                if len(digits) >= min_length:
                    if self.scheme is KeyScheme.AES:
                        return PinBlock(encrypt_format4(digits, pan, pin_key), 4)
                    return PinBlock(encrypt_format0(digits, pan, pin_key), 0)
                continue
            elif key in DIGIT_KEYS and len(digits) < max_length:
                digits += key
            else:
                continue
            if on_key:
                on_key(len(digits))

    async def same_pin(self, first: PinBlock, second: PinBlock, pan: str) -> bool:
        self._answer()
        if first.format != 4 or second.format != 4:
            return await super().same_pin(first, second, pan)
        try:  # inside the pad: the clear PINs never leave this method
            a = decrypt_format4(first.ciphertext, pan, self._working_key())
            b = decrypt_format4(second.ciphertext, pan, self._working_key())
        except PinBlockError as exc:
            raise PinPadFault(f"PIN block not from this pad: {exc}", code="format") from exc
        return secrets.compare_digest(a, b)


class SimulatedDispenser(_Faults, HoldsDispenserNotes, CashDispenser):
    """``hang``: the dispenser counts the notes out (into the exit slot) and then stops
    answering, so ``dispense`` raises ``DeviceTimeout`` after ``hang_timeout`` seconds; it
    answers again afterwards and ``counted_out`` tells what left. ``lost``: the same, but the
    dispenser then stays ``silent`` (until cleared), so nobody can tell what left.

    Physical state (notes per cassette, in the exit tray ``presented``, in the reject bin,
    taken by customers) is the model ``notes`` (``drivers.physical``, the pty simulator's
    too): with ``state_path`` it is written to that file after every change and before the
    call that made it returns, and read back when a dispenser is built on the same file, so
    a crash of the ATM process loses no note."""

    FAULTS = frozenset(
        {"jam", "partial", "cassette_empty", "cassette_missing", "silent", "hang", "lost"}
    )
    counts_physical = True

    def __init__(
        self,
        cassettes: list[Cassette],
        hang_timeout: float = 0.5,
        *,
        state_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.hang_timeout = hang_timeout
        self.state_path = state_path
        self.notes = DispenserNotes(cassettes, state_path)
        self._taken = asyncio.Event()

    presented = ModelField[dict[int, int]]("notes", "tray")  # the exit tray

    def notes_physically_out(self) -> dict[int, int]:
        """Notes that left each cassette and were taken by a customer (for balancing tests)."""
        return dict(self.notes.taken)

    # customer side
    def take_cash(self) -> None:
        self.notes.take()
        self._taken.set()

    # device side
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def status(self) -> list[CassetteStatus]:
        self._answer()
        out = []
        for i, c in enumerate(self.cassettes):
            state = c.state
            if "cassette_missing" in self.faults:
                state = CassetteState.MISSING
            elif "cassette_empty" in self.faults:
                state = CassetteState.EMPTY
            out.append(CassetteStatus(i, c.denomination_cents, c.count, state))
        return out

    async def notes_in_tray(self) -> bool:
        self._answer()
        return self.notes.in_tray()

    async def retracted_count(self) -> int | None:
        self._answer()
        return self.retracted

    async def counted_out(self) -> Mapping[int, int] | None:
        self._answer()
        counted = self.notes.counted
        return None if counted is None else dict(counted)

    async def dispense(self, notes: Mapping[int, int]) -> DispenseResult:
        self.notes.counted = None
        self._answer()
        self._taken.clear()
        for index, count in notes.items():
            if not 0 <= index < len(self.cassettes) or count < 0:
                raise ValueError(f"bad dispense request {dict(notes)}")
        if "cassette_missing" in self.faults:
            raise DispenserFault("cassette not recognised", code="cassette_missing")
        if "jam" in self.faults:
            raise DispenserFault("note jam before any note left", code="jam")
        dispensed: dict[int, int] = {}
        partial = "partial" in self.faults
        with self.notes.change():
            for index, count in sorted(notes.items()):
                cassette = self.cassettes[index]
                if "cassette_empty" in self.faults or cassette.count < count:
                    take = 0 if "cassette_empty" in self.faults else cassette.count
                    self.notes.pick(index, take)
                    dispensed[index] = take
                    raise DispenserFault("cassette empty", code="empty", dispensed=dispensed)
                take = count // 2 if partial else count
                self.notes.pick(index, take)
                dispensed[index] = take
                if partial:
                    raise DispenserFault(
                        "jam after partial dispense", code="jam", dispensed=dispensed
                    )
            self.notes.counted = dict(dispensed)
        if "hang" in self.faults or "lost" in self.faults:
            # The notes are out; the answer never comes (the behaviour under test is a timeout).
            await asyncio.sleep(self.hang_timeout)
            if "lost" in self.faults:
                self.faults.add("silent")
            raise DeviceTimeout(f"dispenser: no answer to dispense within {self.hang_timeout:g}s")
        return DispenseResult(dispensed)

    async def wait_taken(self, timeout: float) -> bool:
        self._answer()
        if not self.presented:
            return True
        try:
            await listen(timeout, self._taken.wait)
        except TimeoutError:
            return False
        return not self.presented

    async def retract(self) -> int:
        self._answer()
        return sum(self.notes.retract().values())


QR_LINES = 8


class SimulatedPrinter(_Faults, ReceiptPrinter):
    """``paper_lines``: lines left on the roll (None: never runs out); near end below
    ``near_end_lines``. With ``state_path`` the roll (lines left, receipts printed) is kept in
    that file across an ATM crash (the model ``roll``, ``drivers.physical``, the ESC/POS
    simulator's too)."""

    FAULTS = frozenset({"paper_out", "paper_near_end", "cover_open", "silent"})

    def __init__(
        self,
        paper_lines: int | None = None,
        near_end_lines: int = 300,
        *,
        state_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.receipts: list[list[str]] = []
        # The QR code printed under each receipt ("" for none), by receipt.
        self.qr_codes: list[str] = []
        self.near_end_lines = near_end_lines
        self.state_path = state_path
        dots = None if paper_lines is None else paper_lines * LINE_DOTS
        self.roll = PaperRoll(dots, state_path, layout="lines")

    @property
    def paper_left(self) -> int | None:
        """Lines left on the roll (None: it never runs out)."""
        return self.roll.lines_left()

    @property
    def printed(self) -> int:
        """Receipts cut over the roll's life."""
        return self.roll.printed

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def status(self) -> PrinterStatus:
        self._answer()
        paper = PaperState.OK
        if "paper_out" in self.faults or self.paper_left == 0:
            paper = PaperState.OUT
        elif "paper_near_end" in self.faults or (
            self.paper_left is not None and self.paper_left <= self.near_end_lines
        ):
            paper = PaperState.NEAR_END
        return PrinterStatus(paper, cover_open="cover_open" in self.faults)

    async def print_receipt(self, lines: list[str], *, qr: str = "") -> None:
        status = await self.status()
        if not status.can_print:
            raise PrinterFault(
                f"cannot print: paper {status.paper}, cover open {status.cover_open}"
            )
        self.receipts.append(list(lines))
        self.qr_codes.append(qr)
        # A QR code takes about as much paper as eight lines of text.
        self.roll.feed((len(lines) + (QR_LINES if qr else 0)) * LINE_DOTS)
        self.roll.cut()


# Notes the simulated acceptor recognises (US dollars, as the ID003 unit's table).
ACCEPTED_NOTES = frozenset({100, 200, 500, 1000, 2000, 5000, 10000})


class SimulatedBillAcceptor(_Faults, HoldsAcceptorNotes, BillAcceptor):
    """A bill acceptor with a bunch-note escrow and a stacker. Notes are conserved: each
    inserted note is in ``escrow``, ``stacker``, ``jammed``, ``at_entrance`` or
    ``taken_back`` (the model ``notes``, ``drivers.physical``, the ID003 simulator's too).
    ``reject``: notes are not recognised; ``jam``: the next note jams in the acceptor;
    ``stack_jam``: a note jams on its way to the stacker; ``stacker_full``;
    ``cassette_removed``; ``silent``."""

    FAULTS = frozenset({"reject", "jam", "stack_jam", "stacker_full", "cassette_removed", "silent"})
    ACCEPTED = ACCEPTED_NOTES
    MAX_ESCROW = 30

    def __init__(self, stacker_capacity: int = 500, *, state_path: Path | None = None) -> None:
        super().__init__()
        self.inhibited = True
        self.state_path = state_path
        self.notes = AcceptorNotes(stacker_capacity, state_path)
        self._events: asyncio.Queue[NoteEscrowed | NoteRejected | str] = asyncio.Queue()
        self._taken = asyncio.Event()

    # customer side
    def insert_note(self, cents: int) -> None:
        outcome = self._insert(cents)
        if outcome == "jam":
            self._events.put_nowait("jam")
        elif outcome == "escrow":
            self._events.put_nowait(NoteEscrowed(cents))
        else:
            self._taken.clear()
            self._events.put_nowait(NoteRejected(outcome))

    def take_returned(self) -> list[int]:
        taken = self.notes.take_returned()
        self._taken.set()
        return taken

    def _check(self) -> None:
        self._answer()
        if "cassette_removed" in self.faults:
            raise BillAcceptorFault("stacker cassette removed", code="cassette_removed")
        if self.jammed:
            raise BillAcceptorFault("note jam", code="jam")

    # device side
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def status(self) -> AcceptorStatus:
        self._answer()
        if "cassette_removed" in self.faults:
            state = AcceptorState.CASSETTE_REMOVED
        elif self.jammed:
            state = AcceptorState.JAM
        elif self.escrow:
            state = AcceptorState.ESCROW
        elif self.at_entrance:
            state = AcceptorState.RETURNED
        elif self._stacker_full():
            state = AcceptorState.STACKER_FULL
        else:
            state = AcceptorState.IDLE
        return AcceptorStatus(state, tuple(self.escrow))

    async def enable(self) -> None:
        self._answer()
        self.inhibited = False

    async def wait_note(self, timeout: float) -> NoteEscrowed | NoteRejected:
        self._check()
        if self._stacker_full() and not self.escrow:
            raise BillAcceptorFault("stacker full", code="stacker_full")
        self.inhibited = False
        try:
            event = await listen(timeout, self._events.get)
        except TimeoutError:
            self.inhibited = True
            raise DeviceTimeout(f"bill acceptor: no note within {timeout:g}s") from None
        if event == "jam":
            raise BillAcceptorFault("note jam in the acceptor", code="jam")
        assert not isinstance(event, str)
        return event

    async def stack(self) -> dict[int, int]:
        self._answer()
        self.inhibited = True
        stacked: dict[int, int] = {}
        with self.notes.change():
            while self.escrow:
                if self._stacker_full():
                    raise BillAcceptorFault("stacker full", code="stacker_full", stacked=stacked)
                if "stack_jam" in self.faults:
                    self.notes.jam_escrow()
                    raise BillAcceptorFault("note jam in the stacker", code="jam", stacked=stacked)
                cents = self.notes.stack_next()
                stacked[cents] = stacked.get(cents, 0) + 1
        return stacked

    async def return_notes(self) -> dict[int, int]:
        self._answer()
        self.inhibited = True
        returned = self.notes.return_escrow()
        if returned:
            self._taken.clear()
        return dict(Counter(returned))

    async def wait_returned_taken(self, timeout: float) -> bool:
        self._answer()
        if not self.at_entrance:
            return True
        try:
            await listen(timeout, self._taken.wait)
        except TimeoutError:
            return False
        return True


class SimulatedDepository(_Faults, EnvelopeDepository):
    """An envelope depository. ``no_envelope``: the customer's envelope is never detected
    (the shutter closes empty when the wait runs out); ``full``: the bin is full; ``silent``.
    ``envelopes`` holds the imprints of the envelopes in the bin."""

    FAULTS = frozenset({"no_envelope", "full", "silent"})

    def __init__(self, capacity: int = 300, *, state_path: Path | None = None) -> None:
        super().__init__()
        self.capacity = capacity
        self._offered = asyncio.Event()
        self.state_path = state_path
        self.bin = EnvelopeBin(state_path)

    envelopes = ModelField[list[str]]("bin", "envelopes")

    # customer side
    def insert_envelope(self) -> None:
        self._offered.set()

    # device side
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def take_envelope(self, imprint: str, timeout: float) -> bool:
        self._answer()
        if "full" in self.faults or len(self.envelopes) >= self.capacity:
            raise DepositoryFault("envelope bin full", code="full")
        if "no_envelope" in self.faults:
            self._offered.clear()
            return False
        try:
            await listen(timeout, self._offered.wait)
        except TimeoutError:
            return False
        self._offered.clear()
        self.bin.drop(imprint)
        return True
