"""The controller's states and transitions, as data.

``State`` names follow DESIGN section 5; ``TRANSITIONS`` is the table the ``transitions``
AsyncMachine is built from (and the docs' diagram is generated from). Triggers are events
posted to the controller's single queue by the activity of the current state.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["TRANSITIONS", "WAITING_FOR_PERSON", "State"]


class State(enum.Enum):
    out_of_service = "out_of_service"
    idle = "idle"
    reading_card = "reading_card"
    pin_entry = "pin_entry"
    main_menu = "main_menu"
    account_selection = "account_selection"
    amount_entry = "amount_entry"
    authorizing = "authorizing"
    dispensing = "dispensing"
    presenting_cash = "presenting_cash"
    balance_display = "balance_display"
    printing = "printing"
    returning_card = "returning_card"
    capturing_card = "capturing_card"
    session_end = "session_end"


S = State

# States that wait for a person; each has a timeout (DESIGN section 5).
WAITING_FOR_PERSON = frozenset(
    {
        S.pin_entry,
        S.main_menu,
        S.account_selection,
        S.amount_entry,
        S.presenting_cash,
        S.balance_display,
        S.returning_card,
    }
)

_CUSTOMER_STATES = [
    S.pin_entry,
    S.main_menu,
    S.account_selection,
    S.amount_entry,
    S.balance_display,
]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "signed_on", "source": S.out_of_service, "dest": S.idle},
    {"trigger": "card_inserted", "source": S.idle, "dest": S.reading_card},
    {"trigger": "card_read", "source": S.reading_card, "dest": S.pin_entry},
    {"trigger": "read_failed", "source": S.reading_card, "dest": S.returning_card},
    {
        "trigger": "pin_entered",
        "source": S.pin_entry,
        "dest": S.authorizing,
        "conditions": "has_pending_transaction",
    },
    {"trigger": "pin_entered", "source": S.pin_entry, "dest": S.main_menu},
    {"trigger": "select_withdrawal", "source": S.main_menu, "dest": S.account_selection},
    {"trigger": "select_balance", "source": S.main_menu, "dest": S.account_selection},
    {
        "trigger": "account_selected",
        "source": S.account_selection,
        "dest": S.amount_entry,
        "conditions": "needs_amount",
    },
    {"trigger": "account_selected", "source": S.account_selection, "dest": S.authorizing},
    {"trigger": "amount_entered", "source": S.amount_entry, "dest": S.authorizing},
    {"trigger": "amount_refused", "source": S.amount_entry, "dest": S.amount_entry},
    {"trigger": "approved_cash", "source": S.authorizing, "dest": S.dispensing},
    {"trigger": "approved_inquiry", "source": S.authorizing, "dest": S.balance_display},
    {"trigger": "wrong_pin", "source": S.authorizing, "dest": S.pin_entry},
    {"trigger": "declined", "source": S.authorizing, "dest": S.printing},
    {"trigger": "capture", "source": S.authorizing, "dest": S.capturing_card},
    {"trigger": "host_failed", "source": S.authorizing, "dest": S.returning_card},
    {"trigger": "dispensed", "source": S.dispensing, "dest": S.presenting_cash},
    {"trigger": "dispense_failed", "source": S.dispensing, "dest": S.printing},
    {"trigger": "cash_taken", "source": S.presenting_cash, "dest": S.printing},
    {"trigger": "cash_retracted", "source": S.presenting_cash, "dest": S.printing},
    {"trigger": "receipt_requested", "source": S.balance_display, "dest": S.printing},
    {"trigger": "finished", "source": S.balance_display, "dest": S.returning_card},
    {"trigger": "printed", "source": S.printing, "dest": S.returning_card},
    {"trigger": "cancel", "source": _CUSTOMER_STATES, "dest": S.returning_card},
    {"trigger": "timeout", "source": _CUSTOMER_STATES, "dest": S.returning_card},
    {"trigger": "card_taken", "source": S.returning_card, "dest": S.session_end},
    {"trigger": "card_not_taken", "source": S.returning_card, "dest": S.capturing_card},
    {"trigger": "captured", "source": S.capturing_card, "dest": S.session_end},
    {"trigger": "session_closed", "source": S.session_end, "dest": S.idle},
    {"trigger": "link_down", "source": [S.idle, S.session_end], "dest": S.out_of_service},
    {"trigger": "fault", "source": "*", "dest": S.out_of_service},
]
