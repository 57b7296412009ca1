"""Activities that close a transaction or a card session: ``printing`` (the message and the
receipt), ``returning_card``, ``capturing_card`` and ``session_end``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from device import screens as S
from device.events import ReceiptPrinted
from device.receipt import ReceiptData, layout_receipt, receipt_reference
from device.session import ACCOUNT_NAMES, TRANSACTION_NAMES
from drivers.errors import CardReaderFault, DriverError
from protocol.messages import TransactionType

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = [
    "capturing_card",
    "printing",
    "receipt_data",
    "receipt_lines",
    "returning_card",
    "session_end",
]


def receipt_lines(atm: AtmController) -> list[str]:
    """The customer receipt for the session's current transaction."""
    return layout_receipt(receipt_data(atm))


def receipt_data(atm: AtmController) -> ReceiptData:
    """What the customer receipt for the session's current transaction says."""
    s = atm.session
    assert s.card is not None
    with_amount = s.transaction in (
        TransactionType.WITHDRAWAL,
        TransactionType.TRANSFER,
        TransactionType.DEPOSIT,
        TransactionType.CHECK_DEPOSIT,
    )
    return ReceiptData(
        terminal_id=atm.config.terminal_id,
        moment=atm.now(),
        pan=s.card.pan,
        stan=s.stan,
        transaction=TRANSACTION_NAMES.get(s.transaction, "") if s.transaction else "",
        response_text=(s.response.text if s.response else ""),
        amount_cents=s.amount_cents if with_amount else None,
        balance_cents=s.balance_cents,
        account=(
            ACCOUNT_NAMES.get(s.account, "")
            if s.transaction is not TransactionType.PIN_CHANGE
            else ""
        ),
        to_account=ACCOUNT_NAMES.get(s.to_account, "") if s.to_account else "",
        rrn=s.rrn,
        auth_code=s.auth_code,
        note=s.receipt_note,
        statement=s.statement if s.receipt_wanted else (),
    )


async def printing(atm: AtmController) -> None:
    s = atm.session
    if s.message:
        atm.show(S.message(s.message))
    wanted = s.card is not None and (
        s.transaction is not TransactionType.BALANCE_INQUIRY or s.receipt_wanted
    )
    if not wanted:
        atm.post("printed")
        return
    status = await atm.devices.printer.status()
    if not status.can_print:
        atm.journal.write("RECEIPT_SKIPPED", stan=s.stan, reason=f"paper {status.paper}")
        atm.post("printed")
        return
    data = receipt_data(atm)
    lines = layout_receipt(data)
    reference = receipt_reference(data)
    try:
        await atm.devices.printer.print_receipt(lines, qr=reference)
    except DriverError as exc:
        atm.journal.write("RECEIPT_FAILED", stan=s.stan, error=str(exc))
    else:
        atm.journal.write("RECEIPT_PRINTED", stan=s.stan)
        atm.events.publish(ReceiptPrinted(tuple(lines), reference))
    atm.post("printed")


async def returning_card(atm: AtmController) -> None:
    atm.show(S.take_card(atm.session.message))
    try:
        taken = await atm.devices.card_reader.eject(atm.person_timeout())
    except CardReaderFault as exc:
        if atm.session.suspect:
            # After a suspect dispense the card is not left in a faulted reader: keep it.
            atm.journal.write("CARD_NOT_RETURNED", error=exc.code or str(exc))
            atm.session.message = "Your card could not be returned; it has been retained"
            atm.post("card_not_taken")
            return
        atm.fault_reason = "card jam"
        atm.journal.write("CARD_JAM", error=exc.code or str(exc))
        atm.post("card_jammed")
        return
    if taken:
        atm.journal.write("CARD_RETURNED")
        atm.post("card_taken")
    else:
        atm.journal.write("CARD_NOT_TAKEN")
        atm.session.message = "Card not taken in time"
        atm.post("card_not_taken")


async def capturing_card(atm: AtmController) -> None:
    atm.show(S.card_retained(atm.session.message))
    await atm.devices.card_reader.capture()
    atm.journal.write("CARD_CAPTURED", reason=atm.session.message or "not taken")
    atm.post("captured")


async def session_end(atm: AtmController) -> None:
    atm.journal.write("SESSION_END", stan=atm.session.stan or "-")
    atm.show(S.thank_you())
    atm.post("session_closed" if atm.link.online else "link_down")
