"""Activities of the ATM between card sessions: ``out_of_service`` (sign on, retrying),
``idle`` (welcome screen, waiting for a card, echo tests on the host link) and ``fault``
(wait for the supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from device import screens as S
from device.session import Session

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = ["fault", "idle", "out_of_service"]


async def out_of_service(atm: AtmController) -> None:
    if atm.damage is not None:
        # A damaged journal or store-and-forward line not yet accepted: no service.
        atm.post("fault")
        return
    atm.show(S.out_of_service())
    # Retry with a fixed back-off until the host answers the sign-on (which, with the
    # store-and-forward queue, drains pending reversals first).
    while True:
        if await atm.link.ensure_online():
            break
        await asyncio.sleep(atm.config.reconnect_delay)
    atm.journal.write("SIGNED_ON", host=f"{atm.config.host}:{atm.config.port}")
    atm.post("signed_on")


async def idle(atm: AtmController) -> None:
    atm.session = Session()
    if atm.link.host_stopped is not None:
        # The host put this ATM or the bank out of service (89/90) during the last session.
        atm.journal.write("LINK_DOWN", reason=f"host answered {atm.link.host_stopped}")
        atm.post("link_down")
        return
    atm.show(S.welcome())
    card = asyncio.create_task(atm.devices.card_reader.accept_card())
    # The host may stop this ATM unasked (0800/901): then out of service at once.
    stopped = asyncio.create_task(atm.link.stopped.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {card, stopped},
                timeout=atm.config.idle_echo_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if card in done:
                card.result()
                atm.post("card_inserted")
                return
            if stopped in done:
                atm.journal.write("LINK_DOWN", reason=f"host answered {atm.link.host_stopped}")
                atm.post("link_down")
                return
            if not await atm.link.echo():
                atm.journal.write("LINK_DOWN", reason="echo test failed")
                atm.post("link_down")
                return
    finally:
        stopped.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopped
        if not card.done():
            card.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await card


async def fault(atm: AtmController) -> None:
    reason = atm.fault_reason or "device fault"
    atm.show(S.fault(reason))
    # Only the supervisor leaves this state (supervisor_requested cancels this wait).
    await asyncio.Event().wait()
