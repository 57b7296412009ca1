"""One card session: what the controller knows about the customer at the ATM.

Owns the ``Session`` record the activities fill in (card, PIN block, the current transaction and
its outcome) and the names people read for accounts and transaction types. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.interfaces import CardData, PinBlock
from protocol.messages import AccountType, Message, TransactionType
from protocol.response_codes import ResponseCode

__all__ = ["ACCOUNT_NAMES", "TRANSACTION_NAMES", "Session"]

ACCOUNT_NAMES = {AccountType.CHECKING: "Checking", AccountType.SAVINGS: "Savings"}
TRANSACTION_NAMES = {
    TransactionType.WITHDRAWAL: "WITHDRAWAL",
    TransactionType.BALANCE_INQUIRY: "BALANCE INQUIRY",
    TransactionType.TRANSFER: "TRANSFER",
    TransactionType.PIN_CHANGE: "PIN CHANGE",
    TransactionType.DEPOSIT: "CASH DEPOSIT",
    TransactionType.CHECK_DEPOSIT: "CHECK DEPOSIT",
}


@dataclass
class Session:
    """One card session: everything the controller knows about the customer at the ATM.

    ``card`` and ``pin_block`` live for the whole card session; the other fields describe the
    current transaction and are reset when the customer starts another one.
    """

    card: CardData | None = None
    pin_block: PinBlock | None = None
    transaction: TransactionType | None = None
    account: AccountType = AccountType.DEFAULT
    to_account: AccountType | None = None
    amount_cents: int = 0
    notes: dict[int, int] = field(default_factory=dict)
    new_pin_block: PinBlock | None = None
    stan: str = ""
    response: ResponseCode | None = None
    rrn: str = ""
    auth_code: str = ""
    balance_cents: int | None = None
    statement: tuple[str, ...] = ()
    message: str = ""
    dispensed_cents: int = 0
    presented: dict[int, int] = field(default_factory=dict)
    partial: bool = False
    receipt_note: str = ""
    receipt_wanted: bool = False
    end_session: bool = False
    # The dispense outcome is unknown and could not be established: left to the operator.
    suspect: bool = False
    original: Message = field(default_factory=dict)
    # Deposits: the notes (cents each) held in the acceptor's escrow, in the order counted;
    # the ledger balance the host returned (``balance_cents`` is the available one); the card
    # to be kept once the notes are back (a capture answer to a deposit).
    escrow: list[int] = field(default_factory=list)
    ledger_cents: int | None = None
    # A deposit's answer: how much of it the host placed on hold (DE 54 amount type 92).
    deposit_held_cents: int | None = None
    capture_after_notes: bool = False
    # Check deposits: the check number the customer keyed.
    check_number: str = ""

    def new_transaction(self) -> None:
        fresh = Session(card=self.card, pin_block=self.pin_block)
        self.__dict__.update(fresh.__dict__)
