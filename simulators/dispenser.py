"""A Puloon LCDM-2000 cash dispenser: two cassettes with denominations and counts, a reject
tray, an exit tray the customer takes notes from. Speaks the bytes of ``drivers.codecs.lcdm``.

Money is conserved: every note is in a cassette, the exit tray, the reject tray, or counted
as taken by the customer (``notes_accounted``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from drivers.codecs import lcdm
from drivers.codecs.events import ACK, NAK, Ack, BadFrame, Nak
from drivers.codecs.lcdm import (
    CassetteCounts,
    Command,
    DispenseReply,
    ErrorCode,
    LcdmDecoder,
    LcdmFrame,
    PurgeReply,
    StatusReply,
)
from drivers.physical import Cassette, DispenserNotes, HoldsDispenserNotes, ModelField
from simulators.base import Simulator

__all__ = ["DispenserSimulator", "SimCassette"]

log = logging.getLogger(__name__)

ROM_VERSION = b"LCDM-2000 SIM 1.0"
_DISPENSE_COMMANDS = (Command.UPPER_DISPENSE, Command.LOWER_DISPENSE, Command.UPPER_LOWER_DISPENSE)


# The pty simulator's cassettes are the in-process dispenser's (one model, ``drivers.physical``).
SimCassette = Cassette


@dataclass
class _Outcome:
    counts: list[CassetteCounts] = field(default_factory=list)
    error: int = ErrorCode.GOOD


class DispenserSimulator(HoldsDispenserNotes, Simulator):
    """The LCDM-2000. A model with another command set (``simulators.lcdm4000``) keeps the same
    notes, cassettes, trays and faults and overrides the hooks of the wire side."""

    NAME = "dispenser"
    MODEL = "LCDM-2000"
    MAX_CASSETTES = 2
    DISPENSE_COMMANDS: tuple[int, ...] = _DISPENSE_COMMANDS
    NO_REPLY: frozenset[int] = frozenset()  # commands the device carries out without a word
    # ``lost``: a dispense command is carried out (the notes reach the exit tray) but the
    # dispenser then dies: no ACK, no reply, silent until the fault is cleared.
    FAULTS = frozenset(
        {"jam", "partial", "cassette_empty", "cassette_missing", "reject", "reject_full", "lost"}
    )

    def __init__(
        self,
        cassettes: list[SimCassette],
        reject_capacity: int = 200,
        *,
        state_path: Path | None = None,
    ) -> None:
        """``state_path``: keep the notes (cassettes, exit tray, reject bin, taken) in this
        file across a restart, written before each reply goes out. The notes are the model
        ``notes`` (``drivers.physical``), the in-process dispenser's too."""
        super().__init__()
        if not 1 <= len(cassettes) <= self.MAX_CASSETTES:
            raise ValueError(f"an {self.MODEL} has 1 to {self.MAX_CASSETTES} cassettes")
        self.reject_capacity = reject_capacity
        self._decoder = self._new_decoder()
        self.state_path = state_path
        self.notes = DispenserNotes(cassettes, state_path)

    tray = ModelField[dict[int, int]]("notes", "tray")  # the exit tray

    # -- customer side ------------------------------------------------------------------
    def take_cash(self) -> None:
        self.notes.take()

    # -- wire side ----------------------------------------------------------------------
    def _new_decoder(self) -> LcdmDecoder:
        return LcdmDecoder(lcdm.EOT)

    def _encode_reply(self, cmd: int, data: bytes) -> bytes:
        return lcdm.encode_reply(cmd, data)

    def _host_acknowledged(self) -> None:
        """The host ACKed our reply (the LCDM-4000 then closes the exchange with EOT)."""

    def on_bytes(self, data: bytes) -> None:
        for event in self._decoder.feed(data):
            if isinstance(event, Nak):
                self.resend_last()
            elif isinstance(event, BadFrame):
                self.send_control(bytes([NAK]))
            elif isinstance(event, LcdmFrame) and not event.reply:
                if self.should_nak():
                    self.send_control(bytes([NAK]))
                    continue
                self.frames_in += 1
                if "lost" in self.faults and event.cmd in self.DISPENSE_COMMANDS:
                    self._handle(event.cmd, event.data)
                    self.wire.silent = True
                    log.info("dispenser: died during the dispense (lost)")
                    continue
                if event.cmd in self.NO_REPLY:
                    continue
                self.send_control(bytes([ACK]))
                self.send_frame(self._encode_reply(event.cmd, self._handle(event.cmd, event.data)))
            elif isinstance(event, Ack):
                self._host_acknowledged()

    def _handle(self, cmd: int, data: bytes) -> bytes:
        if cmd == Command.STATUS:
            return self.status_reply().encode()
        if cmd == Command.ROM_VERSION:
            return ROM_VERSION
        if cmd == Command.PURGE:
            purged = self.purge_tray()
            return PurgeReply(ErrorCode.GOOD, sum(purged.values())).encode()
        try:
            if cmd == Command.UPPER_DISPENSE:
                requests = {0: lcdm.decode_count(data)}
            elif cmd == Command.LOWER_DISPENSE and len(self.cassettes) == 2:
                requests = {1: lcdm.decode_count(data)}
            elif cmd == Command.UPPER_LOWER_DISPENSE and len(self.cassettes) == 2:
                requests = {0: lcdm.decode_count(data[:2]), 1: lcdm.decode_count(data[2:])}
            else:
                return bytes([ErrorCode.UNDEFINED_COMMAND])
        except ValueError:
            return bytes([ErrorCode.UNDEFINED_COMMAND])
        if any(n > lcdm.MAX_NOTES_PER_COMMAND for n in requests.values()):
            outcome = _Outcome([CassetteCounts(0, 0, 0, 0x30) for _ in requests])
            outcome.error = ErrorCode.OVERFLOW
        else:
            outcome = self._dispense(requests)
        return DispenseReply(outcome.error, tuple(outcome.counts)).encode()

    def purge_tray(self) -> dict[int, int]:
        """Sweep the exit tray into the reject tray; the notes moved, per cassette."""
        return self.notes.retract()  # on disk before the reply goes out

    def status_reply(self) -> StatusReply:
        path = lcdm.EXIT if any(self.tray.values()) else 0
        bits = 0
        flags = (
            (lcdm.UPPER_PRESENT, lcdm.UPPER_NEAR_END, lcdm.UPPER_END),
            (lcdm.LOWER_PRESENT, lcdm.LOWER_NEAR_END, lcdm.LOWER_END),
        )
        for cassette, (present, near_end, end) in zip(self.cassettes, flags, strict=False):
            if cassette.present and "cassette_missing" not in self.faults:
                bits |= present
            if cassette.count <= cassette.low_threshold:
                bits |= near_end
            if cassette.count == 0 or "cassette_empty" in self.faults:
                bits |= end
        return StatusReply(ErrorCode.GOOD, path, bits)

    def _dispense(self, requests: dict[int, int]) -> _Outcome:
        with self.notes.change():  # one write, on disk before the reply goes out
            outcome = self._pick_all(requests)
        log.info("dispensed %s, error %02X", requests, outcome.error)
        return outcome

    def _pick_all(self, requests: dict[int, int]) -> _Outcome:
        outcome = _Outcome()
        for index, wanted in requests.items():
            cassette = self.cassettes[index]
            check = exit_ = reject = 0
            error: int = ErrorCode.GOOD
            missing = (
                ErrorCode.UPPER_CASSETTE_MISSING if index == 0 else ErrorCode.LOWER_CASSETTE_MISSING
            )
            empty = ErrorCode.UPPER_BILL_END if index == 0 else ErrorCode.LOWER_BILL_END
            available = 0 if "cassette_empty" in self.faults else cassette.count
            if outcome.error != ErrorCode.GOOD:
                pass  # the machine stopped on the previous cassette
            elif not cassette.present or "cassette_missing" in self.faults:
                error = missing
            elif "reject_full" in self.faults:
                error = ErrorCode.OVER_REJECT
            elif "jam" in self.faults:
                error = ErrorCode.JAM_CHK
            elif "partial" in self.faults:
                exit_ = check = min(wanted // 2, available)
                error = ErrorCode.JAM_EXIT
            elif available < wanted:
                exit_ = check = available
                error = empty
            elif "reject" in self.faults and available > wanted:
                # A double note: one extra picked, diverted to the reject tray.
                check, exit_, reject = wanted + 1, wanted, 1
            else:
                check = exit_ = wanted
            self.notes.pick(index, check, rejected=reject)
            status = 0x31 if cassette.count <= cassette.low_threshold else 0x30
            outcome.counts.append(CassetteCounts(check, exit_, reject, status))
            if error != ErrorCode.GOOD and outcome.error == ErrorCode.GOOD:
                outcome.error = error
        return outcome
