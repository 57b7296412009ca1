"""The control channel of a running simulator: one command per line over TCP, one reply line
(``ok ...`` or ``error: ...``) per command. ``ControlChannel.handle`` is the sans-IO part;
``serve_control`` puts it on a socket.

    help                         this list
    faults                       the faults this device understands
    inject FAULT [ARG]           e.g. inject jam | inject delay 0.5 | inject garble always
    clear [FAULT]                clear one fault, or all
    state                        the device's state in one line
    insert NAME|TRACK2           card reader: hold a card at the slot (alice, bob, ...)
    take card | take cash        take the card from the gate / the notes from the tray
    press KEY [KEY ...]          PIN pad: 0-9, ENTER, CANCEL, CLEAR, F1..F8
    type DIGITS                  PIN pad: the digits, then ENTER
    note CENTS [CENTS ...]       bill acceptor: push notes into the entrance (2000 = $20)
    take notes                   bill acceptor: take the notes given back at the entrance
    envelope                     envelope depository: put an envelope in the slot
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["HELP", "ControlChannel", "serve_control"]

log = logging.getLogger(__name__)

HELP = __doc__.split("\n\n", 1)[1].rstrip() if __doc__ else ""


class ControlChannel:
    def __init__(self, simulator: Any, cards: Mapping[str, str] | None = None) -> None:
        self.simulator = simulator
        self.cards = dict(cards or {})

    def handle(self, line: str) -> str:
        words = line.split()
        try:
            return self._dispatch(words)
        except (ValueError, TypeError) as exc:
            return f"error: {exc}"

    def _dispatch(self, words: list[str]) -> str:
        sim = self.simulator
        match words:
            case []:
                return "ok"
            case ["help"]:
                return "ok " + " | ".join(" ".join(x.split()) for x in HELP.splitlines())
            case ["faults"]:
                names = getattr(sim, "fault_names", sorted(sim.FAULTS))
                return "ok " + " ".join(names)
            case ["inject", fault]:
                sim.inject(fault)
                return f"ok injected {fault}"
            case ["inject", fault, arg]:
                sim.inject(fault, arg)
                return f"ok injected {fault} {arg}"
            case ["clear"]:
                sim.clear()
                return "ok cleared all faults"
            case ["clear", fault]:
                sim.clear(fault)
                return f"ok cleared {fault}"
            case ["state"]:
                return "ok " + describe(sim)
            case ["insert", card] if hasattr(sim, "insert"):
                track2 = self.cards.get(card.lower(), card)
                sim.insert(track2)
                return f"ok card {card if card in self.cards else 'inserted'} at the slot"
            case ["take", "card"] if hasattr(sim, "take_card"):
                sim.take_card()
                return "ok"
            case ["take", "cash"] if hasattr(sim, "take_cash"):
                sim.take_cash()
                return "ok"
            case ["note", *notes] if notes and hasattr(sim, "insert_note"):
                if not all(n.isdigit() for n in notes):
                    return "error: notes are given in cents, e.g. note 2000 2000"
                for cents in notes:
                    sim.insert_note(int(cents))
                return f"ok {len(notes)} note(s) inserted"
            case ["take", "notes"] if hasattr(sim, "take_returned"):
                return f"ok took {sim.take_returned()}"
            case ["envelope"] if hasattr(sim, "insert_envelope"):
                sim.insert_envelope()
                return "ok envelope at the slot"
            case ["press", *keys] if keys and hasattr(sim, "press"):
                sim.press(*[k.upper() for k in keys])
                return "ok"
            case ["type", digits] if digits.isdigit() and hasattr(sim, "press"):
                sim.type_digits(digits)
                sim.press("ENTER")
                return "ok"
        return f"error: unknown command for the {getattr(sim, 'NAME', 'device')}: {' '.join(words)}"


def describe(sim: Any) -> str:
    """One line of state, without track data or PIN digits."""
    parts = [f"faults={','.join(sorted(sim.faults)) or '-'}"]
    names = ("position", "mode", "echo", "paper_left", "tray", "reject_bin", "retracted")
    for name in (*names, "escrow", "stacker", "jammed", "at_entrance"):
        if hasattr(sim, name):
            parts.append(f"{name}={getattr(sim, name)!r}")
    if hasattr(sim, "cassettes"):
        cassettes = ", ".join(f"{c.denomination_cents}c x {c.count}" for c in sim.cassettes)
        parts.append(f"cassettes=[{cassettes}]")
    if hasattr(sim, "captured"):
        parts.append(f"captured={len(sim.captured)}")
    if hasattr(sim, "receipts"):
        parts.append(f"receipts={len(sim.receipts)}")
    if hasattr(sim, "envelopes"):
        parts.append(f"envelopes={len(sim.envelopes)}")
    return " ".join(parts)


async def serve_control(
    channel: ControlChannel, host: str = "127.0.0.1", port: int = 0
) -> asyncio.Server:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if len(line) > 1024:
                    writer.write(b"error: line too long\n")
                    break
                reply = channel.handle(line.decode("utf-8", errors="replace"))
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (OSError, ValueError) as exc:
            log.info("control client went away: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(client, host, port, limit=2048)
