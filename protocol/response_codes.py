"""Response codes (DE 39) used on our link, with the text a customer or operator sees, and the
reversal reason codes a reversal advice carries."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ResponseCode", "ReversalReason"]


class ReversalReason:
    """ISO 1993 reversal reason codes (jPOS-CMF) we use; sent in DE 60 of a reversal advice
    and written in the journal's REVERSAL_QUEUED lines."""

    PARTIAL = "4004"
    DEVICE_FAILED = "4007"  # card acceptor device unable to complete (a deposit not stacked)
    LATE_RESPONSE = "4006"
    NO_CASH = "4017"
    CASH_NOT_TAKEN = "4018"
    TIMEOUT = "4021"


class ResponseCode(StrEnum):
    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD = "14"
    NO_SUCH_ISSUER = "15"
    FORMAT_ERROR = "30"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED = "57"
    EXCEEDS_WITHDRAWAL_LIMIT = "61"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    # Private codes (ISO 8583:1987 leaves 76-89 to private use; docs/protocol.md section 6).
    PIN_CHANGE_REQUIRED = "77"
    ACCOUNT_BLOCKED = "78"
    KEY_CHANGE_REQUIRED = "88"
    TERMINAL_OUT_OF_SERVICE = "89"
    # ISO: cut-off in progress; ours: the bank is in maintenance mode.
    MAINTENANCE = "90"
    HOST_UNAVAILABLE = "91"
    DUPLICATE = "94"
    MALFUNCTION = "96"

    @property
    def text(self) -> str:
        return _TEXT[self]

    @property
    def approved(self) -> bool:
        return self is ResponseCode.APPROVED

    @property
    def capture_card(self) -> bool:
        """The host tells the terminal to keep the card."""
        return self in (ResponseCode.LOST_CARD, ResponseCode.STOLEN_CARD)

    @property
    def out_of_service(self) -> bool:
        """The host tells the terminal to stop serving (89 this terminal, 90 the bank) until
        a sign-on is approved again."""
        return self in (ResponseCode.TERMINAL_OUT_OF_SERVICE, ResponseCode.MAINTENANCE)

    @classmethod
    def parse(cls, value: str) -> ResponseCode | None:
        try:
            return cls(value)
        except ValueError:
            return None


_TEXT: dict[ResponseCode, str] = {
    ResponseCode.APPROVED: "Approved",
    ResponseCode.DO_NOT_HONOUR: "Do not honour",
    ResponseCode.INVALID_TRANSACTION: "Invalid transaction",
    ResponseCode.INVALID_AMOUNT: "Invalid amount",
    ResponseCode.INVALID_CARD: "Invalid card",
    ResponseCode.NO_SUCH_ISSUER: "Card not accepted here",
    ResponseCode.FORMAT_ERROR: "Format error",
    ResponseCode.LOST_CARD: "Lost card, card retained",
    ResponseCode.STOLEN_CARD: "Stolen card, card retained",
    ResponseCode.INSUFFICIENT_FUNDS: "Insufficient funds",
    ResponseCode.EXPIRED_CARD: "Expired card",
    ResponseCode.INCORRECT_PIN: "Incorrect PIN",
    ResponseCode.NOT_PERMITTED: "Transaction not permitted",
    ResponseCode.EXCEEDS_WITHDRAWAL_LIMIT: "Exceeds withdrawal limit",
    ResponseCode.EXCEEDS_FREQUENCY_LIMIT: "Exceeds withdrawal frequency",
    ResponseCode.PIN_TRIES_EXCEEDED: "PIN tries exceeded",
    ResponseCode.PIN_CHANGE_REQUIRED: "Please choose a new PIN",
    ResponseCode.ACCOUNT_BLOCKED: "Account not available, please contact your bank",
    ResponseCode.KEY_CHANGE_REQUIRED: "Key change required",
    ResponseCode.TERMINAL_OUT_OF_SERVICE: "This ATM is out of service",
    ResponseCode.MAINTENANCE: "The bank is in maintenance, please try later",
    ResponseCode.HOST_UNAVAILABLE: "Host unavailable",
    ResponseCode.DUPLICATE: "Duplicate transmission",
    ResponseCode.MALFUNCTION: "System malfunction",
}
