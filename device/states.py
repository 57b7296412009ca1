"""The controller's states and transitions, as data.

``State`` names follow DESIGN section 5; ``TRANSITIONS`` is the table the ``transitions``
AsyncMachine is built from (and ``docs/state-diagram.md`` is generated from, see
``device.diagram``). Triggers are events posted to the controller's single queue by the
activity of the current state. ``TIMEOUTS`` says, for every state that waits for a person, which
``DeviceConfig`` field bounds the wait and which trigger the activity posts when it runs out.
``SUPERVISOR_KEYS`` is the operator's keypad in supervisor mode: each F-key is a trigger into
one ``supervisor_*`` state whose activity does that one job and returns to ``supervisor``.

What each state *does* (its activity) is in ``device.activities`` (the ``ACTIVITIES`` table).
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "CUSTOMER_STATES",
    "SUPERVISOR_ACTIONS",
    "SUPERVISOR_KEYS",
    "TIMEOUTS",
    "TRANSITIONS",
    "WAITING_FOR_PERSON",
    "State",
    "Timeout",
]


class State(enum.Enum):
    out_of_service = "out_of_service"
    idle = "idle"
    reading_card = "reading_card"
    pin_entry = "pin_entry"
    main_menu = "main_menu"
    account_selection = "account_selection"
    to_account_selection = "to_account_selection"
    amount_entry = "amount_entry"
    new_pin_entry = "new_pin_entry"
    deposit_inserting = "deposit_inserting"
    deposit_confirming = "deposit_confirming"
    check_entry = "check_entry"
    envelope_taking = "envelope_taking"
    authorizing = "authorizing"
    dispensing = "dispensing"
    presenting_cash = "presenting_cash"
    deposit_stacking = "deposit_stacking"
    deposit_returning = "deposit_returning"
    balance_display = "balance_display"
    printing = "printing"
    another_transaction = "another_transaction"
    more_time = "more_time"
    returning_card = "returning_card"
    capturing_card = "capturing_card"
    session_end = "session_end"
    supervisor = "supervisor"
    supervisor_replenishing = "supervisor_replenishing"
    supervisor_printing_counters = "supervisor_printing_counters"
    supervisor_resetting_counters = "supervisor_resetting_counters"
    supervisor_showing_journal = "supervisor_showing_journal"
    supervisor_balancing = "supervisor_balancing"
    supervisor_settling_not_dispensed = "supervisor_settling_not_dispensed"
    supervisor_settling_dispensed = "supervisor_settling_dispensed"
    supervisor_accepting_damage = "supervisor_accepting_damage"
    fault = "fault"


S = State

# States where the customer is at the keyboard: CANCEL and "no key in time" end the session
# (the card is returned).
CUSTOMER_STATES = [
    S.pin_entry,
    S.main_menu,
    S.account_selection,
    S.to_account_selection,
    S.amount_entry,
    S.new_pin_entry,
    S.balance_display,
    S.another_transaction,
    S.deposit_inserting,  # with notes in escrow, CANCEL and timeouts give them back first
    S.check_entry,
]


class Timeout(enum.Enum):
    """What happens when a person does not act in time."""

    END_SESSION = "timeout"  # no key pressed: return the card
    RETRACT_AND_REVERSE = "cash_retracted"  # cash not taken
    CAPTURE = "card_not_taken"  # card not taken
    LEAVE_SUPERVISOR = "supervisor_left"
    RETURN_NOTES = "notes_to_return"  # deposit not confirmed: the notes go back
    NOTES_LEFT = "notes_returned"  # returned notes not taken: journaled, deposits stop
    NO_ENVELOPE = "no_envelope"  # no envelope came: nothing is deposited


# state -> (DeviceConfig field holding the timeout in seconds, what follows)
TIMEOUTS: dict[State, tuple[str, Timeout]] = {
    **{state: ("key_timeout", Timeout.END_SESSION) for state in CUSTOMER_STATES},
    S.deposit_confirming: ("key_timeout", Timeout.RETURN_NOTES),
    S.presenting_cash: ("cash_take_timeout", Timeout.RETRACT_AND_REVERSE),
    S.deposit_returning: ("cash_take_timeout", Timeout.NOTES_LEFT),
    S.envelope_taking: ("key_timeout", Timeout.NO_ENVELOPE),
    S.returning_card: ("card_take_timeout", Timeout.CAPTURE),
    S.supervisor: ("supervisor_timeout", Timeout.LEAVE_SUPERVISOR),
    # "Do you need more time?": the countdown that follows a customer state's timeout.
    S.more_time: ("more_time_seconds", Timeout.END_SESSION),
}

WAITING_FOR_PERSON = frozenset(TIMEOUTS)

# The operator's keypad in supervisor mode: key -> (trigger, state it leads to). Other keys are
# ignored; no key within ``supervisor_timeout`` counts as F8.
SUPERVISOR_KEYS: dict[str, tuple[str, State]] = {
    "F1": ("replenish", S.supervisor_replenishing),
    "F2": ("print_counters", S.supervisor_printing_counters),
    "F3": ("reset_counters", S.supervisor_resetting_counters),
    "F4": ("show_journal", S.supervisor_showing_journal),
    "F5": ("balance", S.supervisor_balancing),
    "F6": ("settle_not_dispensed", S.supervisor_settling_not_dispensed),
    "F7": ("settle_dispensed", S.supervisor_settling_dispensed),
    # A damaged journal or store-and-forward line (the fault names it): accept it.
    "ENTER": ("accept_damaged_line", S.supervisor_accepting_damage),
    "F8": ("supervisor_left", S.out_of_service),
}

# The supervisor's one-job states: each returns to ``supervisor`` with ``supervisor_done``.
SUPERVISOR_ACTIONS = [dest for _, dest in SUPERVISOR_KEYS.values() if dest is not S.out_of_service]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "signed_on", "source": S.out_of_service, "dest": S.idle},
    {"trigger": "card_inserted", "source": S.idle, "dest": S.reading_card},
    {"trigger": "card_read", "source": S.reading_card, "dest": S.pin_entry},
    {"trigger": "read_failed", "source": S.reading_card, "dest": S.returning_card},
    {"trigger": "card_jammed", "source": [S.reading_card, S.returning_card], "dest": S.fault},
    {
        "trigger": "pin_entered",
        "source": S.pin_entry,
        "dest": S.authorizing,
        "conditions": "has_pending_transaction",
    },
    {"trigger": "pin_entered", "source": S.pin_entry, "dest": S.main_menu},
    {"trigger": "select_withdrawal", "source": S.main_menu, "dest": S.account_selection},
    {"trigger": "select_balance", "source": S.main_menu, "dest": S.account_selection},
    {"trigger": "select_transfer", "source": S.main_menu, "dest": S.account_selection},
    {"trigger": "select_pin_change", "source": S.main_menu, "dest": S.new_pin_entry},
    {"trigger": "select_deposit", "source": S.main_menu, "dest": S.account_selection},
    {
        "trigger": "account_selected",
        "source": S.account_selection,
        "dest": S.deposit_inserting,
        "conditions": "is_cash_deposit",
    },
    {
        "trigger": "account_selected",
        "source": S.account_selection,
        "dest": S.check_entry,
        "conditions": "is_check_deposit",
    },
    {
        "trigger": "account_selected",
        "source": S.account_selection,
        "dest": S.to_account_selection,
        "conditions": "is_transfer",
    },
    {
        "trigger": "account_selected",
        "source": S.account_selection,
        "dest": S.amount_entry,
        "conditions": "needs_amount",
    },
    {"trigger": "account_selected", "source": S.account_selection, "dest": S.authorizing},
    {"trigger": "to_account_selected", "source": S.to_account_selection, "dest": S.amount_entry},
    {"trigger": "amount_entered", "source": S.amount_entry, "dest": S.authorizing},
    {"trigger": "amount_refused", "source": S.amount_entry, "dest": S.amount_entry},
    {"trigger": "new_pin_confirmed", "source": S.new_pin_entry, "dest": S.authorizing},
    # Deposits: notes counted into escrow, the count shown, confirmed (journaled before the
    # host is asked), stacked when approved; every other way out gives the notes back.
    # Check deposits: amount and check number keyed, the envelope taken, then the host.
    {"trigger": "check_entered", "source": S.check_entry, "dest": S.envelope_taking},
    {"trigger": "envelope_taken", "source": S.envelope_taking, "dest": S.authorizing},
    {"trigger": "no_envelope", "source": S.envelope_taking, "dest": S.printing},
    {"trigger": "notes_counted", "source": S.deposit_inserting, "dest": S.deposit_confirming},
    {"trigger": "deposit_confirmed", "source": S.deposit_confirming, "dest": S.authorizing},
    {
        "trigger": "notes_to_return",
        "source": [S.deposit_inserting, S.deposit_confirming, S.authorizing, S.deposit_stacking],
        "dest": S.deposit_returning,
    },
    {"trigger": "approved_deposit", "source": S.authorizing, "dest": S.deposit_stacking},
    {"trigger": "stacked", "source": S.deposit_stacking, "dest": S.printing},
    {"trigger": "notes_returned", "source": S.deposit_returning, "dest": S.printing},
    {"trigger": "capture", "source": S.deposit_returning, "dest": S.capturing_card},
    {"trigger": "approved_cash", "source": S.authorizing, "dest": S.dispensing},
    {"trigger": "approved_inquiry", "source": S.authorizing, "dest": S.balance_display},
    {"trigger": "approved", "source": S.authorizing, "dest": S.printing},
    {"trigger": "wrong_pin", "source": S.authorizing, "dest": S.pin_entry},
    # The host answered 77 (an operator reset the PIN): the customer chooses a new one now.
    {"trigger": "pin_change_required", "source": S.authorizing, "dest": S.new_pin_entry},
    {"trigger": "declined", "source": S.authorizing, "dest": S.printing},
    {"trigger": "capture", "source": S.authorizing, "dest": S.capturing_card},
    {"trigger": "host_failed", "source": S.authorizing, "dest": S.returning_card},
    {"trigger": "dispensed", "source": S.dispensing, "dest": S.presenting_cash},
    {"trigger": "dispense_failed", "source": S.dispensing, "dest": S.printing},
    {"trigger": "dispense_unknown", "source": S.dispensing, "dest": S.printing},
    {"trigger": "cash_taken", "source": S.presenting_cash, "dest": S.printing},
    {"trigger": "cash_retracted", "source": S.presenting_cash, "dest": S.printing},
    {"trigger": "receipt_requested", "source": S.balance_display, "dest": S.printing},
    {"trigger": "finished", "source": S.balance_display, "dest": S.another_transaction},
    {
        "trigger": "printed",
        "source": S.printing,
        "dest": S.returning_card,
        "conditions": "cash_session_over",
    },
    {"trigger": "printed", "source": S.printing, "dest": S.another_transaction},
    {"trigger": "another_yes", "source": S.another_transaction, "dest": S.main_menu},
    {"trigger": "another_no", "source": S.another_transaction, "dest": S.returning_card},
    {"trigger": "cancel", "source": [*CUSTOMER_STATES, S.more_time], "dest": S.returning_card},
    # A customer's wait runs out: "Do you need more time?" first (unless configured off); its
    # countdown running out too ends the session. Yes goes back to the state the customer was in.
    {
        "trigger": "timeout",
        "source": CUSTOMER_STATES,
        "dest": S.more_time,
        "conditions": "offers_more_time",
    },
    {"trigger": "timeout", "source": [*CUSTOMER_STATES, S.more_time], "dest": S.returning_card},
    *({"trigger": f"resume_{s.value}", "source": S.more_time, "dest": s} for s in CUSTOMER_STATES),
    {"trigger": "card_taken", "source": S.returning_card, "dest": S.session_end},
    {"trigger": "card_not_taken", "source": S.returning_card, "dest": S.capturing_card},
    {"trigger": "captured", "source": S.capturing_card, "dest": S.session_end},
    {"trigger": "session_closed", "source": S.session_end, "dest": S.idle},
    {"trigger": "link_down", "source": [S.idle, S.session_end], "dest": S.out_of_service},
    {
        "trigger": "supervisor_requested",
        "source": [S.idle, S.out_of_service, S.fault],
        "dest": S.supervisor,
    },
    *(
        {"trigger": trigger, "source": S.supervisor, "dest": dest}
        for trigger, dest in SUPERVISOR_KEYS.values()
    ),
    {"trigger": "supervisor_done", "source": SUPERVISOR_ACTIONS, "dest": S.supervisor},
    {"trigger": "fault", "source": "*", "dest": S.fault},
]
