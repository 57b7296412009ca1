"""What each state of the machine does: ``ACTIVITIES`` maps every ``State`` to its activity.

An activity is ``async def name(atm: AtmController) -> None``: the controller starts it when the
machine enters the state and cancels it when the machine leaves. It talks to the drivers and
the host through ``atm`` and ends by posting exactly one trigger (``atm.post``); it never fires a
trigger itself. One module per family:

- ``service``: between sessions (out of service and signing on, idle, fault)
- ``customer``: the customer at the keyboard (card, PIN, menus, accounts, amounts, new PIN,
  balance shown, another transaction)
- ``authorization``: the request to the host and what its answer leads to
- ``cash``: dispensing (also when its outcome is unknown), presenting, retracting
- ``deposit``: notes into escrow, the count confirmed, stacked or given back
- ``session_end``: message and receipt, returning or capturing the card, session end
- ``operator``: supervisor mode (keypad, replenish, counters, journal, balancing, suspects)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from device.activities import (
    authorization,
    cash,
    customer,
    deposit,
    operator,
    service,
    session_end,
)
from device.states import State

if TYPE_CHECKING:
    from device.controller import AtmController

__all__ = ["ACTIVITIES", "Activity"]

Activity = Callable[["AtmController"], Awaitable[None]]

S = State

ACTIVITIES: dict[State, Activity] = {
    # service
    S.out_of_service: service.out_of_service,
    S.idle: service.idle,
    S.fault: service.fault,
    # customer
    S.reading_card: customer.reading_card,
    S.pin_entry: customer.pin_entry,
    S.main_menu: customer.main_menu,
    S.account_selection: customer.account_selection,
    S.to_account_selection: customer.to_account_selection,
    S.amount_entry: customer.amount_entry,
    S.new_pin_entry: customer.new_pin_entry,
    S.balance_display: customer.balance_display,
    S.another_transaction: customer.another_transaction,
    S.more_time: customer.more_time,
    # authorization
    S.authorizing: authorization.authorizing,
    # cash
    S.dispensing: cash.dispensing,
    S.presenting_cash: cash.presenting_cash,
    # deposit
    S.deposit_inserting: deposit.deposit_inserting,
    S.deposit_confirming: deposit.deposit_confirming,
    S.deposit_stacking: deposit.deposit_stacking,
    S.deposit_returning: deposit.deposit_returning,
    S.check_entry: deposit.check_entry,
    S.envelope_taking: deposit.envelope_taking,
    # session end
    S.printing: session_end.printing,
    S.returning_card: session_end.returning_card,
    S.capturing_card: session_end.capturing_card,
    S.session_end: session_end.session_end,
    # operator
    S.supervisor: operator.supervisor,
    S.supervisor_replenishing: operator.supervisor_replenishing,
    S.supervisor_printing_counters: operator.supervisor_printing_counters,
    S.supervisor_resetting_counters: operator.supervisor_resetting_counters,
    S.supervisor_showing_journal: operator.supervisor_showing_journal,
    S.supervisor_balancing: operator.supervisor_balancing,
    S.supervisor_settling_not_dispensed: operator.supervisor_settling_not_dispensed,
    S.supervisor_settling_dispensed: operator.supervisor_settling_dispensed,
    S.supervisor_accepting_damage: operator.supervisor_accepting_damage,
}
