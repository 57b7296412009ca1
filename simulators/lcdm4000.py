"""A Puloon LCDM-4000 cash dispenser: up to four cassettes, one DISPENSE command for all of them,
counts as value + 0x20, and the EOT that closes every exchange after the host's ACK. It speaks
``drivers.codecs.lcdm4000``; the notes, trays and faults are the LCDM-2000 simulator's
(``simulators.dispenser``), so every note is accounted for the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from drivers.codecs import lcdm, lcdm4000
from drivers.codecs.lcdm import ErrorCode, LcdmDecoder
from drivers.codecs.lcdm4000 import (
    CassetteSensors,
    Command,
    DispenseReply,
    Error,
    PickCounts,
    StatusReply,
)
from simulators.dispenser import DispenserSimulator, SimCassette

__all__ = ["Lcdm4000Simulator"]

log = logging.getLogger(__name__)

# The LCDM-2000 outcome the shared note model reports -> the LCDM-4000's error code.
_ERRORS: dict[int, int] = {
    ErrorCode.GOOD: Error.NONE,
    ErrorCode.JAM_CHK: Error.JAM_CHK_DVT,
    ErrorCode.JAM_EXIT: Error.JAM_EJT_EXIT,
    ErrorCode.UPPER_BILL_END: Error.PICKUP,
    ErrorCode.LOWER_BILL_END: Error.PICKUP,
    ErrorCode.UPPER_CASSETTE_MISSING: Error.NO_CASSETTE,
    ErrorCode.LOWER_CASSETTE_MISSING: Error.NO_CASSETTE,
    ErrorCode.OVER_REJECT: Error.TOO_MANY_REJECTS,
}


class Lcdm4000Simulator(DispenserSimulator):
    MODEL = "LCDM-4000"
    MAX_CASSETTES = lcdm4000.CASSETTES
    DISPENSE_COMMANDS = (Command.DISPENSE,)
    NO_REPLY = frozenset({Command.RESET})  # a software reset: no ACK, no reply

    def __init__(
        self,
        cassettes: list[SimCassette],
        reject_capacity: int = 200,
        *,
        state_path: Path | None = None,
    ) -> None:
        super().__init__(cassettes, reject_capacity, state_path=state_path)
        self.last_command = 0
        self.last_reply: DispenseReply | None = None

    def _new_decoder(self) -> LcdmDecoder:
        return lcdm4000.decoder(lcdm.EOT)

    def _encode_reply(self, cmd: int, data: bytes) -> bytes:
        return lcdm4000.encode_reply(cmd, data)

    def _host_acknowledged(self) -> None:
        self.send_control(bytes([lcdm.EOT]))

    def _handle(self, cmd: int, data: bytes) -> bytes:
        if cmd == Command.STATUS:
            return self.status_reply4000().encode()
        if cmd == Command.PURGE:
            purged = self.purge_tray()
            reply = DispenseReply(
                Error.NONE, self._picks({i: (n, 0) for i, n in purged.items()}), reserved=False
            )
            self.last_command, self.last_reply = cmd, reply
            return reply.encode()
        if cmd == Command.LAST_STATUS:
            # LAST_CMD, then the last operation's reply laid out as PURGE's.
            last = self.last_reply or DispenseReply(Error.NONE, self._picks({}))
            body = DispenseReply(last.error, last.cassettes, reserved=False).encode()
            return bytes([self.last_command or 0x20]) + body
        if cmd == Command.DISPENSE:
            reply = self._dispense4000(data)
            self.last_command, self.last_reply = cmd, reply
            return reply.encode()
        return bytes([Error.ABNORMAL_COMMAND + lcdm4000.OFFSET])

    def _dispense4000(self, params: bytes) -> DispenseReply:
        try:
            wanted = lcdm4000.decode_dispense(params)
        except ValueError:
            return DispenseReply(Error.ABNORMAL_PARAMETER, self._picks({}))
        requests = {i: n for i, n in enumerate(wanted) if n}
        if any(i >= len(self.cassettes) for i in requests):
            reply = DispenseReply(Error.NO_CASSETTE, self._picks({}))
        elif sum(wanted) > lcdm4000.MAX_NOTES_PER_TRANSACTION:
            reply = DispenseReply(Error.TOO_MANY_NOTES, self._picks({}))
        elif not requests:
            reply = DispenseReply(Error.ABNORMAL_PARAMETER, self._picks({}))
        else:
            outcome = self._dispense(requests)
            picks = {
                index: (counts.exit, counts.reject)
                for index, counts in zip(requests, outcome.counts, strict=True)
            }
            reply = DispenseReply(_ERRORS.get(outcome.error, Error.PICKUP), self._picks(picks))
        return reply

    def _picks(self, counts: dict[int, tuple[int, int]]) -> tuple[PickCounts, ...]:
        out = []
        for index in range(lcdm4000.CASSETTES):
            exit_, reject = counts.get(index, (0, 0))
            out.append(PickCounts(exit_, reject, self._present(index)))
        return tuple(out)

    def _present(self, index: int) -> bool:
        return (
            index < len(self.cassettes)
            and self.cassettes[index].present
            and "cassette_missing" not in self.faults
        )

    def status_reply4000(self) -> StatusReply:
        sensors = lcdm4000.EXIT if any(self.tray.values()) else 0
        cassettes = []
        for index in range(lcdm4000.CASSETTES):
            stat = lcdm4000.STAT_OK
            if index < len(self.cassettes):
                cassette = self.cassettes[index]
                if cassette.count == 0 or "cassette_empty" in self.faults:
                    stat = lcdm4000.STAT_EMPTY
                elif cassette.count <= cassette.low_threshold:
                    stat = lcdm4000.STAT_NEAR_END
            cassettes.append(CassetteSensors(stat, self._present(index)))
        return StatusReply(Error.NONE, sensors, tuple(cassettes))
