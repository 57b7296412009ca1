"""The ``authorizing`` activity: build the request for the session's transaction, journal it,
send it over the host link and turn the answer into the next trigger.

A new transaction type gets its processing code and fields in ``request_message`` and its
outcome trigger in ``authorizing``. A cash deposit (notes in escrow) is answered by
``_deposit_answer``: stack when approved, give the notes back otherwise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from device import screens as S
from device.screens import money
from device.statement import StatementError, parse_mini_statement
from protocol.errors import LinkError
from protocol.masking import mask_pan
from protocol.messages import (
    AccountType,
    Message,
    Mti,
    TransactionType,
    format_amount,
    format_processing_code,
    parse_balances,
)
from protocol.response_codes import ResponseCode

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = ["authorizing", "request_message"]

log = logging.getLogger(__name__)

# Declines about the card itself: they end the card session.
_CARD_DECLINES = frozenset(
    {
        ResponseCode.PIN_TRIES_EXCEEDED,
        ResponseCode.EXPIRED_CARD,
        ResponseCode.INVALID_CARD,
        ResponseCode.NO_SUCH_ISSUER,
    }
)


def request_message(atm: AtmController) -> Message:
    """The 0100/0200 for the session's transaction, with a fresh STAN; keeps in
    ``session.original`` what a reversal needs (never the PAN or track data)."""
    s = atm.session
    assert s.card is not None and s.transaction is not None and s.pin_block is not None
    mti = (
        Mti.AUTHORIZATION_REQUEST
        if s.transaction is TransactionType.BALANCE_INQUIRY
        else Mti.FINANCIAL_REQUEST
    )
    s.stan = atm.stan.next()
    message = atm.link.base_message(mti, s.stan)
    if s.transaction is TransactionType.PIN_CHANGE:
        processing = format_processing_code(s.transaction)
    else:
        processing = format_processing_code(
            s.transaction, s.account, s.to_account or AccountType.DEFAULT
        )
    message.update(
        {
            "2": s.card.pan,
            "3": processing,
            "4": format_amount(s.amount_cents),
            "35": s.card.track2,
            "49": atm.config.currency,
            "52": s.pin_block.ciphertext.hex().upper(),
        }
    )
    if s.transaction is TransactionType.PIN_CHANGE and s.new_pin_block is not None:
        message["48"] = s.new_pin_block.ciphertext.hex().upper()
    # What a reversal needs (and what the journal keeps): never the PAN or track data.
    s.original = {k: message[k] for k in ("t", "3", "4", "7", "11", "41", "42", "49")}
    return message


async def authorizing(atm: AtmController) -> None:
    s = atm.session
    assert s.transaction is not None
    atm.show(S.please_wait())
    message = request_message(atm)
    assert s.card is not None
    atm.journal.write(
        "TXN_REQUEST",
        stan=s.stan,
        type=s.transaction.name,
        mti=message["t"],
        proc=message["3"],
        amount=s.amount_cents,
        time=message["7"],
        currency=message["49"],
        acceptor=message["42"],
        pan=mask_pan(s.card.pan),
    )
    try:
        response = await atm.link.request(message)
    except LinkError as exc:
        atm.journal.write("TXN_NO_RESPONSE", stan=s.stan, error=str(exc) or type(exc).__name__)
        s.message = "The bank cannot be reached. Please try later"
        # A deposit's notes go back; the link has queued the reversal of a request it gave
        # up on, so no money moves either way.
        if s.escrow:
            s.end_session = True
            atm.post("notes_to_return")
            return
        atm.post("host_failed")
        return
    code = ResponseCode.parse(response.get("39", "")) or ResponseCode.MALFUNCTION
    s.response, s.rrn, s.auth_code = code, response.get("37", ""), response.get("38", "")
    balances = parse_balances(response["54"]) if "54" in response else []
    available = [b for b in balances if b.amount_type == "02"] or balances
    s.balance_cents = available[0].cents if available else None
    ledger = [b for b in balances if b.amount_type == "01"]
    s.ledger_cents = ledger[0].cents if ledger else None
    deposit_held = [b for b in balances if b.amount_type == "92"]
    s.deposit_held_cents = deposit_held[0].cents if deposit_held else None
    if "62" in response:
        try:
            s.statement = tuple(e.line() for e in parse_mini_statement(response["62"]))
        except StatementError as exc:
            log.warning("mini-statement ignored: %s", exc)
    atm.journal.write("TXN_RESPONSE", stan=s.stan, code=code.value, rrn=s.rrn)
    if s.escrow:
        _deposit_answer(atm, code)
        return
    if code.approved:
        if s.transaction is TransactionType.WITHDRAWAL:
            atm.post("approved_cash")
        elif s.transaction is TransactionType.BALANCE_INQUIRY:
            atm.post("approved_inquiry")
        else:
            if s.transaction is TransactionType.PIN_CHANGE and s.new_pin_block is not None:
                # The host now knows only the new PIN: later transactions of this card
                # session carry its block.
                s.pin_block = s.new_pin_block
            if s.transaction is TransactionType.PIN_CHANGE:
                s.message = "Your PIN has been changed"
            elif s.transaction is TransactionType.CHECK_DEPOSIT:
                s.message = f"Check for {money(s.amount_cents)} deposited; on hold until it clears"
            else:
                s.message = f"{money(s.amount_cents)} transferred"
            atm.post("approved")
    elif code is ResponseCode.INCORRECT_PIN:
        atm.post("wrong_pin")
    elif code is ResponseCode.PIN_CHANGE_REQUIRED:
        # The PIN was right but was set by the bank (a reset): the customer chooses a new
        # one (the PIN change flow), then may start the transaction again.
        s.new_transaction()
        s.transaction = TransactionType.PIN_CHANGE
        s.response = code
        atm.post("pin_change_required")
    elif code.out_of_service:
        # The host put this ATM (89) or the bank (90) out of service: this session ends
        # (card returned), then the ATM shows out-of-service until a sign-on is approved.
        s.message = code.text
        s.end_session = True
        atm.post("declined")
    elif code.capture_card or (
        code is ResponseCode.PIN_TRIES_EXCEEDED and atm.config.retain_card_on_pin_tries_exceeded
    ):
        s.message = code.text
        atm.post("capture")
    else:
        s.message = code.text
        # A decline about the card itself ends the card session; others offer another try.
        s.end_session = code in _CARD_DECLINES
        atm.post("declined")


def _deposit_answer(atm: AtmController, code: ResponseCode) -> None:
    """Notes are in escrow: approved, they are stacked; any other answer gives them back
    (a wrong PIN too: the customer starts again rather than leave notes in the machine)."""
    s = atm.session
    if code.approved:
        atm.post("approved_deposit")
        return
    s.message = code.text
    s.capture_after_notes = code.capture_card
    s.end_session = code in _CARD_DECLINES or code.capture_card
    atm.post("notes_to_return")
