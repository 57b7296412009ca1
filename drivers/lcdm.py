"""Cash dispenser driver for a Puloon LCDM-2000 (two cassettes: index 0 upper, 1 lower).

The LCDM reports sensors and per-dispense counts, not how many notes a cassette holds, so the
driver keeps logical counters (loaded at replenishment, lowered by the notes each dispense
picked), as ATMs do. With ``counts_path`` they persist (``drivers.statefile``: atomic, fsync'd)
after every dispense reply and every reconciliation, so a restart starts from the notes the
cassettes hold, not from the configured load. Reconciled with the device where the protocol
allows: a cassette whose bill-end sensor is set holds no note, whatever the count said.
Because the counts move only when a reply arrives, they cannot tell what left during a
dispense whose reply never came (``counts_physical`` is False): recovery then makes the
withdrawal a suspect for the operator. Presented notes are "taken" when the exit sensor
clears; ``retract`` uses the purge command, which in our variant sweeps the exit tray into the
reject tray.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from drivers.codecs import lcdm
from drivers.codecs.lcdm import (
    Command,
    DispenseReply,
    ErrorCode,
    LcdmFrame,
    PurgeReply,
    StatusReply,
)
from drivers.errors import DeviceProtocolError, DispenserFault
from drivers.framed import FaultTable, FramedDevice, fault_of
from drivers.interfaces import CashDispenser, CassetteState, CassetteStatus, DispenseResult
from drivers.statefile import StateFileError, load_state, save_state
from drivers.transport import Channel

__all__ = ["FAULT_CODES", "LcdmDispenser"]

log = logging.getLogger(__name__)

# LCDM error byte -> (our fault code, words)
FAULT_CODES: dict[int, tuple[str, str]] = {
    ErrorCode.PICKUP_ERROR: ("pickup", "pickup error"),
    ErrorCode.JAM_CHK: ("jam", "jam at CHK1/CHK2 sensor"),
    ErrorCode.OVERFLOW: ("too_many", "overflow bill"),
    ErrorCode.JAM_EXIT: ("jam", "jam at EXIT/EJT sensor"),
    ErrorCode.JAM_DIV: ("jam", "jam at DIV sensor"),
    ErrorCode.UNDEFINED_COMMAND: ("undefined_command", "undefined command"),
    ErrorCode.UPPER_BILL_END: ("empty", "upper cassette empty (bill end)"),
    ErrorCode.LOWER_BILL_END: ("empty", "lower cassette empty (bill end)"),
    ErrorCode.REJECT_TRAY_MISSING: ("reject_missing", "reject tray not recognised"),
    ErrorCode.OVER_REJECT: ("reject_full", "over reject"),
    ErrorCode.UPPER_CASSETTE_MISSING: ("cassette_missing", "upper cassette not recognised"),
    ErrorCode.LOWER_CASSETTE_MISSING: ("cassette_missing", "lower cassette not recognised"),
    ErrorCode.DISPENSE_TIMEOUT: ("timeout", "dispensing timeout"),
    ErrorCode.PURGE_ERROR: ("purge", "purge error"),
}

# Which cassettes each dispense command picks from.
_CASSETTES_OF: dict[int, tuple[int, ...]] = {
    Command.UPPER_DISPENSE: (0,),
    Command.LOWER_DISPENSE: (1,),
    Command.UPPER_LOWER_DISPENSE: (0, 1),
}


class Picked(NamedTuple):
    """What one dispense command did: the reply (for the words of a complaint), its error
    byte, and per cassette (index, notes picked, notes that reached the exit, notes
    diverted to the reject tray)."""

    reply: object
    error: int
    picks: list[tuple[int, int, int, int]]


class LcdmDispenser(FramedDevice[LcdmFrame], CashDispenser):
    DEVICE = "dispenser"
    PROTOCOL = "LCDM-2000"
    FRAME = LcdmFrame
    MAX_CASSETTES = 2
    FAULTS: FaultTable = FAULT_CODES
    GOOD: frozenset[int] = frozenset({ErrorCode.GOOD, ErrorCode.NORMAL_STOP})
    PURGE: int = Command.PURGE

    def __init__(
        self,
        connect: Callable[[], Awaitable[Channel]],
        cassettes: Sequence[tuple[int, int]],
        *,
        low_threshold: int = 20,
        ack_timeout: float = 0.5,
        reply_timeout: float = 3.0,
        dispense_timeout: float = 60.0,
        poll_interval: float = 0.1,
        retries: int = 2,
        counts_path: Path | None = None,
    ) -> None:
        """``cassettes``: (denomination in cents, loaded count), from the top position down;
        the counts saved at ``counts_path`` (when there, for the same denominations) win over
        the loaded counts."""
        if not 1 <= len(cassettes) <= self.MAX_CASSETTES:
            raise ValueError(f"an {self.PROTOCOL} has 1 to {self.MAX_CASSETTES} cassettes")
        super().__init__(
            connect,
            ack_timeout=ack_timeout,
            reply_timeout=reply_timeout,
            retries=retries,
            poll_interval=poll_interval,
        )
        self.denominations = [d for d, _ in cassettes]
        self.loaded = [n for _, n in cassettes]
        self.counts = list(self.loaded)
        self.counts_path = counts_path
        self.low_threshold = low_threshold
        self._load_counts()
        self._dispense_timeout = dispense_timeout

    def _load_counts(self) -> None:
        if self.counts_path is None:
            return
        state = load_state(self.counts_path)
        if state is None:
            self._save_counts()
            return
        try:
            denominations = [int(d) for d in state["denominations"]]
            counts = [int(n) for n in state["counts"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(f"dispenser counts file {self.counts_path} is damaged") from exc
        if denominations != self.denominations or len(counts) != len(self.counts):
            # Other cassettes than configured: the configured load is the new truth.
            log.warning("dispenser counts in %s are for other cassettes; ignored", self.counts_path)
            self._save_counts()
            return
        self.counts = counts

    def _save_counts(self) -> None:
        if self.counts_path is not None:
            save_state(
                self.counts_path,
                {
                    "device": self.PROTOCOL,
                    "denominations": self.denominations,
                    "counts": self.counts,
                },
            )

    async def replenish(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts = [
            (counts or {}).get(i, self.loaded[i]) for i in range(len(self.denominations))
        ]
        self._save_counts()

    def _new_decoder(self) -> lcdm.LcdmDecoder:
        return lcdm.LcdmDecoder(lcdm.SOH)

    async def _initialise(self) -> None:
        await self._status()  # proves the device speaks LCDM-2000

    async def _command(
        self, cmd: int, data: bytes = b"", *, timeout: float | None = None, resend: bool = True
    ) -> bytes:
        frame = await self.link.exchange(
            self._encode_command(cmd, data),
            reply_timeout=timeout or self._reply_timeout,
            is_reply=lambda f: f.reply and f.cmd == cmd,
            resend_on_timeout=resend,
        )
        return frame.data

    def _encode_command(self, cmd: int, data: bytes) -> bytes:
        return lcdm.encode_command(cmd, data)

    async def _status(self) -> StatusReply:
        data = await self._command(Command.STATUS)
        return self._decoded("bad status reply", StatusReply.decode, data)

    async def status(self) -> list[CassetteStatus]:
        reply = await self._status()
        bits = reply.cassettes
        present = (bits & lcdm.UPPER_PRESENT, bits & lcdm.LOWER_PRESENT)
        near_end = (bits & lcdm.UPPER_NEAR_END, bits & lcdm.LOWER_NEAR_END)
        end = (bits & lcdm.UPPER_END, bits & lcdm.LOWER_END)
        return [
            self._cassette(i, bool(present[i]), bool(near_end[i]), bool(end[i]))
            for i in range(len(self.denominations))
        ]

    def _cassette(self, index: int, present: bool, near_end: bool, end: bool) -> CassetteStatus:
        """A cassette's status from the sensors and the logical count. The count is
        reconciled with the bill-end sensor: a cassette that sees its end holds no note."""
        if present and end and self.counts[index]:
            log.warning(
                "dispenser: cassette %d reports bill end; count %d corrected to 0",
                index,
                self.counts[index],
            )
            self.counts[index] = 0
            self._save_counts()
        count = self.counts[index]
        if not present:
            state = CassetteState.MISSING
        elif end or count == 0:
            state = CassetteState.EMPTY
        elif near_end or count <= self.low_threshold:
            state = CassetteState.LOW
        else:
            state = CassetteState.OK
        return CassetteStatus(index, self.denominations[index], count, state)

    async def dispense(self, notes: Mapping[int, int]) -> DispenseResult:
        """As many dispense commands as the notes need (each carries at most what one
        command may); the counts move by what each reply says was picked."""
        for index, count in notes.items():
            if not 0 <= index < len(self.denominations) or count < 0:
                raise ValueError(f"bad dispense request {dict(notes)}")
        remaining = [notes.get(i, 0) for i in range(len(self.denominations))]
        dispensed = {i: 0 for i, n in enumerate(remaining) if n}
        rejected: dict[int, int] = {}
        while any(remaining):
            cmd, data = self._dispense_command(remaining)
            # Never resent on silence: the notes may already be out.
            raw = await self._command(cmd, data, timeout=self._dispense_timeout, resend=False)
            reply, error, picks = self._decoded("bad dispense reply", self._picked, cmd, raw)
            for index, picked, exit_, reject in picks:
                if index >= len(self.denominations):
                    continue
                self.counts[index] = max(0, self.counts[index] - picked)
                if exit_:
                    dispensed[index] = dispensed.get(index, 0) + exit_
                if reject:
                    rejected[index] = rejected.get(index, 0) + reject
                remaining[index] -= exit_
            self._save_counts()
            if error not in self.GOOD:
                code, words = fault_of(self.FAULTS, error)
                log.warning("dispenser fault %s after %s", words, dispensed)
                out = {i: n for i, n in dispensed.items() if n}
                raise DispenserFault(f"dispenser: {words}", code=code, dispensed=out)
            if any(r < 0 for r in remaining) or sum(p[2] for p in picks) == 0:
                raise DeviceProtocolError(f"dispenser: implausible dispense reply {reply}")
        return DispenseResult(dispensed, rejected)

    def _dispense_command(self, remaining: list[int]) -> tuple[int, bytes]:
        """The next dispense command for ``remaining`` notes per cassette."""
        batch = [min(n, lcdm.MAX_NOTES_PER_COMMAND) for n in remaining]
        if len(batch) == 2 and all(batch):
            data = lcdm.encode_count(batch[0]) + lcdm.encode_count(batch[1])
            return Command.UPPER_LOWER_DISPENSE, data
        if batch[0]:
            return Command.UPPER_DISPENSE, lcdm.encode_count(batch[0])
        return Command.LOWER_DISPENSE, lcdm.encode_count(batch[1])

    def _picked(self, cmd: int, raw: bytes) -> Picked:
        """What the reply ``raw`` to dispense command ``cmd`` says each cassette did."""
        reply = DispenseReply.decode(cmd, raw)
        picks = [
            (index, c.check, c.exit, c.reject)
            for index, c in zip(_CASSETTES_OF[cmd], reply.cassettes, strict=True)
        ]
        return Picked(reply, reply.error, picks)

    async def notes_in_tray(self) -> bool:
        return await self._notes_in_tray()

    async def wait_taken(self, timeout: float) -> bool:
        return await self._poll_until(self._tray_empty, timeout)

    async def _tray_empty(self) -> bool:
        return not await self._notes_in_tray()

    async def _notes_in_tray(self) -> bool:
        return (await self._status()).notes_in_tray

    async def retract(self) -> int:
        data = await self._command(self.PURGE, timeout=self._dispense_timeout, resend=False)
        error, purged = self._decoded("bad purge reply", self._purged, data)
        if error not in self.GOOD:
            code, words = fault_of(self.FAULTS, error)
            raise DispenserFault(f"dispenser: retract failed: {words}", code=code)
        return purged

    def _purged(self, data: bytes) -> tuple[int, int]:
        """A purge reply: its error byte and the notes swept into the reject tray."""
        reply = PurgeReply.decode(data)
        return reply.error, reply.purged
