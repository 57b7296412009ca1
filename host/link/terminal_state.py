"""What the link records about a terminal and tells it from the operators' switches
(``host.bank.controls``): on every network-management request the host notes the time and
code, and reads maintenance mode, the terminal's service state and a forced key change; after
a sign-on or key change it notes the scheme and the new keys' check values. The link server
turns the answer into the 0810's response code (docs/protocol.md section 7.5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from host.bank.models import BankState, Terminal
from protocol.response_codes import ResponseCode
from protocol.security import WorkingKeys, key_check_value

__all__ = ["TerminalSwitches", "note_keys", "note_network", "stopped_terminals"]


@dataclass(frozen=True)
class TerminalSwitches:
    maintenance: bool = False
    in_service: bool = True
    key_change_due: bool = False

    def refusal(self) -> ResponseCode | None:
        """The code a sign-on, key change or echo gets instead of 00, if any (88 is for
        echoes only and is the caller's decision)."""
        if self.maintenance:
            return ResponseCode.MAINTENANCE
        if not self.in_service:
            return ResponseCode.TERMINAL_OUT_OF_SERVICE
        return None


def note_network(
    sessions: sessionmaker[Session], terminal_id: str, code: str, now: dt.datetime
) -> TerminalSwitches:
    with sessions.begin() as session:
        maintenance = bool(session.scalar(select(BankState.maintenance).where(BankState.id == 1)))
        terminal = session.scalar(select(Terminal).where(Terminal.terminal_id == terminal_id))
        if terminal is None:
            return TerminalSwitches(maintenance)
        terminal.last_network_at = now
        terminal.last_network_code = code[:3]
        return TerminalSwitches(maintenance, terminal.in_service, terminal.key_change_due)


def note_keys(
    sessions: sessionmaker[Session], terminal_id: str, keys: WorkingKeys, now: dt.datetime
) -> None:
    """New working keys were issued: the scheme, their check values, and no key change due."""
    with sessions.begin() as session:
        terminal = session.scalar(select(Terminal).where(Terminal.terminal_id == terminal_id))
        if terminal is None:
            return
        terminal.last_sign_on_at = now
        terminal.key_scheme = keys.scheme.value
        terminal.tpk_kcv = key_check_value(keys.scheme, keys.tpk)
        terminal.tak_kcv = key_check_value(keys.scheme, keys.tak)
        terminal.key_change_due = False


def stopped_terminals(sessions: sessionmaker[Session], terminal_ids: list[str]) -> dict[str, str]:
    """Of ``terminal_ids``, those that must not serve now, with the reason (89 or 90)."""
    if not terminal_ids:
        return {}
    with sessions() as session:
        if session.scalar(select(BankState.maintenance).where(BankState.id == 1)):
            return dict.fromkeys(terminal_ids, ResponseCode.MAINTENANCE.value)
        stopped = session.scalars(
            select(Terminal.terminal_id).where(
                Terminal.terminal_id.in_(terminal_ids), Terminal.in_service.is_(False)
            )
        )
        return dict.fromkeys(stopped, ResponseCode.TERMINAL_OUT_OF_SERVICE.value)
