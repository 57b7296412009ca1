"""Cash dispenser driver for a Puloon LCDM-4000 (up to four cassettes, index 0 at the top).

The LCDM-2000 driver's policy carries over (logical counters, notes "taken" when the EXIT sensor
clears, retract by purge, a dispense never resent on silence); what differs is the wire: one
DISPENSE command for all four cassettes, counts as value + 0x20, and the EOT that the dispenser
sends after our ACK of its reply (the decoder drops it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from drivers.codecs import lcdm, lcdm4000
from drivers.codecs.lcdm4000 import Command, DispenseReply, Error, StatusReply
from drivers.errors import DeviceProtocolError, DispenserFault
from drivers.interfaces import CassetteStatus, DispenseResult
from drivers.lcdm import LcdmDispenser

__all__ = ["FAULT_CODES", "Lcdm4000Dispenser"]

log = logging.getLogger(__name__)

# LCDM-4000 error code -> (our fault code, words)
FAULT_CODES: dict[int, tuple[str, str]] = {
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


def _fault(error: int) -> tuple[str, str]:
    return FAULT_CODES.get(error, ("fault", f"error {error:02X}"))


class Lcdm4000Dispenser(LcdmDispenser):
    PROTOCOL = "LCDM-4000"
    MAX_CASSETTES = lcdm4000.CASSETTES

    def _new_decoder(self) -> lcdm.LcdmDecoder:
        return lcdm4000.decoder(lcdm.SOH)

    def _encode_command(self, cmd: int, data: bytes) -> bytes:
        return lcdm4000.encode_command(cmd, data)

    async def _initialise(self) -> None:
        await self._status4000()  # proves the device speaks LCDM-4000

    async def _status4000(self) -> StatusReply:
        data = await self._command(Command.STATUS)
        try:
            return StatusReply.decode(data)
        except ValueError as exc:
            raise DeviceProtocolError(f"dispenser: bad LCDM-4000 status reply: {exc}") from exc

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

    async def dispense(self, notes: Mapping[int, int]) -> DispenseResult:
        for index, count in notes.items():
            if not 0 <= index < len(self.denominations) or count < 0:
                raise ValueError(f"bad dispense request {dict(notes)}")
        remaining = [notes.get(i, 0) for i in range(lcdm4000.CASSETTES)]
        dispensed = {i: 0 for i, n in enumerate(remaining) if n}
        rejected: dict[int, int] = {}
        while any(remaining):
            batch, room = [], lcdm4000.MAX_NOTES_PER_COMMAND
            for n in remaining:
                batch.append(min(n, room))
                room -= batch[-1]
            # Never resent on silence: the notes may already be out.
            raw = await self._command(
                Command.DISPENSE,
                lcdm4000.encode_dispense(batch),
                timeout=self._dispense_timeout,
                resend=False,
            )
            try:
                reply = DispenseReply.decode(raw)
            except ValueError as exc:
                raise DeviceProtocolError(f"dispenser: bad dispense reply: {exc}") from exc
            for index, counts in enumerate(reply.cassettes):
                if index >= len(self.denominations):
                    continue
                picked = counts.exit + counts.reject
                self.counts[index] = max(0, self.counts[index] - picked)
                if counts.exit:
                    dispensed[index] = dispensed.get(index, 0) + counts.exit
                if counts.reject:
                    rejected[index] = rejected.get(index, 0) + counts.reject
                remaining[index] -= counts.exit
            self._save_counts()
            if reply.error != Error.NONE:
                code, words = _fault(reply.error)
                log.warning("dispenser fault %s after %s", words, dispensed)
                out = {i: n for i, n in dispensed.items() if n}
                raise DispenserFault(f"dispenser: {words}", code=code, dispensed=out)
            if any(r < 0 for r in remaining) or sum(c.exit for c in reply.cassettes) == 0:
                raise DeviceProtocolError(f"dispenser: implausible dispense reply {reply}")
        return DispenseResult(dispensed, rejected)

    async def retract(self) -> int:
        data = await self._command(Command.PURGE, timeout=self._dispense_timeout, resend=False)
        try:
            reply = DispenseReply.decode(data, reserved=False)
        except ValueError as exc:
            raise DeviceProtocolError(f"dispenser: bad purge reply: {exc}") from exc
        if reply.error != Error.NONE:
            code, words = _fault(reply.error)
            raise DispenserFault(f"dispenser: retract failed: {words}", code=code)
        return sum(c.exit for c in reply.cassettes)
