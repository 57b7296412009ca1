"""One async interface per device class. The controller knows devices only through these.

Backends (simulated in-process, serial, USB) implement them; the same contract tests run
against each. Timeouts are enforced inside the driver calls (STYLE: "timeouts at driver
boundaries"), raising ``DeviceTimeout``.

Keys on the PIN pad / keyboard are strings: ``"0"``..``"9"``, ``"ENTER"``, ``"CANCEL"``,
``"CLEAR"``, and the screen's function descriptor keys ``"F1"``..``"F8"``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from drivers.errors import PinPadFault
from protocol.masking import mask_pan

__all__ = [
    "DIGIT_KEYS",
    "FUNCTION_KEYS",
    "AcceptorState",
    "AcceptorStatus",
    "BillAcceptor",
    "CardData",
    "CardReader",
    "CashDispenser",
    "CassetteState",
    "CassetteStatus",
    "DispenseResult",
    "EnvelopeDepository",
    "NoteEscrowed",
    "NoteRejected",
    "PaperState",
    "PinBlock",
    "PinPad",
    "PrinterStatus",
    "ReceiptPrinter",
]

DIGIT_KEYS = frozenset("0123456789")
FUNCTION_KEYS = frozenset(f"F{i}" for i in range(1, 9))


@dataclass(frozen=True)
class CardData:
    """What the reader read from track 2: ``PAN=YYMM SSS discretionary``."""

    track2: str

    def __post_init__(self) -> None:
        pan, sep, rest = self.track2.replace("D", "=").partition("=")
        if not sep or not pan.isdigit() or not 12 <= len(pan) <= 19 or len(rest) < 7:
            raise ValueError("track 2 must be PAN=YYMM + service code + discretionary data")

    @property
    def pan(self) -> str:
        return self.track2.replace("D", "=").partition("=")[0]

    @property
    def expiry(self) -> str:
        """YYMM."""
        return self.track2.replace("D", "=").partition("=")[2][:4]

    @property
    def service_code(self) -> str:
        return self.track2.replace("D", "=").partition("=")[2][4:7]

    def __repr__(self) -> str:
        return f"CardData(pan={mask_pan(self.pan)})"

    __str__ = __repr__


@dataclass(frozen=True)
class PinBlock:
    """An encrypted PIN block as produced by the PIN pad. Never the PIN itself."""

    ciphertext: bytes
    format: int = 0

    def __repr__(self) -> str:
        return f"PinBlock(format={self.format}, {len(self.ciphertext)} bytes)"

    __str__ = __repr__


class CardReader(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def accept_card(self) -> None:
        """Enable entry and wait (without limit) until a card is inside the reader."""

    @abc.abstractmethod
    async def read_card(self) -> CardData:
        """Read track 2 of the card inside.

        Raises ``CardReaderFault`` for an unreadable card (the card is then still inside and
        must be ejected) or a jam.
        """

    @abc.abstractmethod
    async def eject(self, timeout: float) -> bool:
        """Move the card to the gate and wait for the customer to take it.

        True when taken; False when not taken within ``timeout`` (the caller then captures).
        """

    @abc.abstractmethod
    async def capture(self) -> None:
        """Pull the card into the capture bin."""

    async def card_inside(self) -> bool:
        """Whether a card is inside the reader now (after a restart: one a crashed session
        left behind). The default, for a reader that cannot tell: False."""
        return False


class PinPad(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def load_working_key(self, encrypted_key: bytes, check_value: str) -> None:
        """Load a PIN working key (TPK) delivered encrypted under the terminal master key
        that the pad holds. The pad decrypts it inside and verifies the key check value;
        ``PinPadFault`` (code ``"kcv"``) when it does not match. The key never leaves the pad."""

    @abc.abstractmethod
    async def read_key(self, timeout: float) -> str:
        """One key in clear mode (menus, amounts). ``DeviceTimeout`` when none is pressed."""

    @abc.abstractmethod
    async def read_pin(
        self,
        pan: str,
        timeout: float,
        *,
        min_length: int = 4,
        max_length: int = 6,
        on_key: Callable[[int], None] | None = None,
    ) -> PinBlock:
        """Secure PIN entry ending with ENTER; returns the encrypted PIN block.

        ``on_key`` receives the number of digits entered so far (for the ``*`` echo), never the
        digits. ``CancelledByCustomer`` on CANCEL; ``DeviceTimeout`` after ``timeout`` idle.
        """

    async def same_pin(self, first: PinBlock, second: PinBlock, pan: str) -> bool:
        """Whether two PIN blocks from this pad (new PIN and its confirmation) hold the same
        PIN. Format 0 blocks of one PIN, PAN and key are equal, so comparing ciphertext is
        enough (this default); format 4 blocks carry random fill, so a pad making them
        compares inside, where the key is."""
        if first.format != 0 or second.format != 0:
            raise PinPadFault(
                f"{type(self).__name__} cannot compare format {first.format} PIN blocks",
                code="format",
            )
        return first.ciphertext == second.ciphertext


class CassetteState(enum.StrEnum):
    OK = "ok"
    LOW = "low"
    EMPTY = "empty"
    MISSING = "missing"
    INOPERATIVE = "inoperative"


@dataclass(frozen=True)
class CassetteStatus:
    index: int
    denomination_cents: int
    count: int
    state: CassetteState


@dataclass(frozen=True)
class DispenseResult:
    """Notes counted out and presented, per cassette index, and notes diverted to reject."""

    dispensed: Mapping[int, int]
    rejected: Mapping[int, int] = field(default_factory=dict)


class CashDispenser(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def status(self) -> list[CassetteStatus]: ...

    @abc.abstractmethod
    async def dispense(self, notes: Mapping[int, int]) -> DispenseResult:
        """Count out ``notes`` (cassette index -> count) and present them.

        On a fault raises ``DispenserFault`` whose ``dispensed`` tells what did leave.
        """

    @abc.abstractmethod
    async def wait_taken(self, timeout: float) -> bool:
        """True when the customer took the presented notes within ``timeout``."""

    @abc.abstractmethod
    async def retract(self) -> int:
        """Pull presented notes back into the reject/retract bin; returns how many."""

    # Whether ``status()`` counts are the notes physically in the cassettes (the device counts
    # them, or knows them for certain across a crash). False for a dispenser whose counts are
    # the driver's bookkeeping, lowered only when a dispense reply arrives (LCDM-2000): after a
    # crash mid-dispense those counts cannot say what left.
    counts_physical: bool = False

    async def notes_in_tray(self) -> bool:
        """Whether notes lie in the exit tray now (presented and not taken). The default,
        for a dispenser without a tray sensor: False."""
        return False

    async def retracted_count(self) -> int | None:
        """How many notes this dispenser has retracted (or purged) into its bin over its
        life, by its own count; None when it keeps no such count."""
        return None

    async def replenish(self, counts: Mapping[int, int] | None = None) -> None:
        """The operator loaded cassettes: for a driver that keeps counts itself, the notes
        per cassette now (None: as configured). A dispenser that counts physically ignores
        it (the default)."""
        return None

    async def counted_out(self) -> Mapping[int, int] | None:
        """After a ``dispense`` whose outcome is unknown (it raised ``DeviceTimeout`` or a
        protocol error): the notes (per cassette index) that left the cassettes during it,
        when the device can tell; None when it cannot (then nobody knows, and the controller
        must not guess). The default: cannot tell."""
        return None


class PaperState(enum.StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


@dataclass(frozen=True)
class PrinterStatus:
    paper: PaperState
    cover_open: bool = False

    @property
    def can_print(self) -> bool:
        return self.paper is not PaperState.OUT and not self.cover_open


class ReceiptPrinter(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def status(self) -> PrinterStatus: ...

    @abc.abstractmethod
    async def print_receipt(self, lines: list[str], *, qr: str = "") -> None:
        """Print the lines, then ``qr`` (when given) as a QR code, and cut. ``PrinterFault``
        when it cannot."""


class AcceptorState(enum.StrEnum):
    IDLE = "idle"  # accepting or inhibited, nothing in escrow
    ESCROW = "escrow"  # notes held, waiting for stack or return
    RETURNED = "returned"  # notes at the entrance, not yet taken
    BUSY = "busy"  # a note is moving
    STACKER_FULL = "stacker_full"
    CASSETTE_REMOVED = "cassette_removed"
    JAM = "jam"
    FAILURE = "failure"


@dataclass(frozen=True)
class AcceptorStatus:
    state: AcceptorState
    escrow: tuple[int, ...] = ()  # denominations (cents) of the notes held in escrow

    @property
    def escrow_cents(self) -> int:
        return sum(self.escrow)


@dataclass(frozen=True)
class NoteEscrowed:
    """A note was recognised and is now held in escrow with the others."""

    denomination_cents: int


@dataclass(frozen=True)
class NoteRejected:
    """A note was not recognised (or not wanted) and was given straight back."""

    reason: str


class BillAcceptor(abc.ABC):
    """A note acceptor with an escrow: notes are recognised one by one and held until the
    controller stacks them (they become the bank's) or returns them (the customer's again).

    Device conditions raise ``BillAcceptorFault`` with code ``jam``, ``stacker_full``,
    ``cassette_removed`` or ``failure``; a fault while stacking carries ``stacked``, the
    notes (cents -> count) that did reach the stacker before it."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def status(self) -> AcceptorStatus: ...

    @abc.abstractmethod
    async def enable(self) -> None:
        """Start accepting notes (a note inserted before is given back as ``inhibited``).
        Acceptance ends with ``stack``, ``return_notes`` or a ``wait_note`` timeout."""

    @abc.abstractmethod
    async def wait_note(self, timeout: float) -> NoteEscrowed | NoteRejected:
        """Accept notes (enabling first if needed) and wait for the next one.
        ``DeviceTimeout`` when none comes within ``timeout`` (acceptance then ends)."""

    @abc.abstractmethod
    async def stack(self) -> dict[int, int]:
        """Move every note in escrow to the stacker; returns cents -> count stacked."""

    @abc.abstractmethod
    async def return_notes(self) -> dict[int, int]:
        """Give every note in escrow back through the entrance; returns cents -> count."""

    @abc.abstractmethod
    async def wait_returned_taken(self, timeout: float) -> bool:
        """True when the customer took the returned notes within ``timeout``."""


class EnvelopeDepository(abc.ABC):
    """The envelope slot for check deposits: opens its shutter, takes one envelope in and
    prints the transaction's reference on it. It cannot read what is inside: the amount is
    what the customer keyed, checked later by the bank."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def take_envelope(self, imprint: str, timeout: float) -> bool:
        """Open the shutter and wait for an envelope; True when one was taken in (and
        ``imprint`` printed on it), False when none came within ``timeout``.
        ``DepositoryFault`` when the depository cannot work (full, jammed)."""
