"""Cash dispenser driver for a Puloon LCDM-4000 (up to four cassettes, index 0 at the top).

The LCDM-2000 driver's policy carries over (logical counters, notes "taken" when the EXIT sensor
clears, retract by purge, a dispense never resent on silence); what differs is the wire: one
DISPENSE command for all four cassettes, counts as value + 0x20, and the EOT that the dispenser
sends after our ACK of its reply (the decoder drops it).
"""

from __future__ import annotations

from drivers.codecs import lcdm, lcdm4000
from drivers.codecs.lcdm4000 import Command, DispenseReply, Error, StatusReply
from drivers.framed import FaultTable
from drivers.interfaces import CassetteStatus
from drivers.lcdm import LcdmDispenser, Picked

__all__ = ["FAULT_CODES", "Lcdm4000Dispenser"]

# LCDM-4000 error code -> (our fault code, words)
FAULT_CODES: FaultTable = {
    Error.PICKUP: ("empty", lcdm4000.ERROR_TEXT[Error.PICKUP] + " (cassette empty?)"),
    Error.JAM_CHK_DVT: ("jam", lcdm4000.ERROR_TEXT[Error.JAM_CHK_DVT]),
    Error.JAM_DVT_EJT: ("jam", lcdm4000.ERROR_TEXT[Error.JAM_DVT_EJT]),
    Error.JAM_EJT_EXIT: ("jam", lcdm4000.ERROR_TEXT[Error.JAM_EJT_EXIT]),
    Error.NOTE_IN_EXIT: ("jam", lcdm4000.ERROR_TEXT[Error.NOTE_IN_EXIT]),
    Error.TOO_MANY_NOTES: ("too_many", lcdm4000.ERROR_TEXT[Error.TOO_MANY_NOTES]),
    Error.TOO_MANY_REJECTS: ("reject_full", lcdm4000.ERROR_TEXT[Error.TOO_MANY_REJECTS]),
    Error.PURGE_ABNORMAL: ("purge", lcdm4000.ERROR_TEXT[Error.PURGE_ABNORMAL]),
    Error.NO_CASSETTE: ("cassette_missing", lcdm4000.ERROR_TEXT[Error.NO_CASSETTE]),
    Error.NO_REJECT_TRAY: ("reject_missing", lcdm4000.ERROR_TEXT[Error.NO_REJECT_TRAY]),
    Error.ABNORMAL_COMMAND: ("undefined_command", lcdm4000.ERROR_TEXT[Error.ABNORMAL_COMMAND]),
    Error.ABNORMAL_PARAMETER: ("bad_parameter", lcdm4000.ERROR_TEXT[Error.ABNORMAL_PARAMETER]),
}


class Lcdm4000Dispenser(LcdmDispenser):
    PROTOCOL = "LCDM-4000"
    MAX_CASSETTES = lcdm4000.CASSETTES
    FAULTS = FAULT_CODES
    GOOD = frozenset({Error.NONE})
    PURGE = Command.PURGE

    def _new_decoder(self) -> lcdm.LcdmDecoder:
        return lcdm4000.decoder(lcdm.SOH)

    def _encode_command(self, cmd: int, data: bytes) -> bytes:
        return lcdm4000.encode_command(cmd, data)

    async def _initialise(self) -> None:
        await self._status4000()  # proves the device speaks LCDM-4000

    async def _status4000(self) -> StatusReply:
        data = await self._command(Command.STATUS)
        return self._decoded("bad LCDM-4000 status reply", StatusReply.decode, data)

    async def status(self) -> list[CassetteStatus]:
        reply = await self._status4000()
        return [
            self._cassette(
                i,
                reply.cassettes[i].present,
                reply.cassettes[i].stat == lcdm4000.STAT_NEAR_END,
                reply.cassettes[i].stat == lcdm4000.STAT_EMPTY,
            )
            for i in range(len(self.denominations))
        ]

    async def _notes_in_tray(self) -> bool:
        return (await self._status4000()).notes_in_tray

    def _dispense_command(self, remaining: list[int]) -> tuple[int, bytes]:
        """One DISPENSE for all four cassettes, top first, within the per-command total."""
        batch, room = [], lcdm4000.MAX_NOTES_PER_COMMAND
        for n in remaining + [0] * (lcdm4000.CASSETTES - len(remaining)):
            batch.append(min(n, room))
            room -= batch[-1]
        return Command.DISPENSE, lcdm4000.encode_dispense(batch)

    def _picked(self, cmd: int, raw: bytes) -> Picked:
        reply = DispenseReply.decode(raw)
        picks = [(i, c.exit + c.reject, c.exit, c.reject) for i, c in enumerate(reply.cassettes)]
        return Picked(reply, reply.error, picks)

    def _purged(self, data: bytes) -> tuple[int, int]:
        reply = DispenseReply.decode(data, reserved=False)
        return reply.error, sum(c.exit for c in reply.cassettes)
